"""Webhooks over real HTTP, on SQLite and PostgreSQL: subscriptions through the API, events from
a real websocket conversation and the REST handoff delivered signed to a real local receiver
(which fails the first attempts), the delivery log, redelivery, scopes — and delivery across a
``kill -9`` / restart of a server process with nothing lost."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _apiutil import Api
from _receiver import Receiver, free_port
from _scopes import check_scopes
from _wsutil import OpenClient

from bot.store import Database, NewEvent, repo
from bot.store.apikeys import create_api_key
from bot.store.migrate import upgrade_async
from bot.store.webhook_models import EVENT_TYPES
from bot.webhooks.signing import verify

BASE = "/api/v1/webhooks"
ALL = list(EVENT_TYPES)
FAST = {
    "webhook_poll_interval_s": 0.05,
    "webhook_backoff_base_s": 0.1,
    "webhook_backoff_max_s": 0.5,
    "webhook_timeout_s": 2.0,
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2).start()
    yield r
    r.stop()


@pytest.fixture
async def hooks(request: pytest.FixtureRequest, start_server: Any) -> AsyncIterator[Api]:
    """Like ``api`` (both databases) but with fast retry settings."""
    overrides: dict[str, Any] = dict(FAST)
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("api_pg").create_database()
    server = start_server(**overrides)
    db = Database(server.settings.effective_database_url)
    async with db.writing() as s:
        keys = {
            name: (await create_api_key(s, name=name, scopes=scopes)).plaintext
            for name, scopes in {"read": "read", "agent": "agent", "admin": "admin"}.items()
        }
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield Api(server, db, http, keys)
    await db.dispose()


def _expected_signature(secret: str, header: str, body: bytes) -> str:
    t = dict(p.split("=", 1) for p in header.split(","))["t"]
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


async def _deliveries(api: Api, sub_id: str, **params: Any) -> list[dict[str, Any]]:
    r = await api.call("GET", f"{BASE}/{sub_id}/deliveries", "admin", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _first_of(receiver: Receiver, event: str, timeout: float = 20) -> dict[str, Any]:
    """The body of the first accepted delivery of ``event``."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r.json for r in receiver.ok() if r.headers["klartext-event"] == event]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no {event} arrived"
        await asyncio.sleep(0.02)


async def _settled(api: Api, sub_id: str, n: int, timeout: float = 20) -> list[dict[str, Any]]:
    """The delivery log once ``n`` deliveries exist and none is pending."""
    deadline = time.monotonic() + timeout
    while True:
        items = await _deliveries(api, sub_id, limit=200)
        if len(items) >= n and all(i["status"] != "pending" for i in items):
            return items
        assert time.monotonic() < deadline, f"not settled: {[i['status'] for i in items]}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("hooks", ["sqlite", "postgresql"], indirect=True)
