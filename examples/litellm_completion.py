"""LiteLLM: ``headroom_litellm.completion`` / ``acompletion`` (README "LiteLLM").

Any provider LiteLLM supports; sync, async and streams; the <memory> block never reaches you.
Run: python examples/litellm_completion.py   (offline unless OPENAI_API_KEY is set)
"""

from _offline import offline, openai_endpoint


def main() -> None:
    import asyncio
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before importing litellm
    import headroom_litellm as hl

    model = "openai/gpt-4o-mini"  # or "anthropic/claude-3-5-haiku-latest", "groq/...", ...
    reply = hl.completion(
        model=model,
        messages=[{"role": "user", "content": "I'm vegetarian."}],
        user_id="alice",
        db_path="memory.db",
    )
    print(reply.choices[0].message.content)  # the answer, without the <memory> block

    chunks = hl.completion(
        model=model,
        messages=[{"role": "user", "content": "What should I cook tonight?"}],
        user_id="alice",
        db_path="memory.db",
        stream=True,
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    print(streamed)  # streamed, block removed; the memory was injected into the request

    async def ask_async() -> str:
        out = await hl.acompletion(
            model=model,
            messages=[{"role": "user", "content": "Any dinner idea for me?"}],
            user_id="alice",
            session_id="trip-planning",
            db_path="memory.db",
        )
        return out.choices[0].message.content

    answer = asyncio.run(ask_async())
    print(answer)

    memory = hl.default_registry().memory(db_path="memory.db")
    facts = [m.content for m in memory.sync.query()]
    print(facts)
    hl.close_all()  # close the databases the module-level functions opened

    assert "<memory" not in reply.choices[0].message.content + streamed + answer
    assert any("vegetarian" in fact for fact in facts)
    if offline():
        assert "vegetarian" in streamed and "vegetarian" in answer


if __name__ == "__main__":
    with openai_endpoint():
        main()
