"""Webhook outbox: rows written in the same transaction as the change they announce
(filled in by the webhooks work, issue 5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def enqueue_webhook(
    session: Session, event_type: str, data: dict[str, Any], *, conversation_id: str | None = None
) -> None:
    """Queue ``event_type`` (e.g. ``contact.created``) with ``data`` for every matching
    subscription, inside the caller's transaction."""
    del session, event_type, data, conversation_id
