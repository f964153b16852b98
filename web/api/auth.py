"""API-key authentication: ``Authorization: Bearer <key>``, scopes enforced per route through
the ``Annotated`` dependencies :data:`ReadKey`, :data:`AgentKey` and :data:`AdminKey`.

Refusals: 401 ``missing_api_key`` (no bearer credentials), 401 ``invalid_api_key`` (unknown,
malformed or revoked key), 403 ``insufficient_scope`` (valid key without the route's scope),
429 ``rate_limited`` with ``Retry-After`` (more than ``api_requests_per_minute_per_key``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.store.apikeys import ApiKeyInfo, verify_api_key
from web.api.errors import ApiError
from web.deps import get_services

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `klartext apikey create`, sent as `Authorization: Bearer kt_…`.",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def authenticate(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKeyInfo:
    if creds is None or not creds.credentials:
        raise ApiError(
            401, "missing_api_key", "send an API key as `Authorization: Bearer <key>`", _CHALLENGE
        )
    async with get_services(request).db.session() as session:
        key = await verify_api_key(session, creds.credentials)
    if key is None:
        raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked", _CHALLENGE)
    _check_rate(request, key)
    return key


def _check_rate(request: Request, key: ApiKeyInfo) -> None:
    services = get_services(request)
    if services.guards is None:
        return
    limiter = services.guards.api_key
    wait = limiter.hit(key.id)
    if wait is None:
        return
    if services.metrics is not None:
        services.metrics.rate_limited.labels("api_key").inc()
    raise ApiError(
        429,
        "rate_limited",
        f"more than {limiter.limit} requests a minute with this API key; retry later",
        {"Retry-After": str(max(1, math.ceil(wait)))},
    )


def require_scope(scope: str) -> Callable[[ApiKeyInfo], Awaitable[ApiKeyInfo]]:
    async def check(key: Annotated[ApiKeyInfo, Depends(authenticate)]) -> ApiKeyInfo:
        if scope not in key.scopes:
            raise ApiError(
                403, "insufficient_scope", f"this operation needs an API key with scope {scope!r}"
            )
        return key

    return check


ReadKey = Annotated[ApiKeyInfo, Depends(require_scope("read"))]
AgentKey = Annotated[ApiKeyInfo, Depends(require_scope("agent"))]
AdminKey = Annotated[ApiKeyInfo, Depends(require_scope("admin"))]
