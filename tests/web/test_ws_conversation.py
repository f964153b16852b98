"""Tokens, feedback, the human button."""

from __future__ import annotations

import time

from _wsutil import OpenClient, ServerThread
from sqlalchemy import select

from bot.store import Database
from bot.store.models import Feedback
from web.tokens import TokenSigner


async def test_tampered_token_starts_a_new_conversation(
    server: ServerThread, open_client: OpenClient
) -> None:
    c = await open_client(server.ws_url)
    w = await c.hello()
    cid, exp, sig = w["token"].split(".")
    tampered = f"{cid}.{int(exp) + 1000}.{sig}"
    c2 = await open_client(server.ws_url)
    w2 = await c2.hello(conversation_id=cid, token=tampered, last_seq=0)
    assert [e["code"] for e in c2.errors_before_welcome] == ["bad_token"]
    assert w2["resumed"] is False and w2["conversation_id"] != cid


async def test_expired_token_is_refused(server: ServerThread, open_client: OpenClient) -> None:
    c = await open_client(server.ws_url)
    w = await c.hello()
    secret = server.settings.token_secret
    assert secret is not None
    signer = TokenSigner(secret.get_secret_value().encode(), ttl_s=60)
    expired = signer.issue(w["conversation_id"], now=time.time() - 3600)
    c2 = await open_client(server.ws_url)
    w2 = await c2.hello(conversation_id=w["conversation_id"], token=expired)
    assert [e["code"] for e in c2.errors_before_welcome] == ["bad_token"]
    assert w2["resumed"] is False and w2["conversation_id"] != w["conversation_id"]


async def test_my_token_cannot_open_another_conversation(
    server: ServerThread, open_client: OpenClient
) -> None:
    victim = await open_client(server.ws_url)
    vw = await victim.hello()
    await victim.send({"type": "message", "message_id": "secret", "text": "my address is …"})
    await victim.until("done")
    attacker = await open_client(server.ws_url)
    aw = await attacker.hello()
    spy = await open_client(server.ws_url)
    sw = await spy.hello(conversation_id=vw["conversation_id"], token=aw["token"], last_seq=0)
    assert [e["code"] for e in spy.errors_before_welcome] == ["bad_token"]
    assert sw["conversation_id"] not in (vw["conversation_id"], aw["conversation_id"])
    assert spy.history == []
    guess = await open_client(server.ws_url)
    gw = await guess.hello(conversation_id=vw["conversation_id"], last_seq=0)  # no token
    assert [e["code"] for e in guess.errors_before_welcome] == ["bad_token"]
    assert gw["conversation_id"] != vw["conversation_id"] and guess.history == []


async def test_feedback_is_stored_per_turn(server: ServerThread, open_client: OpenClient) -> None:
    c = await open_client(server.ws_url)
    w = await c.hello()
    await c.send({"type": "message", "message_id": "q", "text": "shipping?"})
    turn_id = (await c.until("done"))[-1]["turn_id"]
    await c.send({"type": "feedback", "turn_id": turn_id, "rating": "down", "comment": "vague"})
    assert await c.roundtrip_ping() == []
    await c.send({"type": "feedback", "turn_id": "not-a-turn", "rating": "up"})
    err = await c.recv()
    assert (err["type"], err["code"]) == ("error", "invalid_frame")
    db = Database(server.settings.effective_database_url)
    try:
        async with db.session() as s:
            rows = list(await s.scalars(select(Feedback)))
    finally:
        await db.dispose()
    assert [(r.conversation_id, r.turn_id, r.rating, r.comment) for r in rows] == [
        (w["conversation_id"], turn_id, "down", "vague")
    ]


async def test_request_human_sets_handoff_state(
    server: ServerThread, open_client: OpenClient
) -> None:
    c = await open_client(server.ws_url)
    w = await c.hello()
    await c.send({"type": "request_human", "message_id": "h1"})
    frames = await c.until("done")
    assert [f["type"] for f in frames] == ["handoff", "done"]
    assert frames[0]["state"] == "pending_human" and frames[0]["reason"] == "user_request"
    await c.send({"type": "request_human", "message_id": "h1"})  # idempotent
    assert await c.roundtrip_ping() == []
    c2 = await open_client(server.ws_url)
    w2 = await c2.hello(conversation_id=w["conversation_id"], token=w["token"], last_seq=0)
    assert w2["handoff_state"] == "pending_human"
    assert [e["type"] for e in c2.history] == ["handoff", "done"]


async def test_engine_handoff_event_carries_state(
    server: ServerThread, open_client: OpenClient
) -> None:
    c = await open_client(server.ws_url)
    await c.hello()
    await c.send({"type": "message", "message_id": "x", "text": "I want a human"})
    frames = await c.until("done")
    handoff = next(f for f in frames if f["type"] == "handoff")
    assert handoff["state"] == "pending_human" and handoff["reason"] == "user_request"
