"""One turn's bookkeeping for :class:`bot.engine.Engine`: what the worker thread understood
(:class:`Understood`), what the turn has done so far (:class:`TurnState`, which becomes the
``Done`` event) and how a hit is cited (:func:`source_ref`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.decide import Route
from bot.events import AnswerMode, Done, SourceRef
from bot.nlu.types import ParsedMessage
from retrieval.types import Hit


@dataclass(slots=True)
class TurnState:
    """What a turn has done so far; becomes the ``Done`` event."""

    turn_id: str
    lang: str
    started: float
    mode: AnswerMode = "fallback"
    answered: bool = False
    confidence: float = 0.0
    partial: bool = False
    timing_ms: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)

    def done(self, now: float) -> Done:
        self.timing_ms["total"] = round((now - self.started) * 1000, 2)
        return Done(
            turn_id=self.turn_id,
            mode=self.mode,
            answered=self.answered,
            confidence=round(self.confidence, 4),
            lang=self.lang,
            timing_ms=self.timing_ms,
            partial=self.partial,
            usage=self.usage,
        )


@dataclass(slots=True)
class Understood:
    """The worker thread's result: parse, route, hits (``None`` when not retrieved), and for
    a follow-up (:mod:`bot.followup`) the hits of the search with the previous question."""

    parsed: ParsedMessage
    route: Route
    hits: list[Hit] | None
    nlu_ms: float
    retrieval_ms: float = 0.0
    error: Exception | None = None
    context_hits: list[Hit] | None = None  # a follow-up searched with the previous question


def source_ref(hit: Hit) -> SourceRef:
    e = hit.entry
    return SourceRef(id=e.id, title=e.display_title, url=e.url, score=round(hit.score, 4))
