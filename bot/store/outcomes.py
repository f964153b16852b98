"""One narrow row per finished bot turn: ``turn_outcomes`` (migration 0007).

Written with the turn's ``done`` event, in the same transaction, from both write paths
(:mod:`bot.store.writes` and, on SQLite, :mod:`bot.store.sqlite_fast`): the ``done`` event's
``mode``, ``answered``, ``partial`` and ``confidence`` as typed columns, with the event's
``seq``, ``turn_id`` and time. The stats (:mod:`bot.store.stats`) aggregate these rows instead of
parsing every ``done`` event's JSON payload: at 500k turns in 30 days the per-day aggregate
went from ~2 s to ~0.27 s and the newest unanswered questions from ~0.85 s to ~0.04 s on
PostgreSQL (docs/benchmarks.md, "CRM API"). The event stays the record; this is its index.

Erasure deletes the rows with the conversation (explicitly and by ``ON DELETE CASCADE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    insert,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.store.models import Base


class TurnOutcome(Base):
    __tablename__ = "turn_outcomes"
    __table_args__ = (
        Index("ix_turn_outcomes_created_at", "created_at"),
        Index("ix_turn_outcomes_conversation", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    turn_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)  # the done event's
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    mode: Mapped[str] = mapped_column(String(32))
    answered: Mapped[bool] = mapped_column(Boolean)
    partial: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)


OutcomeRow = tuple[int, str | None, str, bool, bool, float | None]


def outcome_rows(events: Sequence[Any]) -> list[OutcomeRow]:
    """``(seq, turn_id, mode, answered, partial, confidence)`` of the ``done`` events among
    stored ``events`` (objects with ``seq``, ``type``, ``turn_id``, ``payload``)."""
    rows: list[OutcomeRow] = []
    for e in events:
        if e.type != "done":
            continue
        p = e.payload
        conf = p.get("confidence")
        number = isinstance(conf, int | float) and not isinstance(conf, bool)
        rows.append(
            (
                e.seq,
                e.turn_id,
                str(p.get("mode") or "")[:32],
                p.get("answered") is True,
                p.get("partial") is True,
                float(conf) if number else None,
            )
        )
    return rows


def record(session: Session, conversation_id: str, rows: list[OutcomeRow], now: datetime) -> None:
    """Insert ``rows`` (from :func:`outcome_rows`) in the session's transaction."""
    if not rows:
        return
    session.execute(
        insert(TurnOutcome),
        [
            {
                "conversation_id": conversation_id,
                "turn_id": turn,
                "seq": seq,
                "created_at": now,
                "mode": mode,
                "answered": answered,
                "partial": partial,
                "confidence": conf,
            }
            for seq, turn, mode, answered, partial, conf in rows
        ],
    )
