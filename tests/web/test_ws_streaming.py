"""Streaming order, resume after a dropped connection, restart, idempotent resend."""

from __future__ import annotations

import asyncio
from typing import Any

from _wsfakes import ANSWER, FakeRuntime, answer_tokens
from _wsutil import OpenClient, ServerThread, StartServer

from bot.store import Database, NewEvent, writes
from web.tokens import TokenSigner


def _text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "token")


def _assert_contiguous(frames: list[dict[str, Any]], start: int = 1) -> None:
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(start, start + len(frames))), seqs


async def test_turn_streams_in_order(server: ServerThread, open_client: OpenClient) -> None:
    c = await open_client(server.ws_url)
    welcome = await c.hello(lang="en")
    assert welcome["resumed"] is False and c.history == []
    assert welcome["limits"] == {"max_message_chars": 500, "messages_per_minute": 100}
    assert welcome["token"].startswith(welcome["conversation_id"] + ".")
    await c.send({"type": "message", "message_id": "m-1", "text": "How long is shipping?"})
    frames = await c.until("done")
    kinds = [f["type"] for f in frames]
    n_tokens = kinds.count("token")
    assert 1 <= n_tokens <= len(answer_tokens())  # adjacent tokens may be coalesced under load
    assert kinds == ["user_message"] + ["token"] * n_tokens + ["sources", "done"]
    _assert_contiguous(frames)
    assert frames[0]["message_id"] == "m-1" and frames[0]["text"] == "How long is shipping?"
    turn_ids = {f["turn_id"] for f in frames}
    assert len(turn_ids) == 1
    assert _text(frames) == ANSWER
    assert frames[-1]["mode"] == "extractive" and frames[-1]["answered"] is True


async def test_second_turn_sees_history_and_continues_seq(
    start_server: StartServer, open_client: OpenClient
) -> None:
    runtime = FakeRuntime()
    server = start_server(runtime=runtime)
    c = await open_client(server.ws_url)
    await c.hello()
    await c.send({"type": "message", "message_id": "a", "text": "first"})
    first = await c.until("done")
    await c.send({"type": "message", "message_id": "b", "text": "second"})
    second = await c.until("done")
    _assert_contiguous(first + second)
    ctx = runtime.engine.contexts[-1]
    assert [(t.role, t.text) for t in ctx.history] == [("user", "first"), ("bot", ANSWER)]


async def test_resume_after_drop_mid_answer(server: ServerThread, open_client: OpenClient) -> None:
    c = await open_client(server.ws_url)
    welcome = await c.hello()
    await c.send({"type": "message", "message_id": "m-slow", "text": "slow please"})
    seen = [await c.recv(), await c.recv(), await c.recv()]  # user_message + 2 tokens
    assert [f["type"] for f in seen] == ["user_message", "token", "token"]
    await c.ws.close()  # drop mid-answer
    await asyncio.sleep(0.3)  # the turn keeps going without a socket

    c2 = await open_client(server.ws_url)
    again = await c2.hello(
        conversation_id=welcome["conversation_id"],
        token=welcome["token"],
        last_seq=seen[-1]["seq"],
    )
    assert again["resumed"] is True and again["conversation_id"] == welcome["conversation_id"]
    assert c2.history, "tokens produced while disconnected are replayed"
    rest = list(c2.history)
    if rest[-1]["type"] != "done":
        rest += await c2.until("done")
    everything = seen + rest
    _assert_contiguous(everything)
    assert _text(everything) == ANSWER
    assert [f["type"] for f in everything][-2:] == ["sources", "done"]
    assert await c2.roundtrip_ping() == []  # nothing more arrives: no duplicates


async def test_two_tabs_receive_the_same_stream(
    server: ServerThread, open_client: OpenClient
) -> None:
    a = await open_client(server.ws_url)
    welcome = await a.hello()
    b = await open_client(server.ws_url)
    await b.hello(conversation_id=welcome["conversation_id"], token=welcome["token"])
    await a.send({"type": "message", "message_id": "x", "text": "hello"})
    fa, fb = await asyncio.gather(a.until("done"), b.until("done"))
    assert fa == fb
    _assert_contiguous(fa)


async def test_restart_mid_answer_keeps_every_event(
    start_server: StartServer, open_client: OpenClient, tmp_path: Any
) -> None:
    first = start_server(data_dir=tmp_path)
    c = await open_client(first.ws_url)
    welcome = await c.hello()
    await c.send({"type": "message", "message_id": "r-1", "text": "slow answer"})
    seen = [await c.recv(), await c.recv()]
    await asyncio.to_thread(first.stop)  # graceful: in-flight turn finishes and is persisted

    second = start_server(data_dir=tmp_path)
    c2 = await open_client(second.ws_url)
    again = await c2.hello(
        conversation_id=welcome["conversation_id"], token=welcome["token"], last_seq=0
    )
    assert again["resumed"] is True
    assert c2.history[: len(seen)] == seen
    _assert_contiguous(c2.history)
    assert _text(c2.history) == ANSWER and c2.history[-1]["type"] == "done"
    await c2.send({"type": "message", "message_id": "r-2", "text": "after restart"})
    more = await c2.until("done")
    _assert_contiguous(more, start=len(c2.history) + 1)


async def test_resent_message_id_is_never_answered_twice(
    start_server: StartServer, open_client: OpenClient
) -> None:
    runtime = FakeRuntime()
    server = start_server(runtime=runtime)
    c = await open_client(server.ws_url)
    await c.hello()
    await c.send({"type": "message", "message_id": "dup", "text": "hello"})
    await c.send({"type": "message", "message_id": "dup", "text": "hello"})  # while streaming
    frames = await c.until("done")
    await c.send({"type": "message", "message_id": "dup", "text": "hello"})  # after done
    assert await c.roundtrip_ping() == []
    assert [f["type"] for f in frames].count("user_message") == 1
    assert runtime.engine.calls == 1


async def test_turn_interrupted_by_a_crash_is_finished_as_partial_on_resume(
    server: ServerThread, open_client: OpenClient
) -> None:
    # what a kill -9 mid-answer leaves behind: the user message and some tokens, no `done`
    db = Database(server.settings.effective_database_url)
    try:
        conv = await db.write(lambda s: writes.create_conversation(s, lang="en"))
        await db.write(
            lambda s: writes.append_events(
                s,
                conv.id,
                [
                    NewEvent("user_message", {"message_id": "k", "text": "hi"}, "t-dead"),
                    NewEvent("token", {"text": "Half an ans"}, "t-dead"),
                ],
            )
        )
    finally:
        await db.dispose()
    secret = server.settings.token_secret
    assert secret is not None
    token = TokenSigner(secret.get_secret_value().encode(), 60).issue(conv.id)
    c = await open_client(server.ws_url)
    await c.hello(conversation_id=conv.id, token=token, last_seq=0)
    assert [e["type"] for e in c.history] == ["user_message", "token", "done"]
    done = c.history[-1]
    assert done["turn_id"] == "t-dead" and done["partial"] is True and done["answered"] is False
    c2 = await open_client(server.ws_url)  # repaired once, not again
    await c2.hello(conversation_id=conv.id, token=token, last_seq=0)
    assert [e["seq"] for e in c2.history] == [1, 2, 3]
    await c2.send({"type": "message", "message_id": "k2", "text": "again"})
    assert (await c2.until("done"))[0]["seq"] == 4
