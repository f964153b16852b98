"""Listing the widget's thumbs (``feedback`` rows) for the CRM API: filters, keyset pagination
(newest first by ``(created_at, id)``), and per item the rated turn's question, answer text,
sources and answer mode (read from the turn's events in one query per page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.listing import MAX_LIMIT, BadCursorError, decode_cursor, encode_cursor, utc
from bot.store.models import EventRow, Feedback

_TURN_EVENTS = ("user_message", "token", "sources", "done")


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    rating: str | None = None
    conversation_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(slots=True)
class FeedbackItem:
    id: int
    conversation_id: str
    turn_id: str
    rating: str
    comment: str | None
    created_at: datetime
    question: str | None = None
    answer: str | None = None
    sources: list[dict[str, Any]] | None = None
    mode: str | None = None
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class FeedbackPage:
    items: list[FeedbackItem]
    next_cursor: str | None


def _cursor_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadCursorError("malformed cursor") from exc
    if not 0 <= value < 2**63:
        raise BadCursorError("malformed cursor")
    return value


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        return decode_cursor(cursor)
    except OverflowError as exc:  # a timestamp that cannot be expressed in UTC
        raise BadCursorError("malformed cursor") from exc


async def _attach_turns(session: AsyncSession, items: list[FeedbackItem]) -> None:
    if not items:
        return
    pairs = {(i.conversation_id, i.turn_id) for i in items}
    rows = await session.execute(
        select(EventRow.conversation_id, EventRow.turn_id, EventRow.type, EventRow.payload)
        .where(
            tuple_(EventRow.conversation_id, EventRow.turn_id).in_(sorted(pairs)),
            EventRow.type.in_(_TURN_EVENTS),
        )
        .order_by(EventRow.conversation_id, EventRow.seq)
    )
    by_turn = {(i.conversation_id, i.turn_id): i for i in items}
    answers: dict[tuple[str, str], list[str]] = {}
    for cid, tid, kind, payload in rows.all():
        item = by_turn.get((cid, tid))
        if item is None:
            continue
        if kind == "user_message":
            item.question = str(payload.get("text", ""))
        elif kind == "token":
            answers.setdefault((cid, tid), []).append(str(payload.get("text", "")))
        elif kind == "sources":
            item.sources = list(payload.get("items", []))
        elif kind == "done":
            item.mode = payload.get("mode")
            confidence = payload.get("confidence")
            item.confidence = float(confidence) if confidence is not None else None
    for key, parts in answers.items():
        by_turn[key].answer = "".join(parts)


async def list_feedback_page(
    session: AsyncSession, f: FeedbackFilter, *, limit: int = 50, cursor: str | None = None
) -> FeedbackPage:
    """One page of feedback, newest first; raises ``BadCursorError`` for a foreign cursor."""
    limit = max(1, min(limit, MAX_LIMIT))
    stmt = select(Feedback)
    if f.rating is not None:
        stmt = stmt.where(Feedback.rating == f.rating)
    if f.conversation_id is not None:
        stmt = stmt.where(Feedback.conversation_id == f.conversation_id)
    if f.created_after is not None:
        stmt = stmt.where(Feedback.created_at >= utc(f.created_after))
    if f.created_before is not None:
        stmt = stmt.where(Feedback.created_at < utc(f.created_before))
    if cursor:
        ts, raw_id = _decode(cursor)
        fid = _cursor_id(raw_id)
        stmt = stmt.where(
            or_(Feedback.created_at < ts, and_(Feedback.created_at == ts, Feedback.id < fid))
        )
    stmt = stmt.order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(limit + 1)
    rows = list(await session.scalars(stmt))
    more = len(rows) > limit
    items = [
        FeedbackItem(
            id=int(r.id),
            conversation_id=r.conversation_id,
            turn_id=r.turn_id,
            rating=r.rating,
            comment=r.comment,
            created_at=utc(r.created_at),
        )
        for r in rows[:limit]
    ]
    await _attach_turns(session, items)
    last = items[-1] if items else None
    nxt = encode_cursor(last.created_at, str(last.id)) if more and last else None
    return FeedbackPage(items, nxt)
