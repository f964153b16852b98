"""Every route × scope over real HTTP: 401 without / with a bad or revoked key, 403 with a
key lacking the route's scope (and nothing changes), 2xx with the right scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from _apiutil import Api

SINGLE = ("read", "agent", "admin")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {cid} is replaced by a fresh conversation's id
    scope: str
    ok: int
    body: dict[str, Any] | None = None
    prepare: str | None = None  # "close": the conversation starts closed


ROUTES = [
    Route("GET", "/api/v1/conversations", "read", 200),
    Route("GET", "/api/v1/conversations/{cid}", "read", 200),
    Route("GET", "/api/v1/conversations/{cid}/export?format=md", "read", 200),
    Route("GET", "/api/v1/conversations/{cid}/export?format=json", "read", 200),
    Route("POST", "/api/v1/conversations/{cid}/close", "agent", 200),
    Route("POST", "/api/v1/conversations/{cid}/reopen", "agent", 200, prepare="close"),
    Route("POST", "/api/v1/conversations/{cid}/handoff", "agent", 200),
    Route(
        "POST",
        "/api/v1/conversations/{cid}/messages",
        "agent",
        201,
        body={"text": "Hi, Ana here.", "agent_name": "Ana"},
    ),
    Route("POST", "/api/v1/conversations/{cid}/release", "agent", 200, prepare="handoff"),
    Route("DELETE", "/api/v1/conversations/{cid}", "admin", 204),
]


async def _snapshot(api: Api, cid: str) -> tuple[int, dict[str, Any]]:
    r = await api.call("GET", f"/api/v1/conversations/{cid}")
    return r.status_code, r.json()


async def test_every_route_enforces_its_scope(api: Api) -> None:
    for route in ROUTES:
        cid = await api.seed()
        if route.prepare:
            prep = await api.call("POST", f"/api/v1/conversations/{cid}/{route.prepare}")
            assert prep.status_code == 200, prep.text
        path = route.path.format(cid=cid)
        before = await _snapshot(api, cid)

        async def send(key: str | None, r: Route = route, p: str = path) -> httpx.Response:
            return await api.call(r.method, p, key, json=r.body)

        missing = await send(None)
        assert missing.status_code == 401, (route, missing.text)
        assert missing.json() == {
            "error": {"code": "missing_api_key", "message": missing.json()["error"]["message"]}
        }
        assert missing.headers["www-authenticate"] == "Bearer"
        revoked = await send("revoked")
        assert (revoked.status_code, revoked.json()["error"]["code"]) == (401, "invalid_api_key")
        for key in SINGLE:
            if key == route.scope:
                continue
            refused = await send(key)
            assert refused.status_code == 403, (route, key, refused.text)
            assert refused.json()["error"]["code"] == "insufficient_scope"
            assert route.scope in refused.json()["error"]["message"]
        assert await _snapshot(api, cid) == before, route  # refusals changed nothing
        done = await send(route.scope)
        assert done.status_code == route.ok, (route, done.text)


async def test_malformed_credentials(api: Api) -> None:
    path = "/api/v1/conversations"
    cases = {
        "Basic dXNlcjpwdw==": "missing_api_key",
        "Bearer": "missing_api_key",
        "Bearer kt_not-a-real-key": "invalid_api_key",
        "Bearer " + "x" * 500: "invalid_api_key",
        f"Bearer {api.keys['all']}x": "invalid_api_key",
    }
    for header, code in cases.items():
        r = await api.http.get(path, headers={"Authorization": header})
        assert (r.status_code, r.json()["error"]["code"]) == (401, code), header
    ok = await api.http.get(path, headers={"Authorization": f"bearer {api.keys['read']}"})
    assert ok.status_code == 200


async def test_openapi_documents_the_routes_and_the_bearer_scheme(api_sqlite: Api) -> None:
    spec = (await api_sqlite.http.get("/openapi.json")).json()
    paths = spec["paths"]
    for p in (
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}",
        "/api/v1/conversations/{conversation_id}/export",
        "/api/v1/conversations/{conversation_id}/close",
        "/api/v1/conversations/{conversation_id}/reopen",
        "/api/v1/conversations/{conversation_id}/handoff",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/conversations/{conversation_id}/release",
    ):
        assert p in paths, p
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert "403" in paths["/api/v1/conversations"]["get"]["responses"]


async def test_unknown_api_route_and_method_use_the_error_body(api_sqlite: Api) -> None:
    r = await api_sqlite.call("GET", "/api/v1/nothing-here")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    r = await api_sqlite.call("PUT", "/api/v1/conversations")
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")
    page = await api_sqlite.http.get("/no-such-page")  # outside /api: the default body
    assert page.status_code == 404 and "error" not in page.json()


async def test_authentication_comes_before_validation(api_sqlite: Api) -> None:
    r = await api_sqlite.call("GET", "/api/v1/conversations?limit=0&status=maybe", None)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "missing_api_key")
    r = await api_sqlite.call("POST", "/api/v1/conversations/x/messages", "read", json={})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "insufficient_scope")