async def test_conversation_events_arrive_signed_after_retries(
    hooks: Api, receiver: Receiver, open_client: OpenClient
) -> None:
    api = hooks
    created = await api.call(
        "POST", BASE, "admin", json={"url": receiver.url, "event_types": ALL, "description": "crm"}
    )
    assert created.status_code == 201, created.text
    sub = created.json()
    secret = sub["secret"]
    assert secret.startswith("whsec_") and sub["event_types"] == sorted(ALL)

    c = await open_client(api.server.ws_url)
    cid = (await c.hello(lang="en"))["conversation_id"]
    await c.send({"type": "message", "message_id": "m1", "text": "Where is my order?"})
    done = (await c.until("done"))[-1]
    await c.send({"type": "feedback", "turn_id": done["turn_id"], "rating": "up"})
    # the visitor asks for a human: the CRM hears of it through the webhook, then answers
    await c.send({"type": "request_human", "message_id": "h1"})
    await c.until("done")
    requested = await _first_of(receiver, "handoff.requested")
    assert requested["data"]["reason"] == "user_request"
    assert requested["data"]["state"] == "pending_human"
    conv = f"/api/v1/conversations/{cid}"
    posted = await api.call(
        "POST", f"{conv}/messages", "agent", json={"text": "Hi, Ana here", "agent_name": "Ana"}
    )
    assert posted.status_code == 201
    assert (await c.until("agent_message"))[-1]["text"] == "Hi, Ana here"
    assert (await api.call("POST", f"{conv}/release", "agent")).status_code == 200
    assert (await api.call("POST", f"{conv}/close", "agent")).status_code == 200

    expected = [
        "conversation.created",
        "message.created",  # user
        "message.created",  # bot
        "feedback.created",
        "handoff.requested",
        "message.created",  # agent
        "handoff.released",
        "conversation.closed",
    ]
    got = await receiver.wait_for(len(expected))
    by_key = {r.key: r for r in got}
    assert len(by_key) == len(expected) == len(got)  # each accepted exactly once
    events = sorted(by_key.values(), key=lambda r: r.json["created_at"])
    assert sorted(r.headers["klartext-event"] for r in events) == sorted(expected)
    for r in events:
        header = r.headers["klartext-signature"]
        assert verify(secret, header, r.body)
        assert header.split("v1=")[1] == _expected_signature(secret, header, r.body)
        assert not verify("whsec_wrong", header, r.body)
        assert r.json["type"] == r.headers["klartext-event"]
        assert r.json["conversation_id"] == cid
        assert r.headers["content-type"] == "application/json"
    messages = [r.json["data"] for r in events if r.json["type"] == "message.created"]
    by_role = {m["role"]: m for m in messages}
    assert by_role["user"]["text"] == "Where is my order?"
    assert by_role["bot"]["text"].startswith("Standard delivery") and by_role["bot"]["answered"]
    assert (by_role["agent"]["text"], by_role["agent"]["agent_name"]) == ("Hi, Ana here", "Ana")
    assert all(receiver.seen[k] == 3 for k in by_key)  # two 500s, then accepted

    log = await _settled(api, sub["id"], len(expected))
    assert {i["status"] for i in log} == {"delivered"}
    assert all(i["attempts"] == 3 and i["response_code"] == 200 for i in log)
    assert all(i["last_error"].startswith("HTTP 500") for i in log)
    assert {i["idempotency_key"] for i in log} == set(by_key)
    one = await api.call("GET", f"{BASE}/{sub['id']}/deliveries/{log[0]['id']}", "admin")
    assert one.json()["payload"] == by_key[log[0]["idempotency_key"]].json
    listed = (await api.call("GET", BASE, "admin")).json()["items"]
    assert listed[0]["deliveries"] == {"pending": 0, "delivered": len(expected), "failed": 0}
    assert listed[0]["secret"] is None


@pytest.mark.parametrize("hooks", ["sqlite"], indirect=True)
async def test_failed_delivery_is_logged_and_can_be_redelivered(
    hooks: Api, receiver: Receiver
) -> None:
    api = hooks
    receiver.failing = True
    sub = (
        await api.call(
            "POST", BASE, "admin", json={"url": receiver.url, "event_types": ["contact.created"]}
        )
    ).json()
    from bot.store.outbox import enqueue_webhook

    await api.db.write(lambda s: enqueue_webhook(s, "contact.created", {"contact_id": "c1"}))
    (failed,) = await _settled(api, sub["id"], 1)
    assert failed["status"] == "failed" and failed["attempts"] == 10  # webhook_max_attempts
    assert failed["last_error"] == "HTTP 500: receiver says no"
    assert failed["response_code"] == 500 and failed["next_attempt_at"] is None
    assert (await _deliveries(api, sub["id"], status="delivered")) == []

    receiver.failing = False
    again = await api.call(
        "POST", f"{BASE}/{sub['id']}/deliveries/{failed['id']}/redeliver", "admin"
    )
    assert again.status_code == 202 and again.json()["status"] == "pending"
    (ok,) = await _settled(api, sub["id"], 1)
    assert (ok["status"], ok["attempts"]) == ("delivered", 11)
    assert receiver.accepted == {failed["idempotency_key"]: 1}
    missing = await api.call("POST", f"{BASE}/{sub['id']}/deliveries/999999/redeliver", "admin")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


