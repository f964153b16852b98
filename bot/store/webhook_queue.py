"""The dispatcher's side of the webhook outbox, as sync write operations (run them through
``Database.write``): claim due deliveries, record attempt results, release claims, prune.

Claiming is safe with several replicas: on PostgreSQL the due rows are selected ``FOR UPDATE
SKIP LOCKED`` (two dispatchers never take the same row) and their ``next_attempt_at`` is pushed
``lease_s`` into the future in the same transaction — the lease. A dispatcher that dies holding
rows loses them to whoever polls after the lease. SQLite has one writer (and one process).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Text, and_, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from bot.store.models import utcnow
from bot.store.webhook_models import WebhookDelivery, WebhookSubscription

D, S = WebhookDelivery, WebhookSubscription


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    idempotency_key: str
    event_type: str
    body: str
    attempts: int  # attempts made before this one
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt: ``status`` is ``delivered``, ``pending`` (retry at
    ``next_attempt_at``) or ``failed`` (no attempts left)."""

    id: int
    status: str
    next_attempt_at: datetime
    attempted_at: datetime
    response_code: int | None
    error: str | None


def any_due(session: Session) -> bool:
    """Whether some delivery is due (a cheap read: the ``(status, next_attempt_at)`` index)."""
    found = session.scalar(
        select(D.id)
        .join(S, S.id == D.subscription_id)
        .where(D.status == "pending", D.next_attempt_at <= utcnow(), S.active.is_(True))
        .limit(1)
    )
    return found is not None


def claim_due(session: Session, *, limit: int, lease_s: float, worker: str) -> list[Claimed]:
    """Take up to ``limit`` due deliveries of active subscriptions, oldest due first."""
    now = utcnow()
    ids = list(
        session.scalars(
            select(D.id)
            .join(S, S.id == D.subscription_id)
            .where(D.status == "pending", D.next_attempt_at <= now, S.active.is_(True))
            .order_by(D.next_attempt_at, D.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=D)
        )
    )
    if not ids:
        return []
    session.execute(
        update(D)
        .where(D.id.in_(ids))
        .values(next_attempt_at=now + timedelta(seconds=lease_s), claimed_by=worker)
    )
    rows = session.execute(
        select(D.id, D.idempotency_key, D.event_type, D.body, D.attempts, S.url, S.secret)
        .join(S, S.id == D.subscription_id)
        .where(D.id.in_(ids))
        .order_by(D.id)
    ).all()
    return [Claimed(*r) for r in rows]


def record_outcomes(session: Session, outcomes: list[Outcome]) -> None:
    """Store attempt results (one executemany): attempts + 1, status, next attempt, response
    code; ``last_error`` keeps the newest error (a delivered row shows why earlier tries
    failed)."""
    if not outcomes:
        return
    stmt = (
        update(D)
        .where(D.id == bindparam("b_id"))
        .values(
            attempts=D.attempts + 1,
            status=bindparam("b_status"),
            next_attempt_at=bindparam("b_next"),
            last_attempt_at=bindparam("b_at"),
            response_code=bindparam("b_code"),
            last_error=func.coalesce(bindparam("b_error", type_=Text), D.last_error),
            delivered_at=bindparam("b_delivered"),
            claimed_by=None,
        )
    )
    session.connection().execute(
        stmt,
        [
            {
                "b_id": o.id,
                "b_status": o.status,
                "b_next": o.next_attempt_at,
                "b_at": o.attempted_at,
                "b_code": o.response_code,
                "b_error": o.error,
                "b_delivered": o.attempted_at if o.status == "delivered" else None,
            }
            for o in outcomes
        ],
    )


def release_claims(session: Session, worker: str | None = None) -> int:
    """Make claimed, unfinished deliveries due now: those of ``worker`` (a clean shutdown), or
    all of them (``None``: a single-process SQLite server starting up — nobody else runs)."""
    cond = D.claimed_by.is_not(None) if worker is None else D.claimed_by == worker
    result = session.execute(
        update(D)
        .where(and_(D.status == "pending", cond))
        .values(next_attempt_at=utcnow(), claimed_by=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def prune(session: Session, *, older_than: datetime) -> int:
    """Delete finished (delivered / failed) deliveries created before ``older_than``."""
    result = session.execute(
        delete(D).where(D.status.in_(["delivered", "failed"]), D.created_at < older_than)
    )
    return int(getattr(result, "rowcount", 0) or 0)
