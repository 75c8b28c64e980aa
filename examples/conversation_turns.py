"""Storing conversation turns so questions find them (README "Retrieval quality").

Each turn is stored as a memory with the previous turn as ``context`` (indexed, never shown) and
its speaker as an entity ref; a question naming the speaker, or using the words of the question
the turn answered, finds it.

Run: python examples/conversation_turns.py   (offline; uses a temporary database)
"""

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from headroom.memory import HierarchicalMemory, MemoryConfig

turns = [
    ("Ben", "Where did you move from originally?"),
    ("Ana", "Sweden, four years ago. I still miss the lakes."),
    ("Ben", "Did you bring anything from there?"),
    ("Ana", "My grandmother's necklace, it means the world to me."),
    ("Ben", "I started violin lessons last week."),
    ("Ana", "That's great! What made you pick the violin?"),
    ("Ben", "My daughter plays it, we practise together after dinner."),
    ("Ana", "Lovely. I painted a sunset by the lake yesterday."),
]

with tempfile.TemporaryDirectory() as tmp:
    memory = HierarchicalMemory.create_sync(MemoryConfig(db_path=Path(tmp) / "memory.db"))
    try:
        texts = [f"{speaker}: {text}" for speaker, text in turns]
        memory.sync.add_batch(
            [
                {
                    "content": text,
                    "user_id": "conv-1",
                    "valid_from": datetime(2023, 5, 8, tzinfo=UTC),
                    "entity_refs": [speaker],
                    "context": texts[i - 1] if i else None,  # the turn this one answers
                }
                for i, ((speaker, _), text) in enumerate(zip(turns, texts, strict=True))
            ]
        )
        best = memory.sync.search("Where did Ana move from?", "conv-1", top_k=1)[0]
        print("best match:", best.content)
        assert best.content.startswith("Ana: Sweden")  # found through its context, shown without
        assert best.memory.context is None
    finally:
        memory.sync.close()
