"""Monitoring numbers per UTC day, aggregated in SQL from the event log (SQLite and
PostgreSQL), bounded by a date range:

- ``turns``: bot turns (``done`` events); ``answered``: ``done.answered`` and not a handoff;
  ``fallback``: ``done.mode == "fallback"`` (refused / nothing found, out of scope; turns cut
  short by a crash, ``partial``, are not counted); ``handoffs``: turns that handed the
  conversation to a human (a ``handoff`` event of the turn: the user asked, or the engine
  decided); ``avg_confidence``: mean ``done.confidence`` of the turns that searched the
  knowledge (extractive, generative, fallback; not partial);
- ``feedback_up`` / ``feedback_down``: thumbs given that day; ``conversations``: started that
  day; ``resolved``: of those, the ones the bot answered (from knowledge or an action) at least
  once and that never went to a human (no handoff to ``pending_human`` / ``human``, so far) —
  the bot's resolution rate, per conversation rather than per turn.

:func:`unanswered_questions` returns the user messages of fallback turns (for the knowledge-gap
clustering in :mod:`bot.stats`); :func:`suggestion_picks` the unanswered messages after which the
user picked one of the knowledge suggestions offered (candidates for alternative phrasings).
The ``done`` events are read through their typed copies in ``turn_outcomes``
(:mod:`bot.store.outcomes`, migration 0007), not their JSON payloads; handoffs through the
partial index ``ix_events_handoffs`` (migration 0007), which keeps that scan off the other
events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Subquery, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.store.listing import utc
from bot.store.models import Conversation, EventRow, Feedback
from bot.store.outcomes import TurnOutcome

SEARCHED_MODES = ("extractive", "generative", "fallback")
MAX_GAP_SAMPLES = 5000


@dataclass(slots=True)
class DayStats:
    day: date
    conversations: int = 0
    turns: int = 0
    answered: int = 0
    fallback: int = 0
    handoffs: int = 0
    searched: int = 0  # turns that searched the knowledge (the ones with a confidence)
    avg_confidence: float | None = None
    feedback_up: int = 0
    feedback_down: int = 0
    resolved: int = 0  # conversations started that day, answered by the bot, never to a human

    def _rate(self, n: int) -> float | None:
        return round(n / self.turns, 4) if self.turns else None

    @property
    def resolution_rate(self) -> float | None:
        """Share of the day's new conversations the bot resolved alone."""
        return round(self.resolved / self.conversations, 4) if self.conversations else None

    @property
    def answered_rate(self) -> float | None:
        return self._rate(self.answered)

    @property
    def fallback_rate(self) -> float | None:
        return self._rate(self.fallback)

    @property
    def handoff_rate(self) -> float | None:
        return self._rate(self.handoffs)

    @property
    def feedback_up_ratio(self) -> float | None:
        total = self.feedback_up + self.feedback_down
        return round(self.feedback_up / total, 4) if total else None


