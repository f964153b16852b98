"""Scope checks shared by the contacts / feedback / stats API tests: every refusal a route can
give for authentication (401 missing / invalid / revoked key, 403 per other scope), then the
route's success with its own scope."""

from __future__ import annotations

from typing import Any

import httpx
from _apiutil import Api

SCOPES = ("read", "agent", "admin")


async def check_scopes(
    api: Api, method: str, path: str, scope: str, ok: int, body: dict[str, Any] | None = None
) -> httpx.Response:
    kw: dict[str, Any] = {"json": body} if body is not None else {}
    r = await api.call(method, path, None, **kw)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "missing_api_key"), path
    bogus = {"Authorization": "Bearer kt_bogus"}
    r = await api.http.request(method, path, headers=bogus, **kw)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key"), path
    if "revoked" in api.keys:
        r = await api.call(method, path, "revoked", **kw)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key"), path
    for other in SCOPES:
        if other != scope:
            r = await api.call(method, path, other, **kw)
            assert (r.status_code, r.json()["error"]["code"]) == (403, "insufficient_scope")
    r = await api.call(method, path, scope, **kw)
    assert r.status_code == ok, (path, r.text)
    return r
