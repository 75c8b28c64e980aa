"""The one-liner: ``with_memory`` around an OpenAI client (README "One line: with_memory").

Run: python examples/with_memory.py   (offline unless OPENAI_API_KEY is set; creates memory.db)
"""

from _offline import offline, openai_endpoint


def main() -> None:
    from openai import OpenAI

    from headroom import with_memory

    client = with_memory(OpenAI(), user_id="alice", db_path="memory.db")  # also AsyncOpenAI
    first = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "I prefer Python for backend work."}],
    )  # the fact is extracted inline, and the <memory> block removed from the reply
    second = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Which language should I use for my API?"}],
    )  # the fact is injected into this request

    print(first.choices[0].message.content)
    print(second.choices[0].message.content)
    print([m.content for m in client.memory.get_all()])
    client.memory.add("User is a senior engineer", category="fact", importance=0.9)
    hits = client.memory.search("python preferences", top_k=5)
    print(hits[0].memory.content, client.memory.stats()["total"])

    assert "<memory" not in first.choices[0].message.content
    assert any("Python" in m.content for m in client.memory.get_all())
    if offline():  # the scripted assistant answers with what it was shown
        assert "Python" in second.choices[0].message.content
    client.memory.clear()  # this user's memories only
    assert client.memory.get_all() == []
    client.close()


if __name__ == "__main__":
    with openai_endpoint():
        main()
