"""Handoff timeouts and agent availability in the store (migration 0005).

* ``conversations.handoff_requested_at`` is set when a conversation enters ``pending_human``
  (:func:`bot.store.writes.update_conversation` keeps an earlier value while it stays there).
* :func:`claim_expired` is the guard of the timeout fallback: a conditional ``UPDATE`` that only
  matches while the conversation is still open, ``pending_human`` and (unless forced) waiting
  since before the cutoff. It locks the row until commit, so with several replicas sweeping at
  once exactly one of them wins; the others match nothing and do nothing.
* :class:`AgentAvailability` is a one-row switch (``id = 1``); no row means "available".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, ColumnElement, DateTime, Integer, String, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.store.models import Base, Conversation, utcnow

_ROW_ID = 1


class AgentAvailability(Base):
    __tablename__ = "agent_availability"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True, slots=True)
class Availability:
    available: bool
    note: str | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


def _waiting_since() -> ColumnElement[datetime]:
    # rows from before migration 0005 have no request time: their last change stands in
    return func.coalesce(Conversation.handoff_requested_at, Conversation.updated_at)


async def due_conversations(
    session: AsyncSession, *, older_than: datetime | None, limit: int = 100
) -> list[str]:
    """Ids of open ``pending_human`` conversations waiting since ``older_than`` or earlier
    (``None``: all of them), longest-waiting first."""
    stmt = select(Conversation.id).where(
        Conversation.status == "open", Conversation.handoff_state == "pending_human"
    )
    if older_than is not None:
        stmt = stmt.where(_waiting_since() <= older_than)
    stmt = stmt.order_by(_waiting_since()).limit(limit)
    return list((await session.scalars(stmt)).all())


def claim_expired(s: Session, conversation_id: str, *, older_than: datetime | None) -> str | None:
    """Inside a write: if the conversation is still open and ``pending_human`` (and waiting
    since ``older_than`` or earlier, unless ``None``), lock it and return its language
    (``""`` when unknown); else ``None`` and nothing changed."""
    stmt = update(Conversation).where(
        Conversation.id == conversation_id,
        Conversation.status == "open",
        Conversation.handoff_state == "pending_human",
    )
    if older_than is not None:
        stmt = stmt.where(_waiting_since() <= older_than)
    row = s.execute(
        stmt.values(updated_at=utcnow())
        .returning(Conversation.lang)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return None
    return str(row[0] or "")


async def get_availability(session: AsyncSession) -> Availability:
    row = await session.get(AgentAvailability, _ROW_ID)
    if row is None:
        return Availability(available=True)
    return Availability(row.available, row.note, row.updated_by, row.updated_at)


def set_availability(
    s: Session, *, available: bool, note: str | None = None, updated_by: str | None = None
) -> Availability:
    row = s.get(AgentAvailability, _ROW_ID)
    now = utcnow()
    if row is None:
        row = AgentAvailability(id=_ROW_ID)
        s.add(row)
    row.available, row.note, row.updated_by, row.updated_at = available, note, updated_by, now
    s.flush()
    return Availability(available, note, updated_by, now)
