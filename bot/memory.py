"""Bounded conversation memory: the last turns verbatim plus a running summary of older ones.

Token counts are estimated (≈ 4 characters per token, the usual rule of thumb for English and
German with BPE tokenisers) — good enough to keep the prompt inside a budget without loading
a tokenizer. The summary is built without an LLM: one short line per folded turn, oldest lines
dropped first, so it never exceeds its own budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.conversation import ConversationContext, Turn

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def estimate_tokens(text: str) -> int:
    """A cheap token estimate: ``ceil(len / 4)``, at least 1 for non-empty text."""
    return (len(text) + 3) // 4


def _gist(turn: Turn, max_chars: int = 160) -> str:
    first = _SENTENCE_END.split(turn.text.strip(), maxsplit=1)[0]
    if len(first) > max_chars:
        first = first[: max_chars - 1].rstrip() + "…"
    return f"{turn.role}: {first}"


def fold_summary(summary: str, dropped: Sequence[Turn], max_tokens: int) -> str:
    """The running summary with ``dropped`` turns folded in, bounded by ``max_tokens``
    (the oldest lines go first)."""
    lines = [ln for ln in summary.splitlines() if ln.strip()]
    lines.extend(_gist(t) for t in dropped)
    while lines and estimate_tokens("\n".join(lines)) > max_tokens:
        lines.pop(0)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Window:
    """What the model sees of the conversation: ``summary`` + the recent ``turns``."""

    summary: str
    turns: tuple[Turn, ...]

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.summary) + sum(estimate_tokens(t.text) for t in self.turns)


def window(ctx: ConversationContext, *, max_tokens: int, summary_tokens: int) -> Window:
    """The newest turns that fit in ``max_tokens``; older ones are folded into the summary
    (at most ``summary_tokens``). Does not modify ``ctx``."""
    kept: list[Turn] = []
    used = 0
    history = list(ctx.history)
    for turn in reversed(history):
        cost = estimate_tokens(turn.text)
        if used + cost > max_tokens:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    dropped = history[: len(history) - len(kept)]
    summary = fold_summary(ctx.summary, dropped, summary_tokens) if dropped else ctx.summary
    return Window(summary=summary, turns=tuple(kept))
