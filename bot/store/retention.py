"""Data retention: conversations without activity for a set time are erased.

A support transcript holds personal data; GDPR's storage limitation (Art. 5(1)(e)) asks that it
is kept no longer than needed. With ``conversation_retention_days`` set, a conversation whose
last activity (``conversations.updated_at``: every event, handoff change or close bumps it) lies
before the cutoff is erased with everything recorded for it, exactly as
``DELETE /api/v1/conversations/{id}`` erases one
(:func:`bot.store.listing.delete_conversation_sync`).

* :func:`expired_conversations` — ids of expired conversations, oldest activity first (the index
  on ``updated_at`` serves it);
* :func:`erase_if_expired_sync` — the erasure of one, re-checking the cutoff inside the write
  transaction, so a conversation that came back to life between the read and the write stays.

The server sweeps (``web.retention``), ``klartext db purge`` does it by hand. Contacts (the
lead-capture addresses) are kept: the CRM owns them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.store.listing import delete_conversation_sync, utc
from bot.store.models import Conversation


def retention_cutoff(days: float, *, now: datetime | None = None) -> datetime:
    """The moment before which a conversation's last activity makes it expired."""
    if days <= 0:
        raise ValueError("retention days must be positive")
    return (now or datetime.now(UTC)) - timedelta(days=days)


async def expired_conversations(
    session: AsyncSession, cutoff: datetime, *, limit: int = 200
) -> list[str]:
    """Up to ``limit`` ids of conversations last active before ``cutoff``, oldest first."""
    rows = await session.scalars(
        select(Conversation.id)
        .where(Conversation.updated_at < utc(cutoff))
        .order_by(Conversation.updated_at, Conversation.id)
        .limit(limit)
    )
    return list(rows)


async def count_expired(session: AsyncSession, cutoff: datetime) -> int:
    """How many conversations were last active before ``cutoff``."""
    n = await session.scalar(
        select(func.count()).select_from(Conversation).where(Conversation.updated_at < utc(cutoff))
    )
    return int(n or 0)


def erase_if_expired_sync(session: Session, conversation_id: str, cutoff: datetime) -> bool:
    """Erase the conversation if it is still expired; ``True`` when it was erased."""
    last = session.scalar(select(Conversation.updated_at).where(Conversation.id == conversation_id))
    if last is None or utc(last) >= utc(cutoff):
        return False
    return delete_conversation_sync(session, conversation_id)
