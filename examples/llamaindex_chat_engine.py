"""LlamaIndex: a chat engine whose LLM remembers (``HeadroomLLM`` + ``HeadroomChatStore``).

HeadroomLLM wraps any LlamaIndex LLM: it injects the relevant memories, asks the model for a
<memory> block in the same reply (no extra call), stores its facts and returns the reply without
it. The chat history lives in the same SQLite file.
Run: python examples/llamaindex_chat_engine.py   (offline unless OPENAI_API_KEY is set)
"""

from _offline import offline, openai_endpoint


def main() -> None:
    from llama_index.core.chat_engine import SimpleChatEngine
    from llama_index.core.memory import ChatMemoryBuffer
    from llama_index.llms.openai import OpenAI

    from headroom_llamaindex import HeadroomChatStore, HeadroomLLM

    llm = HeadroomLLM(
        OpenAI(model="gpt-4o-mini"), user_id="alice", session_id="morning", db_path="memory.db"
    )
    history = ChatMemoryBuffer.from_defaults(
        chat_store=HeadroomChatStore(memory=llm.memory), chat_store_key="morning"
    )
    chat = SimpleChatEngine.from_defaults(llm=llm, memory=history)
    first = str(chat.chat("Hi! I prefer Rust for systems programming."))  # a clean reply
    print(first)

    # Later, another session (a new engine, no chat history): the fact is recalled.
    later = HeadroomLLM(
        OpenAI(model="gpt-4o-mini"), user_id="alice", session_id="evening", memory=llm.memory
    )
    answer = str(SimpleChatEngine.from_defaults(llm=later).chat("Which language should I use?"))
    print(answer)
    facts = [m.content for m in llm.memory.sync.query()]
    print(facts)
    llm.close()

    assert "<memory" not in first + answer
    assert any("Rust" in fact for fact in facts)
    if offline():
        assert "Rust" in answer


if __name__ == "__main__":
    with openai_endpoint():
        main()
