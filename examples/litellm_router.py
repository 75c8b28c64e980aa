"""LiteLLM: ``HeadroomRouter`` around a ``litellm.Router`` (sync, async and streams).

Run: python examples/litellm_router.py   (offline unless OPENAI_API_KEY is set)
"""

from _offline import offline, openai_endpoint


def main() -> None:
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before importing litellm
    import litellm

    import headroom_litellm as hl

    router = hl.HeadroomRouter(
        litellm.Router(
            model_list=[{"model_name": "chat", "litellm_params": {"model": "openai/gpt-4o-mini"}}]
        ),
        db_path="memory.db",
        user_id="alice",  # default user; per call: user_id=..., session_id=..., agent_id=...
    )
    first = router.completion(
        model="chat", messages=[{"role": "user", "content": "I live in Lyon."}]
    )
    stream = router.completion(
        model="chat",
        messages=[{"role": "user", "content": "Where do I live?"}],
        stream=True,
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    bob = router.completion(
        model="chat", messages=[{"role": "user", "content": "Where do I live?"}], user_id="bob"
    )
    print(first.choices[0].message.content)
    print(streamed)
    print(bob.choices[0].message.content)
    facts = [(m.user_id, m.content) for m in router.memory.sync.query()]
    print(facts)
    router.close()

    assert "<memory" not in first.choices[0].message.content + streamed
    assert any(user == "alice" and "Lyon" in fact for user, fact in facts)
    assert "Lyon" not in bob.choices[0].message.content  # bob never sees alice's memories
    if offline():
        assert "Lyon" in streamed


if __name__ == "__main__":
    with openai_endpoint():
        main()
