"""ScriptedAssistant: a deterministic stand-in for an LLM that follows Headroom's memory protocol.

Used by :class:`~headroom.testing.fake_openai.FakeOpenAIServer` (its default responder) in tests and
in the offline demo. It reads the last user message, the memories injected into it (the
``<headroom_context>`` block) and whether the extraction instruction is present, and answers:

* a first-person statement ("I prefer Go for ...", "My favorite editor is Vim", "I'm a ...",
  "We use ...") -> acknowledges it and emits a ``<memory>`` block with the fact in third person;
* a change ("I moved to Berlin", "I now work at Anthropic", "I now prefer ...") -> the same, with
  ``"supersedes"`` naming the injected memory it replaces (matched by topic or shared words);
* a question (a sentence ending with ``?``) -> answers with the memories it was shown.

Without the instruction in a system message it answers the same way but emits no block.
Standard library only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ContextMemory", "ScriptedAssistant", "parse_injected_memories"]

_CONTEXT_RE = re.compile(r"<headroom_context>\n(.*?)</headroom_context>\s*", re.DOTALL)
_LINE_RE = re.compile(
    r"^- \[(?P<ref>[^\]]+)\] \((?P<category>[^,()]*), (?P<scope>[^()]*)\) (?P<lit>\".*\")\s*$"
)
_CHANGE_RE = re.compile(
    r"\b(now|moved|switched|changed|no longer|anymore|instead)\b", re.IGNORECASE
)
_WORD_RE = re.compile(r"[a-z0-9+#]+")
_STOP = frozenset(
    [
        "user",
        "users",
        "the",
        "a",
        "an",
        "and",
        "or",
        "for",
        "of",
        "to",
        "in",
        "on",
        "at",
        "is",
        "are",
        "was",
        "with",
        "my",
        "their",
        "i",
        "im",
        "now",
        "also",
        "very",
        "really",
        "just",
        "new",
    ]
)
_LEAD_RE = re.compile(
    r"^(?:(?:hi|hello|hey|also|and|so|ok|okay|well|btw|by the way)\b[,!]?\s*)+", re.IGNORECASE
)

# (pattern, template, category, topic); templates use the match groups.
_STATEMENTS: tuple[tuple[re.Pattern[str], str, str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), template, category, topic)
    for pattern, template, category, topic in (
        (r"^my favou?rite ([\w -]+?) is (.+)$", "User's favorite {0} is {1}", "preference", ""),
        (r"^i (?:now |really |still )*prefer (.+)$", "User prefers {0}", "preference", ""),
        (r"^i (?:now |really )*(?:like|love|enjoy) (.+)$", "User likes {0}", "preference", ""),
        (r"^i (?:don't|do not|no longer) like (.+)$", "User dislikes {0}", "preference", ""),
        (
            r"^i(?:'m| am) (?:now )?(?:working|employed) (?:at|for) (.+)$",
            "User works at {0}",
            "fact",
            "work",
        ),
        (r"^i (?:now |currently )?work (?:at|for) (.+)$", "User works at {0}", "fact", "work"),
        (
            r"^i(?:'ve| have)? (?:just |recently )?(?:moved|relocated) to (.+)$",
            "User lives in {0}",
            "fact",
            "home",
        ),
        (r"^i (?:now |currently )?live in (.+)$", "User lives in {0}", "fact", "home"),
        (r"^(?:my name is|call me) (.+)$", "User's name is {0}", "fact", "name"),
        (r"^i(?:'m| am) (.+)$", "User is {0}", "fact", ""),
        (r"^i (?:now |mostly |usually )*use (.+)$", "User uses {0}", "preference", ""),
        (r"^we (?:now |mostly |usually )*use (.+)$", "User's team uses {0}", "fact", ""),
        (r"^i have (.+)$", "User has {0}", "fact", ""),
        (r"^my ([\w -]+?) is (.+)$", "User's {0} is {1}", "fact", ""),
    )
)
_TOPICS = {
    "work": re.compile(r"\bworks? (?:at|for)\b|\bemploy", re.IGNORECASE),
    "home": re.compile(r"\blives? in\b|\bbased in\b|\bmoved to\b", re.IGNORECASE),
    "name": re.compile(r"\bname is\b", re.IGNORECASE),
}


@dataclass(frozen=True)
class ContextMemory:
    """A memory as injected into a request: its reference ("m1"), content, category and scope."""

    ref: str
    content: str
    category: str
    scope: str


def parse_injected_memories(text: str) -> list[ContextMemory]:
    """The memories rendered in the ``<headroom_context>`` block(s) of ``text``."""
    found: list[ContextMemory] = []
    for block in _CONTEXT_RE.finditer(text):
        for line in block.group(1).splitlines():
            match = _LINE_RE.match(line)
            if match is None:
                continue
            try:
                content = json.loads(match.group("lit"))
            except ValueError:
                continue
            if isinstance(content, str):
                found.append(
                    ContextMemory(
                        match.group("ref"), content, match.group("category"), match.group("scope")
                    )
                )
    return found


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _words(text: str) -> set[str]:
    return {w for w in _WORD_RE.findall(text.lower()) if w not in _STOP and len(w) > 2}


def _third_person(sentence: str) -> tuple[str, str, str] | None:
    clean = _LEAD_RE.sub("", sentence.strip()).strip()
    for pattern, template, category, topic in _STATEMENTS:
        match = pattern.match(clean)
        if match:
            parts = [
                re.sub(r"\bmy\b", "their", g.strip(), flags=re.IGNORECASE) for g in match.groups()
            ]
            return template.format(*parts), category, topic
    return None


class ScriptedAssistant:
    """A deterministic responder: ``responder(request_json) -> reply text`` (see the module doc)."""

    def __init__(self, *, name: str = "scripted assistant") -> None:
        self.name = name

    def __call__(self, request: Mapping[str, Any]) -> str:
        messages = [m for m in request.get("messages") or [] if isinstance(m, Mapping)]
        user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        raw = _text_of(user.get("content")) if user else ""
        memories = parse_injected_memories(raw)
        for message in messages:  # memories shown in a system message (e.g. LlamaIndex blocks)
            if message.get("role") in ("system", "developer"):
                memories += parse_injected_memories(_text_of(message.get("content")))
        said = _CONTEXT_RE.sub("", raw).strip()
        instructed = any(
            m.get("role") in ("system", "developer") and "<memory>" in _text_of(m.get("content"))
            for m in messages
        )
        answer, items = self.respond(said, memories)
        if not instructed:
            return answer
        block = json.dumps({"memories": items}, ensure_ascii=False)
        return f"{answer}\n\n<memory>{block}</memory>"

    def respond(
        self, said: str, memories: Sequence[ContextMemory]
    ) -> tuple[str, list[dict[str, Any]]]:
        """The visible answer and the memory items for what the user ``said``."""
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", said) if s.strip()]
        items: list[dict[str, Any]] = []
        lines: list[str] = []
        questions = [s for s in sentences if s.endswith("?")]
        for sentence in sentences:
            if sentence.endswith("?"):
                continue
            parsed = _third_person(sentence.rstrip(".!"))
            if parsed is None:
                continue
            fact, category, topic = parsed
            item: dict[str, Any] = {"content": fact, "category": category, "importance": 0.8}
            replaced = (
                self._replaced(fact, topic, memories) if _CHANGE_RE.search(sentence) else None
            )
            if replaced is not None:
                item["supersedes"] = replaced.ref
                lines.append(f'Thanks for the update: I had "{replaced.content}", now "{fact}".')
            else:
                lines.append(f'Got it, I will remember that: "{fact}".')
            items.append(item)
        if questions:
            if memories:
                known = "; ".join(f'"{m.content}"' for m in memories)
                lines.append(f"Based on what I remember about you ({known}), that is my answer.")
            else:
                lines.append(
                    "I don't have anything stored about you yet, so I can only answer in general."
                )
        if not lines:
            lines.append("Noted.")
        return " ".join(lines), items

    @staticmethod
    def _replaced(fact: str, topic: str, memories: Sequence[ContextMemory]) -> ContextMemory | None:
        if topic in _TOPICS:
            matching = [m for m in memories if _TOPICS[topic].search(m.content)]
            return matching[0] if matching else None
        words = _words(fact)
        best, best_overlap = None, 1
        for memory in memories:
            overlap = len(words & _words(memory.content))
            if overlap > best_overlap and memory.content.lower() != fact.lower():
                best, best_overlap = memory, overlap
        return best
