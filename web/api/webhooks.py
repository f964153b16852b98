"""``/api/v1/webhooks`` (scope ``admin``): subscriptions (the secret is shown once, on create or
rotation), the delivery log, redelivery. Deliveries themselves are made by the outbox
dispatcher (``bot.webhooks``); see ``docs/api.md`` § Webhooks for headers and signatures."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AfterValidator, AnyHttpUrl, BaseModel, Field

from bot.store import webhook_subs as subs
from bot.store.webhook_models import (
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookSubscription,
    payload_of,
)
from web.api.auth import AdminKey
from web.api.errors import ApiError, responses
from web.deps import ServicesDep

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
_ERRORS = responses(401, 403, 404, 422)

MAX_PAGE = 200
_MAX_ID = 2**63 - 1  # BIGINT
_MAX_URL = 2048
DeliveryId = Annotated[int, Path(ge=1, le=_MAX_ID)]


def _short_url(url: AnyHttpUrl) -> AnyHttpUrl:
    if len(str(url)) > _MAX_URL:
        raise ValueError(f"at most {_MAX_URL} characters")
    return url


HookUrl = Annotated[AnyHttpUrl, AfterValidator(_short_url)]


class SubscriptionIn(BaseModel):
    url: HookUrl = Field(description="Where events are POSTed (http or https).")
    event_types: list[EventType] = Field(min_length=1, max_length=7)
    description: str | None = Field(None, max_length=200)
    active: bool = True


class SubscriptionPatch(BaseModel):
    url: HookUrl | None = None
    event_types: list[EventType] | None = Field(None, min_length=1, max_length=7)
    description: str | None = Field(None, max_length=200)
    active: bool | None = None
    rotate_secret: bool = Field(False, description="Issue a new secret (returned once).")


class DeliveryCounts(BaseModel):
    pending: int = 0
    delivered: int = 0
    failed: int = 0


class SubscriptionOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_at: datetime
    updated_at: datetime
    deliveries: DeliveryCounts | None = None
    secret: str | None = Field(
        None,
        description="Only in the answer to create / rotate_secret: keep it, it is not shown again.",
    )

    @classmethod
    def of(
        cls,
        sub: WebhookSubscription,
        *,
        secret: bool = False,
        counts: subs.DeliveryStats | None = None,
    ) -> SubscriptionOut:
        return cls(
            id=sub.id,
            url=sub.url,
            event_types=list(sub.event_types),
            description=sub.description,
            active=sub.active,
            created_at=sub.created_at,
            updated_at=sub.updated_at,
            deliveries=DeliveryCounts(**_counts(counts)) if counts is not None else None,
            secret=sub.secret if secret else None,
        )


def _counts(counts: subs.DeliveryStats) -> dict[str, int]:
    return {"pending": counts.pending, "delivered": counts.delivered, "failed": counts.failed}


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class DeliveryOut(BaseModel):
    id: int
    subscription_id: str
    idempotency_key: str = Field(description="Sent as `Klartext-Delivery-Id`.")
    event_id: str
    event_type: str
    conversation_id: str | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt.")
    last_attempt_at: datetime | None
    last_error: str | None
    response_code: int | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] | None = Field(None, description="The body (single delivery only).")

    @classmethod
    def of(cls, row: WebhookDelivery, *, payload: bool = False) -> DeliveryOut:
        return cls(
            id=row.id,
            subscription_id=row.subscription_id,
            idempotency_key=row.idempotency_key,
            event_id=row.event_id,
            event_type=row.event_type,
            conversation_id=row.conversation_id,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            last_attempt_at=row.last_attempt_at,
            last_error=row.last_error,
            response_code=row.response_code,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            payload=payload_of(row) if payload else None,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older deliveries.")


def _not_found(sub_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no webhook subscription {sub_id!r}")


@router.post("", status_code=201, responses=_ERRORS)
async def create(body: SubscriptionIn, services: ServicesDep, _key: AdminKey) -> SubscriptionOut:
    """Subscribe ``url`` to ``event_types``. The answer holds the signing ``secret`` — the
    only time it is shown."""
    async with services.db.writing() as session:
        sub = await subs.create_subscription(
            session,
            url=str(body.url),
            event_types=body.event_types,
            description=body.description,
            active=body.active,
        )
    return SubscriptionOut.of(sub, secret=True)


@router.get("", responses=_ERRORS)
async def list_(services: ServicesDep, _key: AdminKey) -> SubscriptionList:
    """All subscriptions, oldest first, with delivery counts per status."""
    async with services.db.session() as session:
        rows = await subs.list_subscriptions(session)
        counts = await subs.delivery_stats(session, [r.id for r in rows])
    empty = subs.DeliveryStats()
    return SubscriptionList(
        items=[SubscriptionOut.of(r, counts=counts.get(r.id, empty)) for r in rows]
    )


@router.get("/{subscription_id}", responses=_ERRORS)
async def get(subscription_id: str, services: ServicesDep, _key: AdminKey) -> SubscriptionOut:
    async with services.db.session() as session:
        sub = await subs.get_subscription(session, subscription_id)
        if sub is None:
            raise _not_found(subscription_id)
        counts = await subs.delivery_stats(session, [sub.id])
    return SubscriptionOut.of(sub, counts=counts.get(sub.id, subs.DeliveryStats()))


@router.patch("/{subscription_id}", responses=_ERRORS)
async def update(
    subscription_id: str, body: SubscriptionPatch, services: ServicesDep, _key: AdminKey
) -> SubscriptionOut:
    """Change url, event types, description or ``active`` (inactive: deliveries wait);
    ``rotate_secret`` issues a new secret, returned in this answer only."""
    changes: dict[str, Any] = {}
    if "description" in body.model_fields_set:
        changes["description"] = body.description
    async with services.db.writing() as session:
        sub = await subs.update_subscription(
            session,
            subscription_id,
            url=str(body.url) if body.url is not None else None,
            event_types=body.event_types,
            active=body.active,
            rotate_secret=body.rotate_secret,
            **changes,
        )
        if sub is None:
            raise _not_found(subscription_id)
    return SubscriptionOut.of(sub, secret=body.rotate_secret)


@router.delete("/{subscription_id}", status_code=204, responses=_ERRORS)
async def delete(subscription_id: str, services: ServicesDep, _key: AdminKey) -> Response:
    """Delete the subscription with its delivery log; pending deliveries are dropped."""
    async with services.db.writing() as session:
        found = await subs.delete_subscription(session, subscription_id)
    if not found:
        raise _not_found(subscription_id)
    return Response(status_code=204)


@router.get("/{subscription_id}/deliveries", responses=responses(400, 401, 403, 404, 422))
async def deliveries(
    subscription_id: str,
    services: ServicesDep,
    _key: AdminKey,
    status: DeliveryStatus | None = None,
    event_type: EventType | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> DeliveryPage:
    """The delivery log, newest first: status, attempts, next attempt, last error and
    response code."""
    before: int | None = None
    if cursor is not None:
        if not cursor.isdigit() or not 0 < int(cursor) <= _MAX_ID:
            raise ApiError(400, "invalid_cursor", "the cursor is malformed")
        before = int(cursor)
    async with services.db.session() as session:
        if await subs.get_subscription(session, subscription_id) is None:
            raise _not_found(subscription_id)
        rows = await subs.list_deliveries(
            session,
            subscription_id,
            status=status,
            event_type=event_type,
            before_id=before,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(
        items=[DeliveryOut.of(r) for r in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


@router.get("/{subscription_id}/deliveries/{delivery_id}", responses=_ERRORS)
async def delivery(
    subscription_id: str, delivery_id: DeliveryId, services: ServicesDep, _key: AdminKey
) -> DeliveryOut:
    """One delivery, with its payload."""
    async with services.db.session() as session:
        row = await subs.get_delivery(session, subscription_id, delivery_id)
    if row is None:
        raise ApiError(404, "not_found", f"no delivery {delivery_id} of {subscription_id!r}")
    return DeliveryOut.of(row, payload=True)


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=_ERRORS,
)
async def redeliver(
    subscription_id: str,
    delivery_id: DeliveryId,
    request: Request,
    services: ServicesDep,
    _key: AdminKey,
) -> DeliveryOut:
    """Queue the delivery again now, with the same body and ``Klartext-Delivery-Id``
    (one more attempt for a failed one)."""
    async with services.db.writing() as session:
        row = await subs.redeliver(session, subscription_id, delivery_id)
    if row is None:
        raise ApiError(404, "not_found", f"no delivery {delivery_id} of {subscription_id!r}")
    dispatcher = getattr(request.app.state, "webhook_dispatcher", None)
    if dispatcher is not None:
        dispatcher.wake()
    return DeliveryOut.of(row)
