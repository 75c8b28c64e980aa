"""LiteLLM: ``HeadroomCallback`` in ``litellm.callbacks`` for async calls of code you do not control.

The callback covers non-streaming ``litellm.acompletion`` and ``Router.acompletion``. It cannot
strip streams or change sync ``completion`` (LiteLLM offers no hook), so it never asks for a
block there and logs why; use ``headroom_litellm.completion`` / ``HeadroomRouter`` for those.
Run: python examples/litellm_callback.py   (offline unless OPENAI_API_KEY is set)
"""

from _offline import offline, openai_endpoint


def main() -> None:
    import asyncio
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before importing litellm
    import litellm

    from headroom_litellm import HeadroomCallback

    callback = HeadroomCallback(db_path="memory.db")
    litellm.callbacks = [callback]
    router = litellm.Router(
        model_list=[{"model_name": "chat", "litellm_params": {"model": "openai/gpt-4o-mini"}}]
    )

    async def conversation() -> tuple[str, str]:
        first = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "My favorite editor is Vim."}],
            metadata={"headroom_user_id": "alice", "headroom_session_id": "s1"},
        )
        second = await router.acompletion(
            model="chat",
            messages=[{"role": "user", "content": "Which editor should I configure?"}],
            user="alice",  # the OpenAI `user` field works too
        )
        return first.choices[0].message.content or "", second.choices[0].message.content or ""

    first, second = asyncio.run(conversation())
    print(first)
    print(second)
    facts = [m.content for m in callback.memory.sync.query()]
    print(facts)
    callback.close()

    assert "<memory" not in first + second
    assert any("Vim" in fact for fact in facts)
    if offline():
        assert "Vim" in second


if __name__ == "__main__":
    with openai_endpoint():
        main()
