"""LlamaIndex: ``HeadroomMemory`` (a ``BaseMemory``) with a plain LLM, and ``HeadroomMemoryBlock``.

``HeadroomMemory.from_defaults(user_id=..., llm=...)`` is passed as ``memory=`` like LlamaIndex's
other memory integrations: it recalls relevant memories into the history the LLM sees and, after
each reply, extracts facts with one extra call of ``llm`` (the chat model is never asked for a
<memory> block, so none can reach the user). ``HeadroomMemoryBlock`` shows the same memories
inside LlamaIndex's ``Memory`` (recall only; pair it with a HeadroomLLM to extract).
Run: python examples/llamaindex_memory.py   (offline unless OPENAI_API_KEY is set)
"""

from _offline import offline, openai_endpoint


def main() -> None:
    import asyncio

    from llama_index.core.chat_engine import SimpleChatEngine
    from llama_index.llms.openai import OpenAI

    from headroom_llamaindex import HeadroomMemory

    llm = OpenAI(model="gpt-4o-mini")
    memory = HeadroomMemory.from_defaults(user_id="alice", llm=llm, db_path="memory.db")
    chat = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
    first = str(chat.chat("My favorite editor is Helix."))
    print(first)
    facts = [m.content for m in memory.memory.sync.query()]
    print(facts)

    memory.close()

    # Memory blocks: LlamaIndex's Memory shows the long-term memories, HeadroomLLM extracts.
    from llama_index.core.memory import Memory

    from headroom_llamaindex import (
        HeadroomLLM,
        HeadroomMemoryBlock,
        headroom_memory_blocks_template,
    )

    remembering_llm = HeadroomLLM(OpenAI(model="gpt-4o-mini"), user_id="alice", db_path="memory.db")
    blocks = Memory.from_defaults(
        session_id="s2",
        memory_blocks=[HeadroomMemoryBlock(user_id="alice", memory=remembering_llm.memory)],
        memory_blocks_template=headroom_memory_blocks_template(),
    )
    engine = SimpleChatEngine.from_defaults(llm=remembering_llm, memory=blocks)
    answer = str(asyncio.run(engine.achat("Which editor should I configure?")))
    print(answer)  # the memories reached the model once (the block's), not twice
    remembering_llm.close()

    assert "<memory" not in first + answer
    assert any("Helix" in fact for fact in facts)
    if offline():
        assert "Helix" in answer


if __name__ == "__main__":
    with openai_endpoint():
        main()
