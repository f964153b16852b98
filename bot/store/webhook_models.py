"""ORM models of webhooks (issue 5): subscriptions and their deliveries — the persistent outbox.

A delivery row is written in the same transaction as the change it announces
(:func:`bot.store.outbox.enqueue_webhook`) and carries the exact JSON ``body`` that is signed and
POSTed, so every retry sends the same bytes. ``next_attempt_at`` doubles as the claim lease: the
dispatcher pushes it into the future when it takes a row, so a crashed dispatcher's rows become
due again by themselves.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base, utcnow

EventType = Literal[
    "conversation.created",
    "message.created",
    "handoff.requested",
    "handoff.released",
    "conversation.closed",
    "feedback.created",
    "contact.created",
]
DeliveryStatus = Literal["pending", "delivered", "failed"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),
        UniqueConstraint("idempotency_key", name="uq_webhook_deliveries_idempotency_key"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    subscription_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    idempotency_key: Mapped[str] = mapped_column(String(80))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(40))
    conversation_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True, index=True
    )
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def payload_of(row: WebhookDelivery) -> dict[str, Any]:
    """The delivery's JSON body, parsed."""
    out: dict[str, Any] = json.loads(row.body)
    return out
