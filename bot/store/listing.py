"""Reads and deletes of the CRM API: filtered conversation listing with keyset (cursor)
pagination, a conversation's events with their timestamps, and the GDPR delete.

Order is newest first by ``(created_at, id)``, which is unique and stable: a cursor is the
``(created_at, id)`` of the last row of a page, so rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.store.models import Conversation, EventRow, Feedback, MessageKey
from bot.store.outcomes import TurnOutcome

SEARCHED_TYPES = ("user_message", "token", "agent_message")
MAX_LIMIT = 200


class BadCursorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    status: str | None = None
    handoff_state: str | None = None
    lang: str | None = None
    contact_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    q: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: str
    created_at: datetime
    updated_at: datetime
    lang: str | None
    status: str
    handoff_state: str
    contact_id: str | None
    last_seq: int


@dataclass(frozen=True, slots=True)
class Page:
    items: list[ConversationRow]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class TimedEvent:
    seq: int
    type: str
    turn_id: str | None
    payload: dict[str, Any]
    created_at: datetime


def utc(ts: datetime) -> datetime:
    """Aware UTC (SQLite returns naive datetimes; naive input is taken as UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def encode_cursor(created_at: datetime, conversation_id: str) -> str:
    raw = json.dumps([utc(created_at).isoformat(), conversation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, cid = json.loads(raw)
        if not isinstance(ts, str) or not isinstance(cid, str):
            raise TypeError
        return utc(datetime.fromisoformat(ts)), cid
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursorError("malformed cursor") from exc


def _row(c: Conversation) -> ConversationRow:
    return ConversationRow(
        id=c.id,
        created_at=utc(c.created_at),
        updated_at=utc(c.updated_at),
        lang=c.lang,
        status=c.status,
        handoff_state=c.handoff_state,
        contact_id=c.contact_id,
        last_seq=int(c.last_seq),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(f: ConversationFilter) -> Select[Conversation]:
    stmt = select(Conversation)
    for column, value in (
        (Conversation.status, f.status),
        (Conversation.handoff_state, f.handoff_state),
        (Conversation.lang, f.lang),
        (Conversation.contact_id, f.contact_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.created_after is not None:
        stmt = stmt.where(Conversation.created_at >= utc(f.created_after))
    if f.created_before is not None:
        stmt = stmt.where(Conversation.created_at < utc(f.created_before))
    if f.q:
        pattern = f"%{_escape_like(f.q)}%"
        stmt = stmt.where(
            exists().where(
                EventRow.conversation_id == Conversation.id,
                EventRow.type.in_(SEARCHED_TYPES),
                EventRow.payload["text"].as_string().ilike(pattern, escape="\\"),
            )
        )
    return stmt


async def list_conversations(
    session: AsyncSession,
    f: ConversationFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """One page, newest first. Raises ``BadCursorError`` for a cursor not made here."""
    limit = max(1, min(limit, MAX_LIMIT))
    stmt = _filtered(f)
    if cursor:
        ts, cid = decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                Conversation.created_at < ts,
                and_(Conversation.created_at == ts, Conversation.id < cid),
            )
        )
    stmt = stmt.order_by(Conversation.created_at.desc(), Conversation.id.desc()).limit(limit + 1)
    rows = [_row(c) for c in await session.scalars(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return Page(rows, nxt)


async def get_conversation_row(
    session: AsyncSession, conversation_id: str
) -> ConversationRow | None:
    conv = await session.get(Conversation, conversation_id, populate_existing=True)
    return _row(conv) if conv is not None else None


async def timed_events(session: AsyncSession, conversation_id: str) -> list[TimedEvent]:
    """All events of a conversation, oldest first, with their timestamps."""
    rows = await session.execute(
        select(EventRow.seq, EventRow.type, EventRow.turn_id, EventRow.payload, EventRow.created_at)
        .where(EventRow.conversation_id == conversation_id)
        .order_by(EventRow.seq)
    )
    return [TimedEvent(int(r[0]), r[1], r[2], dict(r[3]), utc(r[4])) for r in rows.all()]


def delete_conversation_sync(session: Session, conversation_id: str) -> bool:
    """Delete a conversation and everything recorded for it (GDPR erasure). The dependent
    rows are deleted explicitly, not only through ``ON DELETE CASCADE``, so the erasure does
    not depend on SQLite's ``foreign_keys`` pragma. ``False`` if there was no such conversation.
    Runs inside ``Database.write`` (or the caller's transaction)."""
    for model in (EventRow, MessageKey, Feedback, TurnOutcome):
        session.execute(delete(model).where(model.conversation_id == conversation_id))
    result = session.execute(delete(Conversation).where(Conversation.id == conversation_id))
    return bool(getattr(result, "rowcount", 0))


async def delete_conversation(session: AsyncSession, conversation_id: str) -> bool:
    """:func:`delete_conversation_sync` for an ``AsyncSession`` (the caller commits)."""
    return await session.run_sync(lambda s: delete_conversation_sync(s, conversation_id))
