"""HeadroomChatMessageHistory: persistence in the memory database, stripping, RunnableWithMessageHistory."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory

from headroom.memory import HierarchicalMemory
from headroom.memory.errors import HeadroomError, StorageError
from headroom_langchain import HeadroomChatMessageHistory, HeadroomMemory
from headroom_langchain.chat_history import CHAT_TABLE


def _query(location: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read straight from the SQLite file or the PostgreSQL URL."""
    if isinstance(location, str) and location.startswith("postgresql"):
        import psycopg

        with psycopg.connect(location.replace("+psycopg", "")) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]  # type: ignore[arg-type]
    with sqlite3.connect(location) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.contract
def test_add_read_clear_and_reopen(store_url: Path | str, memory_block: Any) -> None:
    db_path = store_url
    history = HeadroomChatMessageHistory("s1", db_path=db_path, user_id="alice")
    history.add_user_message("I like tea")
    history.add_ai_message(f"Noted. {memory_block('User likes tea')}")
    history.add_messages([HumanMessage("and cake", id="h2"), AIMessage("Cake too.")])
    assert [m.content for m in history.messages] == [
        "I like tea",
        "Noted.",
        "and cake",
        "Cake too.",
    ]
    assert history.messages[2].id == "h2" and isinstance(history.messages[1], AIMessage)
    history.close()

    reopened = HeadroomChatMessageHistory("s1", db_path=db_path, user_id="alice")
    assert len(reopened.messages) == 4
    assert HeadroomChatMessageHistory("s1", db_path=db_path, user_id="bob").messages == []
    assert HeadroomChatMessageHistory("s2", db_path=db_path, user_id="alice").messages == []
    reopened.clear()
    assert reopened.messages == []


@pytest.mark.contract
def test_same_database_as_memories(hm: HierarchicalMemory, store_url: Path | str) -> None:
    memory = HeadroomMemory(hm, user_id="alice", session_id="s1")
    memory.chat_history().add_user_message("hello")
    hm.sync.add("User says hello", "alice")
    assert _query(store_url, "select count(*) from memories") == [(1,)]
    rows = _query(store_url, f"select user_id, session_id, position, type from {CHAT_TABLE}")
    assert rows == [("alice", "s1", 0, "human")]
    memory.close()


@pytest.mark.contract
def test_memory_argument_uses_its_database(hm: HierarchicalMemory, store_url: Path | str) -> None:
    history = HeadroomChatMessageHistory("s9", memory=hm, user_id="carol")
    history.add_user_message("hi")
    history.close()
    assert _query(store_url, f"select user_id, session_id from {CHAT_TABLE}") == [("carol", "s9")]
    again = HeadroomChatMessageHistory("s9", config=hm.config, user_id="carol")
    assert [m.content for m in again.messages] == ["hi"]
    again.close()


def test_unreachable_postgres_is_a_storage_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StorageError) as info:
        HeadroomChatMessageHistory("s", db_path="postgresql://u:secret@127.0.0.1:9/db")
    assert "secret" not in str(info.value)


def test_bad_postgres_url_is_a_configuration_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(HeadroomError) as info:
        HeadroomChatMessageHistory("s", db_path="postgresql://u:secret@host:notaport/db")
    assert "secret" not in str(info.value)


@pytest.mark.contract
async def test_async_methods(store_url: Path | str) -> None:
    history = HeadroomChatMessageHistory("s", db_path=store_url)
    await history.aadd_messages([HumanMessage("a"), AIMessage("b <memory>[]</memory>")])
    assert [m.content for m in await history.aget_messages()] == ["a", "b"]
    await history.aclear()
    assert await history.aget_messages() == []
    history.close()


PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{question}")]
)


@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
async def test_runnable_with_message_history(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any
) -> None:
    llm = scripted(
        replies=[f"Hello Ada. {memory_block('User is named Ada')}", "You are Ada.", "Still Ada."]
    )
    memory = HeadroomMemory(hm, user_id="ada", session_id="chat-1")
    chain = RunnableWithMessageHistory(
        PROMPT | memory.wrap(llm) | StrOutputParser(),
        memory.chat_history,
        input_messages_key="question",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "chat-1"}}
    assert chain.invoke({"question": "I am Ada"}, config=config) == "Hello Ada."
    assert await chain.ainvoke({"question": "Who am I?"}, config=config) == "You are Ada."
    # the model saw the earlier turn without the block
    assert [m.content for m in llm.calls[1][1:3]] == ["I am Ada", "Hello Ada."]
    stored = memory.chat_history("chat-1").messages
    assert [m.content for m in stored] == ["I am Ada", "Hello Ada.", "Who am I?", "You are Ada."]
    memory.close()

    reopened = HeadroomMemory(hm, user_id="ada", session_id="chat-1")
    assert len(reopened.chat_history("chat-1").messages) == 4
    reopened.close()


def test_runnable_with_message_history_warns_as_expected(db_path: Path, scripted: Any) -> None:
    with pytest.warns(DeprecationWarning, match="RunnableWithMessageHistory"):
        RunnableWithMessageHistory(
            scripted(replies=["x"]), lambda sid: HeadroomChatMessageHistory(sid, db_path=db_path)
        )


@pytest.mark.contract
def test_concurrent_appends_from_two_stores_lose_nothing(store_url: Path | str) -> None:
    """Two histories with their own engines (as two processes) append to one session at once."""
    from concurrent.futures import ThreadPoolExecutor

    histories = [HeadroomChatMessageHistory("s", db_path=store_url) for _ in range(2)]
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: histories[i % 2].add_user_message(f"m{i}"), range(40)))
        contents = [m.content for m in histories[0].messages]
        assert sorted(contents) == sorted(f"m{i}" for i in range(40))
        rows = _query(store_url, f"select position from {CHAT_TABLE} order by position")
        assert [r[0] for r in rows] == list(range(40))
    finally:
        for history in histories:
            history.close()
