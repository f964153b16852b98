"""Webhook subscriptions and the delivery log, for the REST API (async; the caller commits).

Secrets are kept in clear text — the dispatcher needs them to sign — and are returned only when
created or rotated. Every change calls :func:`bot.store.outbox.invalidate_subscriptions` so
this process's outbox sees it at once (other replicas within ``outbox.CACHE_TTL_S``).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import utcnow
from bot.store.outbox import invalidate_subscriptions
from bot.store.webhook_models import WebhookDelivery, WebhookSubscription

D, S = WebhookDelivery, WebhookSubscription
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    pending: int = 0
    delivered: int = 0
    failed: int = 0


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


async def create_subscription(
    session: AsyncSession,
    *,
    url: str,
    event_types: Sequence[str],
    description: str | None = None,
    active: bool = True,
) -> WebhookSubscription:
    now = utcnow()
    sub = WebhookSubscription(
        id="wh_" + uuid.uuid4().hex[:24],
        url=url,
        event_types=sorted(set(event_types)),
        secret=new_secret(),
        description=description,
        active=active,
        created_at=now,
        updated_at=now,
    )
    session.add(sub)
    await session.flush()
    invalidate_subscriptions()
    return sub


async def get_subscription(session: AsyncSession, sub_id: str) -> WebhookSubscription | None:
    return await session.get(WebhookSubscription, sub_id)


async def list_subscriptions(session: AsyncSession) -> list[WebhookSubscription]:
    return list(await session.scalars(select(S).order_by(S.created_at, S.id)))


async def update_subscription(
    session: AsyncSession,
    sub_id: str,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = _UNSET,
    active: bool | None = None,
    rotate_secret: bool = False,
) -> WebhookSubscription | None:
    """Change the given fields; ``None`` leaves one as it is (``description`` may be set to
    ``None``). Returns ``None`` for an unknown id."""
    sub = await session.get(WebhookSubscription, sub_id, with_for_update=True)
    if sub is None:
        return None
    if url is not None:
        sub.url = url
    if event_types is not None:
        sub.event_types = sorted(set(event_types))
    if description is not _UNSET:
        sub.description = description
    if active is not None:
        sub.active = active
    if rotate_secret:
        sub.secret = new_secret()
    sub.updated_at = utcnow()
    await session.flush()
    invalidate_subscriptions()
    return sub


async def delete_subscription(session: AsyncSession, sub_id: str) -> bool:
    """Delete a subscription and its delivery log (pending deliveries are dropped)."""
    await session.execute(delete(D).where(D.subscription_id == sub_id))
    result = await session.execute(delete(S).where(S.id == sub_id))
    invalidate_subscriptions()
    return bool(getattr(result, "rowcount", 0))


async def delivery_stats(session: AsyncSession, sub_ids: Sequence[str]) -> dict[str, DeliveryStats]:
    """Delivery counts per status for each subscription."""
    if not sub_ids:
        return {}
    rows = await session.execute(
        select(D.subscription_id, D.status, func.count())
        .where(D.subscription_id.in_(list(sub_ids)))
        .group_by(D.subscription_id, D.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for sid, status, n in rows:
        counts.setdefault(str(sid), {})[str(status)] = int(n)
    return {
        sid: DeliveryStats(
            **{k: v for k, v in c.items() if k in ("pending", "delivered", "failed")}
        )
        for sid, c in counts.items()
    }


async def list_deliveries(
    session: AsyncSession,
    sub_id: str,
    *,
    status: str | None = None,
    event_type: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """The delivery log of a subscription, newest first; ``before_id`` pages back."""
    q = select(D).where(D.subscription_id == sub_id)
    if status is not None:
        q = q.where(D.status == status)
    if event_type is not None:
        q = q.where(D.event_type == event_type)
    if before_id is not None:
        q = q.where(D.id < before_id)
    return list(await session.scalars(q.order_by(D.id.desc()).limit(limit)))


async def get_delivery(
    session: AsyncSession, sub_id: str, delivery_id: int
) -> WebhookDelivery | None:
    row = await session.get(WebhookDelivery, delivery_id)
    return row if row is not None and row.subscription_id == sub_id else None


async def redeliver(
    session: AsyncSession, sub_id: str, delivery_id: int, *, at: datetime | None = None
) -> WebhookDelivery | None:
    """Queue a delivery again (same body and idempotency key), due now: one more attempt
    for a failed one, or a repeat of a delivered one."""
    result = await session.execute(
        update(D)
        .where(D.id == delivery_id, D.subscription_id == sub_id)
        .values(status="pending", next_attempt_at=at or utcnow(), claimed_by=None)
    )
    if not getattr(result, "rowcount", 0):
        return None
    row = await session.get(WebhookDelivery, delivery_id, populate_existing=True)
    return row
