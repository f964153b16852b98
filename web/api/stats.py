"""``GET /api/v1/stats`` (scope ``read``): answered / fallback / handoff rates per UTC day,
average confidence, feedback ratio, and the top unanswered questions clustered by embedding
("knowledge gaps"), for a date range (see :mod:`bot.store.stats` and :mod:`bot.stats`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from bot.stats import Gap, Pick, StatsReport, build_report
from bot.store.stats import DayStats, last_days
from retrieval.types import Embedder
from web.api.auth import ReadKey
from web.api.errors import ApiError, responses
from web.deps import Services, ServicesDep

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
MAX_DAYS = 366


class DayOut(BaseModel):
    date: date
    conversations: int = Field(description="Conversations started.")
    turns: int = Field(description="Bot turns (`done` events).")
    answered: int
    fallback: int = Field(description="Turns the bot could not answer (fallback / out of scope).")
    handoffs: int = Field(description="Turns that handed the conversation to a human.")
    answered_rate: float | None
    fallback_rate: float | None
    handoff_rate: float | None
    avg_confidence: float | None = Field(
        description="Mean retrieval confidence of the turns that searched the knowledge."
    )
    feedback_up: int
    feedback_down: int
    feedback_up_ratio: float | None = Field(description="up / (up + down).")
    resolved: int = Field(
        description="Conversations started that day that the bot answered at least once (from "
        "knowledge or an action) and that never went to a human."
    )
    resolution_rate: float | None = Field(description="resolved / conversations.")

    @classmethod
    def of(cls, d: DayStats) -> DayOut:
        return cls(
            date=d.day,
            conversations=d.conversations,
            turns=d.turns,
            answered=d.answered,
            fallback=d.fallback,
            handoffs=d.handoffs,
            answered_rate=d.answered_rate,
            fallback_rate=d.fallback_rate,
            handoff_rate=d.handoff_rate,
            avg_confidence=d.avg_confidence,
            feedback_up=d.feedback_up,
            feedback_down=d.feedback_down,
            feedback_up_ratio=d.feedback_up_ratio,
            resolved=d.resolved,
            resolution_rate=d.resolution_rate,
        )


class GapOut(BaseModel):
    count: int = Field(description="Unanswered messages in this cluster.")
    representative: str
    examples: list[str]

    @classmethod
    def of(cls, g: Gap) -> GapOut:
        return cls(count=g.count, representative=g.representative, examples=g.examples)


class PickOut(BaseModel):
    count: int = Field(description="Times users picked this entry after asking this question.")
    asked: str = Field(description="The question the bot did not answer (emails redacted).")
    entry_id: str = Field(description="The knowledge entry whose suggestion they picked.")
    picked: str = Field(description="The suggestion's text (the entry's question).")

    @classmethod
    def of(cls, p: Pick) -> PickOut:
        return cls(count=p.count, asked=p.asked, entry_id=p.entry_id, picked=p.picked)


class StatsOut(BaseModel):
    start: datetime = Field(description="Inclusive (UTC).")
    end: datetime = Field(description="Exclusive (UTC).")
    totals: DayOut = Field(description="The whole range (`date` is its first day).")
    days: list[DayOut]
    unanswered: int = Field(description="Unanswered user messages in the range (clustered).")
    knowledge_gaps: list[GapOut]
    suggestion_picks: list[PickOut] = Field(
        description="Unanswered questions after which the user clicked a knowledge suggestion, "
        "most frequent first: candidate alternative phrasings for those entries."
    )
    embedder: str | None = Field(
        description="What clustered the gaps: the index's embedding model, or `hashing:v1` "
        "(by wording) when no model is loaded."
    )

    @classmethod
    def of(cls, r: StatsReport) -> StatsOut:
        return cls(
            start=r.start,
            end=r.end,
            totals=DayOut.of(r.total),
            days=[DayOut.of(d) for d in r.days],
            unanswered=r.unanswered,
            knowledge_gaps=[GapOut.of(g) for g in r.gaps],
            suggestion_picks=[PickOut.of(p) for p in r.picks],
            embedder=r.embedder,
        )


def runtime_embedder(services: Services) -> Embedder | None:
    """The runtime retriever's embedder (the index's model), if one is loaded."""
    retriever: Any = getattr(services.runtime, "retriever", None)
    emb: Any = getattr(retriever, "embedder", None)
    return emb if emb is not None and callable(getattr(emb, "embed", None)) else None


def _range(start: date | None, end: date | None, days: int) -> tuple[datetime, datetime]:
    try:
        return _bounds(start, end, days)
    except OverflowError as exc:  # at the ends of the calendar
        raise ApiError(422, "invalid_request", "the date range is out of range") from exc


def _bounds(start: date | None, end: date | None, days: int) -> tuple[datetime, datetime]:
    if start is None and end is None:
        return last_days(days)
    last = end or datetime.now(UTC).date()
    first = start or last - timedelta(days=days - 1)
    if first > last:
        raise ApiError(422, "invalid_request", "start is after end")
    if (last - first).days + 1 > MAX_DAYS:
        raise ApiError(422, "invalid_request", f"at most {MAX_DAYS} days per request")
    lo = datetime(first.year, first.month, first.day, tzinfo=UTC)
    hi = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return lo, hi


@router.get("", responses=responses(401, 403, 422))
async def stats(
    services: ServicesDep,
    _key: ReadKey,
    days: Annotated[
        int, Query(ge=1, le=MAX_DAYS, description="Days up to today (without start/end).")
    ] = 30,
    start: Annotated[date | None, Query(description="First day (UTC), inclusive.")] = None,
    end: Annotated[date | None, Query(description="Last day (UTC), inclusive.")] = None,
    top: Annotated[
        int, Query(ge=1, le=50, description="Knowledge gaps (and suggestion picks) to return.")
    ] = 10,
) -> StatsOut:
    """Monitoring numbers per day and the top knowledge gaps of the range."""
    lo, hi = _range(start, end, days)
    async with services.db.session() as session:
        report = await build_report(
            session,
            lo,
            hi,
            embedder=runtime_embedder(services),
            threshold=services.settings.stats_gap_threshold,
            top=top,
        )
    return StatsOut.of(report)