def day_range(start: datetime, end: datetime) -> list[date]:
    """The UTC days touched by ``[start, end)``."""
    first, last = utc(start).date(), (utc(end) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _day(session: AsyncSession, column: Any) -> ColumnElement[str]:
    """``YYYY-MM-DD`` of a UTC timestamp column, per dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def _in_range(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= utc(start), column < utc(end))


def _sum(cond: ColumnElement[bool]) -> Any:
    return func.sum(case((cond, 1), else_=0))


async def daily_stats(session: AsyncSession, start: datetime, end: datetime) -> list[DayStats]:
    """One :class:`DayStats` per UTC day of ``[start, end)`` (days without traffic included)."""
    days = {d.isoformat(): DayStats(d) for d in day_range(start, end)}

    T = TurnOutcome  # noqa: N806
    searched = and_(T.mode.in_(SEARCHED_MODES), T.partial.is_(False))
    tday = _day(session, T.created_at)
    done_rows = await session.execute(
        select(
            tday,
            func.count(),
            _sum(and_(T.answered.is_(True), T.mode != "handoff")),
            _sum(and_(T.mode == "fallback", T.partial.is_(False))),
            _sum(searched),
            func.avg(case((searched, T.confidence))),
        )
        .where(_in_range(T.created_at, start, end))
        .group_by(tday)
    )
    for d, turns, ok, fallback, searched, conf in done_rows.all():
        if (s := days.get(str(d))) is not None:
            s.turns, s.answered, s.fallback = int(turns), int(ok or 0), int(fallback or 0)
            s.searched = int(searched or 0)
            s.avg_confidence = round(float(conf), 4) if conf is not None else None

    day = _day(session, EventRow.created_at)
    handoff_rows = await session.execute(
        select(day, func.count(func.distinct(EventRow.turn_id)))
        .where(
            EventRow.type == "handoff",
            EventRow.turn_id.is_not(None),
            _in_range(EventRow.created_at, start, end),
        )
        .group_by(day)
    )
    for d, n in handoff_rows.all():
        if (s := days.get(str(d))) is not None:
            s.handoffs = int(n)

    fday = _day(session, Feedback.created_at)
    feedback_rows = await session.execute(
        select(fday, Feedback.rating, func.count())
        .where(_in_range(Feedback.created_at, start, end))
        .group_by(fday, Feedback.rating)
    )
    for d, rating, n in feedback_rows.all():
        if (s := days.get(str(d))) is not None:
            if rating == "up":
                s.feedback_up = int(n)
            elif rating == "down":
                s.feedback_down = int(n)

    cday = _day(session, Conversation.created_at)
    answered, to_human = _bot_answered(start), _went_to_human(start)
    resolved = and_(answered.c.cid.is_not(None), to_human.c.cid.is_(None))
    conv_rows = await session.execute(
        select(cday, func.count(), _sum(resolved))
        .select_from(Conversation)
        .outerjoin(answered, answered.c.cid == Conversation.id)
        .outerjoin(to_human, to_human.c.cid == Conversation.id)
        .where(_in_range(Conversation.created_at, start, end))
        .group_by(cday)
    )
    for d, n, ok in conv_rows.all():
        if (s := days.get(str(d))) is not None:
            s.conversations, s.resolved = int(n), int(ok or 0)
    return list(days.values())


# A conversation is resolved by the bot when it got at least one answer (knowledge or action)
# and never went to a human (a handoff to pending_human / human). Both sets are read from the
# range's start on (a conversation started in the range has nothing earlier) and joined, not
# tested per conversation: hash joins, ~0.5 s for 100k conversations on PostgreSQL.
def _bot_answered(start: datetime) -> Subquery:
    T = TurnOutcome  # noqa: N806
    return (
        select(T.conversation_id.label("cid"))
        .where(T.created_at >= utc(start), T.answered.is_(True), T.mode != "handoff")
        .distinct()
        .subquery()
    )


def _went_to_human(start: datetime) -> Subquery:
    return (
        select(EventRow.conversation_id.label("cid"))
        .where(
            EventRow.type == "handoff",
            EventRow.created_at >= utc(start),
            EventRow.payload["state"].as_string().in_(("pending_human", "human")),
        )
        .distinct()
        .subquery()
    )


async def unanswered_questions(
    session: AsyncSession, start: datetime, end: datetime, *, limit: int = MAX_GAP_SAMPLES
) -> list[str]:
    """The user messages of the fallback turns in ``[start, end)``, newest first."""
    T = TurnOutcome  # noqa: N806
    rows = await session.execute(
        select(EventRow.payload)
        .select_from(T)
        .join(EventRow, _of_turn(EventRow, "user_message"))
        .where(_in_range(T.created_at, start, end), T.mode == "fallback", T.partial.is_(False))
        .order_by(T.created_at.desc(), T.id.desc())
        .limit(limit)
    )
    return [str(p.get("text", "")) for (p,) in rows.all() if p.get("text")]


def last_days(days: int, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``[start, end)`` covering the last ``days`` UTC days, today included."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    start = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=days - 1)
    return start, datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SuggestionPick:
    """The user asked ``asked``, the bot did not answer but offered knowledge suggestions, and
    the user's next message was the suggestion ``picked`` (the question of ``entry_id``)."""

    asked: str
    entry_id: str
    picked: str


async def suggestion_picks(
    session: AsyncSession, start: datetime, end: datetime, *, limit: int = MAX_GAP_SAMPLES
) -> list[SuggestionPick]:
    """The :class:`SuggestionPick` of the unanswered turns in ``[start, end)`` (at most
    ``limit``, newest first). A suggestion button sends its text, so a pick is the next user
    message of the conversation being equal to one of the turn's suggestions that carry an
    entry id (not "Talk to a human"). One read: the unanswered turns with suggestions (turn
    outcomes by time), each with the conversation's first user message after its ``done``
    (the ``(conversation_id, seq)`` index)."""
    T = TurnOutcome  # noqa: N806
    user, sugg, later = aliased(EventRow), aliased(EventRow), aliased(EventRow)
    reply = (
        select(later.payload)
        .where(
            later.conversation_id == T.conversation_id,
            later.seq > T.seq,
            later.type == "user_message",
        )
        .order_by(later.seq)
        .limit(1)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(user.payload, sugg.payload, reply)
        .select_from(T)
        .join(user, _of_turn(user, "user_message"))
        .join(sugg, _of_turn(sugg, "suggestions"))
        .where(_in_range(T.created_at, start, end), T.answered.is_(False))
        .order_by(T.created_at.desc(), T.id.desc())
        .limit(limit)
    )
    out: list[SuggestionPick] = []
    for asked, offered, answer in rows.all():
        if answer is not None and (pick := _picked(asked, offered, answer)) is not None:
            out.append(pick)
    return out


def _of_turn(event: Any, kind: str) -> ColumnElement[bool]:
    """``event`` is the ``kind`` event of the turn outcome's turn."""
    return and_(
        event.conversation_id == TurnOutcome.conversation_id,
        event.turn_id == TurnOutcome.turn_id,
        event.type == kind,
    )


def _norm(text: object) -> str:
    return " ".join(str(text).split())


def _picked(
    asked: dict[str, Any], offered: dict[str, Any], reply: dict[str, Any]
) -> SuggestionPick | None:
    """The pick when the user's next message (``reply``) is one of the offered entries."""
    question, text = _norm(asked.get("text", "")), _norm(reply.get("text", ""))
    items, ids = offered.get("items") or [], offered.get("ids") or []
    entry = {_norm(t): str(i) for t, i in zip(items, ids, strict=False)}.get(text)
    if not question or entry is None or text.lower() == question.lower():
        return None
    return SuggestionPick(question, entry, text)
