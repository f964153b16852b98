"""Webhook outbox: rows written in the same transaction as the change they announce.

:func:`enqueue_webhook` inserts one ``webhook_deliveries`` row per active subscription to the
event type (one ``INSERT … SELECT``), so the event exists exactly when the change committed; the
dispatcher (``bot.webhooks``) delivers it later, at least once. The set of active subscriptions
is cached per database for :data:`CACHE_TTL_S`: while nobody subscribes, a write pays a dict
lookup and no query. Changes through the API call :func:`invalidate_subscriptions` (other
replicas notice within the TTL).

:func:`events_appended` maps transcript events to webhook events (``message.created``,
``handoff.requested``, ``handoff.released``, ``conversation.closed``); the write paths in
``bot.store.writes`` call it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Integer, String, insert, literal, select
from sqlalchemy.orm import Session

from bot.store.models import EventRow, utcnow
from bot.store.webhook_models import WebhookDelivery, WebhookSubscription

if TYPE_CHECKING:
    from bot.store.writes import StoredEvent

CACHE_TTL_S = 2.0
_QUIET = ("pending_human", "human")
_Subs = tuple[tuple[str, frozenset[str]], ...]


class _SubscriptionCache:
    """Active subscriptions per database, ``(id, event types)``; thread-safe (the SQLite
    writer thread and the event loop both read it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[Any, ...], tuple[float, _Subs]] = {}
        self._generation = 0

    def get(self, session: Session) -> _Subs:
        url = session.get_bind().engine.url
        key = (url.get_backend_name(), url.host, url.port, url.database)
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            generation = self._generation
        if hit is not None and hit[0] > now:
            return hit[1]
        rows = session.execute(
            select(WebhookSubscription.id, WebhookSubscription.event_types).where(
                WebhookSubscription.active.is_(True)
            )
        ).all()
        subs: _Subs = tuple((str(r[0]), frozenset(r[1] or ())) for r in rows)
        with self._lock:
            if generation == self._generation:  # no invalidation raced with this read
                self._entries[key] = (now + CACHE_TTL_S, subs)
        return subs

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1


_cache = _SubscriptionCache()


def invalidate_subscriptions() -> None:
    """Forget the cached subscription sets (call after creating/changing/deleting one)."""
    _cache.clear()


def subscribed(session: Session, event_type: str) -> bool:
    """Whether any active subscription wants ``event_type`` (cached; cheap)."""
    return any(event_type in types for _id, types in _cache.get(session))


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def _body(
    event_id: str, event_type: str, at: datetime, conversation_id: str | None, data: dict[str, Any]
) -> str:
    envelope = {
        "id": event_id,
        "type": event_type,
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "conversation_id": conversation_id,
        "data": data,
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), default=str)


def enqueue_webhook(
    session: Session, event_type: str, data: dict[str, Any], *, conversation_id: str | None = None
) -> None:
    """Queue ``event_type`` (e.g. ``contact.created``) with ``data`` for every matching
    subscription, inside the caller's transaction."""
    ids = [sid for sid, types in _cache.get(session) if event_type in types]
    if not ids:
        return
    event_id = new_event_id()
    now = utcnow()
    ts = DateTime(timezone=True)
    body = _body(event_id, event_type, now, conversation_id, data)
    D, S = WebhookDelivery, WebhookSubscription  # noqa: N806
    rows = select(
        S.id,
        literal(event_id + ".", String) + S.id,
        literal(event_id, String),
        literal(event_type, String),
        literal(conversation_id, String),
        literal(body, String),
        literal("pending", String),
        literal(0, Integer),
        literal(now, ts),
        literal(now, ts),
    ).where(S.id.in_(ids), S.active.is_(True))
    cols = [
        D.subscription_id,
        D.idempotency_key,
        D.event_id,
        D.event_type,
        D.conversation_id,
        D.body,
        D.status,
        D.attempts,
        D.next_attempt_at,
        D.created_at,
    ]
    session.execute(insert(D).from_select(cols, rows))


def conversation_created(session: Session, conversation_id: str, lang: str | None) -> None:
    if subscribed(session, "conversation.created"):
        data = {"conversation_id": conversation_id, "lang": lang, "status": "open"}
        enqueue_webhook(session, "conversation.created", data, conversation_id=conversation_id)


def feedback_created(
    session: Session, conversation_id: str, turn_id: str, rating: str, comment: str | None
) -> None:
    if subscribed(session, "feedback.created"):
        data = {
            "conversation_id": conversation_id,
            "turn_id": turn_id,
            "rating": rating,
            "comment": comment,
        }
        enqueue_webhook(session, "feedback.created", data, conversation_id=conversation_id)


def _bot_text(session: Session, conversation_id: str, turn_id: str) -> str:
    rows = session.execute(
        select(EventRow.payload)
        .where(
            EventRow.conversation_id == conversation_id,
            EventRow.turn_id == turn_id,
            EventRow.type == "token",
        )
        .order_by(EventRow.seq)
    ).scalars()
    return "".join(str(p.get("text", "")) for p in rows)


def _message(session: Session, cid: str, ev: StoredEvent) -> dict[str, Any] | None:
    base: dict[str, Any] = {"conversation_id": cid, "seq": ev.seq, "turn_id": ev.turn_id}
    p = ev.payload
    if ev.type == "user_message":
        return {**base, "role": "user", "text": p.get("text"), "message_id": p.get("message_id")}
    if ev.type == "agent_message":
        return {**base, "role": "agent", "text": p.get("text"), "agent_name": p.get("agent_name")}
    if ev.type == "done" and ev.turn_id is not None:
        text = _bot_text(session, cid, ev.turn_id)
        if not text:  # e.g. the turn that only announced a handoff
            return None
        extra = {k: p.get(k) for k in ("mode", "answered", "confidence", "lang", "partial")}
        return {**base, "role": "bot", "text": text, **extra}
    return None


def _handoff(cid: str, ev: StoredEvent, previous: str) -> tuple[str, dict[str, Any]] | None:
    state = str(ev.payload.get("state", ""))
    reason = ev.payload.get("reason")
    data: dict[str, Any] = {
        "conversation_id": cid,
        "seq": ev.seq,
        "state": state,
        "previous_state": previous,
        "reason": reason,
    }
    if ev.payload.get("agent_name"):
        data["agent_name"] = ev.payload["agent_name"]
    if state in _QUIET and previous not in _QUIET:
        return "handoff.requested", data
    if state == "bot" and previous in _QUIET:
        return "handoff.released", data
    if state == "closed" and previous != "closed":
        return "conversation.closed", data
    return None


def events_appended(
    session: Session, conversation_id: str, events: Sequence[StoredEvent], previous_state: str
) -> None:
    """Queue the webhook events announced by transcript ``events`` just appended to a
    conversation whose ``handoff_state`` was ``previous_state``."""
    subs = _cache.get(session)
    if not subs:
        return
    wanted = frozenset().union(*(types for _id, types in subs))
    state = previous_state
    for ev in events:
        if ev.type == "handoff":
            found = _handoff(conversation_id, ev, state)
            state = str(ev.payload.get("state", state))
            if found is not None and found[0] in wanted:
                enqueue_webhook(session, found[0], found[1], conversation_id=conversation_id)
        elif "message.created" in wanted:
            msg = _message(session, conversation_id, ev)
            if msg is not None:
                enqueue_webhook(session, "message.created", msg, conversation_id=conversation_id)