async def test_subscription_crud_and_validation(api_sqlite: Api) -> None:
    api = api_sqlite
    bad = await api.call("POST", BASE, "admin", json={"url": "ftp://x", "event_types": ALL})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_request")
    bad = await api.call(
        "POST", BASE, "admin", json={"url": "http://a.example", "event_types": ["nope"]}
    )
    assert bad.status_code == 422
    bad = await api.call("POST", BASE, "admin", json={"url": "http://a.example", "event_types": []})
    assert bad.status_code == 422

    created = await api.call(
        "POST",
        BASE,
        "admin",
        json={"url": "http://a.example/h", "event_types": ["message.created"]},
    )
    sub = created.json()
    got = (await api.call("GET", f"{BASE}/{sub['id']}", "admin")).json()
    assert got["secret"] is None and got["url"] == "http://a.example/h"
    assert got["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0}

    patched = await api.call(
        "PATCH",
        f"{BASE}/{sub['id']}",
        "admin",
        json={"active": False, "event_types": ["handoff.requested", "handoff.released"]},
    )
    assert patched.status_code == 200
    body = patched.json()
    assert body["active"] is False and body["secret"] is None and body["description"] is None
    assert body["event_types"] == ["handoff.released", "handoff.requested"]
    rotated = (
        await api.call("PATCH", f"{BASE}/{sub['id']}", "admin", json={"rotate_secret": True})
    ).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != sub["secret"]

    bad_cursor = await api.call(
        "GET", f"{BASE}/{sub['id']}/deliveries", "admin", params={"cursor": "x"}
    )
    assert (bad_cursor.status_code, bad_cursor.json()["error"]["code"]) == (400, "invalid_cursor")
    assert (await api.call("DELETE", f"{BASE}/{sub['id']}", "admin")).status_code == 204
    for method in ("GET", "DELETE"):
        gone = await api.call(method, f"{BASE}/{sub['id']}", "admin")
        assert (gone.status_code, gone.json()["error"]["code"]) == (404, "not_found")
    gone = await api.call("PATCH", f"{BASE}/{sub['id']}", "admin", json={"active": True})
    assert gone.status_code == 404
    assert (await api.call("GET", f"{BASE}/{sub['id']}/deliveries", "admin")).status_code == 404


async def test_every_webhook_route_needs_an_admin_key(api: Api) -> None:
    """401 without / with an unknown or revoked key, 403 for read and agent keys, on both
    databases; then the route works with the admin key."""
    from bot.store.outbox import enqueue_webhook

    hook = {"url": "http://127.0.0.1:9/hook", "event_types": ALL}
    sub = (await check_scopes(api, "POST", BASE, "admin", 201, hook)).json()
    await api.db.write(lambda s: enqueue_webhook(s, "contact.created", {"contact": {"id": "c"}}))
    page = await check_scopes(api, "GET", f"{BASE}/{sub['id']}/deliveries", "admin", 200)
    (delivery,) = page.json()["items"]
    one = f"{BASE}/{sub['id']}/deliveries/{delivery['id']}"
    await check_scopes(api, "GET", BASE, "admin", 200)
    await check_scopes(api, "GET", f"{BASE}/{sub['id']}", "admin", 200)
    await check_scopes(api, "PATCH", f"{BASE}/{sub['id']}", "admin", 200, {"active": False})
    await check_scopes(api, "GET", one, "admin", 200)
    await check_scopes(api, "POST", f"{one}/redeliver", "admin", 202)
    # inputs the database cannot hold are refused before they reach it (PostgreSQL: BIGINT)
    huge = f"{BASE}/{sub['id']}/deliveries/{2**64}"
    assert (await api.call("GET", huge, "admin")).status_code == 422
    assert (await api.call("POST", f"{huge}/redeliver", "admin")).status_code == 422
    deep = await api.call(
        "GET", f"{BASE}/{sub['id']}/deliveries", "admin", params={"cursor": str(2**64)}
    )
    assert deep.status_code == 400
    long_url = {"url": "http://a.example/" + "x" * 2100, "event_types": ALL}
    assert (await api.call("POST", BASE, "admin", json=long_url)).status_code == 422
    await check_scopes(api, "DELETE", f"{BASE}/{sub['id']}", "admin", 204)


# --- across a server restart (real server processes) ------------------------------------------


class ServerProcess:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        app_dir = str(Path(__file__).resolve().parent)
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--factory", "--app-dir", app_dir),
                *("_webhook_server:app", "--port", str(port), "--log-level", "warning"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while True:
                assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
                try:
                    if (await http.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server did not come up"
                await asyncio.sleep(0.1)

    def stop(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_queued_events_survive_a_server_restart(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Events queued while the receiver is down; the server is killed (``kill -9`` on SQLite,
    SIGTERM on PostgreSQL, where a killed replica's claims wait for their lease); a new server
    process delivers every one, each accepted exactly once by the receiver."""
    url = (
        request.getfixturevalue("api_pg").create_database()
        if backend == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path / 'klartext.db'}"
    )
    await upgrade_async(url)
    env = {
        **os.environ,
        "KLARTEXT_DATA_DIR": str(tmp_path),
        "KLARTEXT_DATABASE_URL": url,
        "KLARTEXT_TOKEN_SECRET": "test-secret-0123456789abcdef",
        "KLARTEXT_LOG_LEVEL": "WARNING",
        "KLARTEXT_WEBHOOK_MAX_ATTEMPTS": "100",
        "HF_HUB_OFFLINE": "1",
        **{f"KLARTEXT_{k.upper()}": str(v) for k, v in FAST.items()},
    }
    db = Database(url)
    async with db.writing() as s:
        key = (await create_api_key(s, name="admin", scopes="admin")).plaintext
    receiver = Receiver(fail_first=1)  # not started yet: the receiver is down
    first = ServerProcess(env, free_port())
    try:
        await first.ready()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{first.port}",
            headers={"Authorization": f"Bearer {key}"},
        ) as http:
            sub = (await http.post(BASE, json={"url": receiver.url, "event_types": ALL})).json()
        n_conv = 15
        for i in range(n_conv):
            async with db.writing() as s:
                conv = await repo.create_conversation(s, lang="en")
                await repo.append_events(
                    s, conv.id, [NewEvent("user_message", {"text": f"q{i}"}, f"t{i}")]
                )
        total = 2 * n_conv  # conversation.created + message.created each
        await _wait_attempted(db, total)  # the first server is retrying against a dead port
        first.stop(signal.SIGKILL if backend == "sqlite" else signal.SIGTERM)

        receiver.start()
        second = ServerProcess(env, free_port())
        try:
            await second.ready()
            got = await receiver.wait_for(total, timeout=30)
        finally:
            second.stop(signal.SIGTERM)
        assert len(receiver.accepted) == total and set(receiver.accepted.values()) == {1}
        assert {r.json["type"] for r in got} == {"conversation.created", "message.created"}
        async with db.session() as s:
            from sqlalchemy import func, select

            from bot.store.webhook_models import WebhookDelivery as D

            rows = (await s.execute(select(D.status, func.count()).group_by(D.status))).all()
            keys = set(await s.scalars(select(D.idempotency_key)))
        assert dict(rows) == {"delivered": total}
        assert keys == set(receiver.accepted)
        assert sub["id"]
    finally:
        first.stop(signal.SIGKILL)
        receiver.stop()
        await db.dispose()


async def _wait_attempted(db: Database, n: int, timeout: float = 20) -> None:
    from sqlalchemy import func, select

    from bot.store.webhook_models import WebhookDelivery as D

    deadline = time.monotonic() + timeout
    while True:
        async with db.session() as s:
            tried = await s.scalar(select(func.count()).where(D.attempts > 0))
        if tried == n:
            return
        assert time.monotonic() < deadline, f"only {tried} of {n} attempted"
        await asyncio.sleep(0.1)
