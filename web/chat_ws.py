"""``/ws/chat``: protocol v1 (``docs/protocol.md``). One ``_Connection`` per socket: hello →
welcome + history (events after ``last_seq``) → live events from the hub, de-duplicated and
gap-filled by ``seq``, while client frames are handled. Turns run in ``web.turns``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from bot.errors import StoreError
from bot.store import repo, writes
from web.clientip import connection_ip
from web.deps import Services
from web.hub import Frame, Subscription
from web.limits import SlidingWindow
from web.logging import conversation_id_var, redact
from web.protocol import (
    PROTOCOL_VERSION,
    SERVER_VERSION,
    FeedbackFrame,
    FrameError,
    Hello,
    Message,
    Ping,
    RequestHuman,
    Typing,
    clean_text,
    error_frame,
    parse_frame,
)
from web.tokens import BadTokenError

router = APIRouter()
log = logging.getLogger("klartext.ws")

CLOSE_IDLE = 4000
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013  # per-IP connection rate exceeded: reconnect after `retry_after`


class _ClosedError(Exception):
    pass


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Browsers always send ``Origin``; non-browser clients (no header) are not restricted."""
    if origin is None or "*" in allowed:
        return True
    return origin.rstrip("/") in {a.rstrip("/") for a in allowed}


class _Connection:
    def __init__(self, ws: WebSocket, services: Services) -> None:
        self.ws = ws
        self.s = services
        self.limits = services.limits
        self.cid = ""
        self.lang = services.settings.default_language
        self.sent_seq = 0
        self._send_lock = asyncio.Lock()
        self._errors = SlidingWindow(self.limits.max_errors_per_minute)
        self.ip = connection_ip(ws.client, ws.headers, services.proxies)

    # --- sending -----------------------------------------------------------------------
    async def send(self, frame: Frame) -> None:
        data = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
        async with self._send_lock:
            await self.ws.send_text(data)

    async def send_error(self, exc: FrameError, **extra: Any) -> None:
        frame = error_frame(exc.code, exc.message, retry_after=exc.retry_after, **extra)
        if self.s.metrics is not None:
            self.s.metrics.ws_errors.labels(exc.code).inc()
        await self.send(frame)
        if self._errors.hit() is not None:
            await self.close(CLOSE_POLICY, "too many protocol errors")

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)
        raise _ClosedError

    # --- receiving ---------------------------------------------------------------------
    async def receive(self) -> str | None:
        """The next text frame (``None`` after a refused binary frame); raises ``_ClosedError``."""
        try:
            msg = await asyncio.wait_for(self.ws.receive(), self.limits.idle_timeout_s)
        except TimeoutError:
            await self.close(CLOSE_IDLE, "idle_timeout")
            raise  # unreachable: close raises
        if msg["type"] == "websocket.disconnect":
            raise _ClosedError
        text = msg.get("text")
        if text is None:
            await self.send_error(FrameError("binary_frame", "binary frames are not accepted"))
            return None
        return str(text)

    async def next_frame(self) -> Any:
        while True:
            raw = await self.receive()
            if raw is None:
                continue
            try:
                return parse_frame(raw, max_bytes=self.limits.max_frame_bytes)
            except FrameError as exc:
                await self.send_error(exc)

    # --- lifecycle ---------------------------------------------------------------------
    async def run(self) -> None:
        origin = self.ws.headers.get("origin")
        await self.ws.accept()
        try:
            if not origin_allowed(origin, self.s.settings.allowed_origins):
                await self.send(error_frame("origin_not_allowed", "origin not allowed"))
                await self.close(CLOSE_POLICY, "origin not allowed")
            await self._check_connect_rate()
            hello = await self._await_hello()
            resumed, last_seq, handoff = await self._open(hello)
            conversation_id_var.set(self.cid)
            log.info("ws open", extra={"resumed": resumed, "last_seq": last_seq})
            async with self.s.hub.subscribe(self.cid) as sub:
                await self.send(self._welcome(resumed, handoff))
                await self._send_history(last_seq if resumed else None)
                forward = asyncio.create_task(self._forward(sub))
                try:
                    await self._serve()
                finally:
                    forward.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await forward
        except (_ClosedError, WebSocketDisconnect):
            if self.cid:
                log.info("ws closed", extra={"sent_seq": self.sent_seq})
        except (SQLAlchemyError, StoreError):
            log.exception("store failure on websocket")
            await self._fail("KT800", "The conversation store is unavailable.")
        except OSError:  # the peer went away while we were sending (ClientDisconnected)
            log.info("ws closed", extra={"sent_seq": self.sent_seq})
        except Exception:
            log.exception("websocket handler failed")
            await self._fail("internal", "Internal error; reconnect to continue.")

    async def _check_connect_rate(self) -> None:
        guards = self.s.guards
        wait = guards.ws_connect_ip.hit(self.ip) if guards is not None else None
        if wait is not None:
            self._count_limited("ws_ip_connect")
            frame = error_frame(
                "rate_limited", "too many connections from this address", retry_after=wait
            )
            await self.send(frame)
            await self.close(CLOSE_TRY_AGAIN, "rate_limited")

    def _count_limited(self, scope: str) -> None:
        if self.s.metrics is not None:
            self.s.metrics.rate_limited.labels(scope).inc()

    async def _fail(self, code: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.send(error_frame(code, message))
            await self.ws.close(1011, message[:100])

    async def _await_hello(self) -> Hello:
        while True:
            frame = await self.next_frame()
            if isinstance(frame, Hello):
                if frame.v != PROTOCOL_VERSION:
                    await self.send_error(
                        FrameError("invalid_frame", f"unsupported protocol version {frame.v}")
                    )
                    continue
                return frame
            await self.send_error(FrameError("hello_required", "the first frame must be hello"))

    async def _open(self, hello: Hello) -> tuple[bool, int, str]:
        langs = self.s.settings.languages
        lang = hello.lang if hello.lang in langs else None
        if hello.token or hello.conversation_id:
            try:
                if not hello.token:
                    raise BadTokenError("conversation_id without token")
                cid = self.s.signer.verify(hello.token)
                if hello.conversation_id and hello.conversation_id != cid:
                    raise BadTokenError("token belongs to another conversation")
                async with self.s.db.session() as session:
                    conv = await repo.get_conversation(session, cid)
                if conv is None:
                    raise BadTokenError("unknown conversation")
            except BadTokenError as exc:
                await self.send(error_frame("bad_token", f"{exc}; starting a new conversation"))
            else:
                self.cid = cid
                self.lang = conv.lang or lang or self.lang
                if self.s.single_process or self.s.turns.leases is not None:
                    await self.s.turns.finish_interrupted(cid, self.lang)
                return True, min(hello.last_seq, conv.last_seq), conv.handoff_state
        created = await self.s.db.write(lambda s: writes.create_conversation(s, lang=lang))
        self.cid = created.id
        self.s.turns.conversation_created(created.id, lang)
        self.lang = lang or self.lang
        return False, 0, created.handoff_state

    def _welcome(self, resumed: bool, handoff: str) -> Frame:
        return {
            "type": "welcome",
            "conversation_id": self.cid,
            "token": self.s.signer.issue(self.cid),
            "resumed": resumed,
            "bot_name": self.s.settings.bot_name,
            "lang": self.lang,
            "handoff_state": handoff,
            "server_version": SERVER_VERSION,
            "limits": self.limits.public(),
        }

    async def _events_after(self, seq: int) -> list[Frame]:
        async with self.s.db.session() as session:
            return [e.frame() for e in await repo.events_after(session, self.cid, seq)]

    async def _send_history(self, last_seq: int | None) -> None:
        """Events after ``last_seq``; ``None`` = a conversation created just now, whose id
        nobody else knows yet, so it has none (no read)."""
        self.sent_seq = last_seq or 0
        events = [] if last_seq is None else await self._events_after(last_seq)
        await self.send({"type": "history", "events": events})
        if events:
            self.sent_seq = int(events[-1]["seq"])

    async def _forward(self, sub: Subscription) -> None:
        """Hub frames → socket, exactly once each and in ``seq`` order. If this fails (database
        gone during a gap refill), the socket is closed so the client reconnects and resumes."""
        try:
            await self._forward_loop(sub)
        except (_ClosedError, WebSocketDisconnect, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("forwarding failed")
            with contextlib.suppress(_ClosedError):
                await self.close(1011, "internal error; reconnect")

    async def _forward_loop(self, sub: Subscription) -> None:
        while True:
            batch = [await sub.get()]
            while (more := sub.get_nowait()) is not None:
                batch.append(more)
            for frame in batch:
                seq = frame.get("seq")
                if frame.get("type") == "_gap" or (
                    isinstance(seq, int) and seq > self.sent_seq + 1
                ):
                    for missed in await self._events_after(self.sent_seq):
                        await self.send(missed)
                        self.sent_seq = int(missed["seq"])
                    continue
                if isinstance(seq, int) and seq <= self.sent_seq:
                    continue
                await self.send(frame)
                if isinstance(seq, int):
                    self.sent_seq = seq

    async def _serve(self) -> None:
        while True:
            frame = await self.next_frame()
            try:
                await self._handle(frame)
            except FrameError as exc:
                mid = getattr(frame, "message_id", None)
                await self.send_error(exc, message_id=mid)

    async def _handle(self, frame: Any) -> None:
        if isinstance(frame, Message):
            await self._message(frame)
        elif isinstance(frame, RequestHuman):
            self._rate(frame.message_id)
            await self.s.turns.request_human(self.cid, frame.message_id, self.lang)
        elif isinstance(frame, FeedbackFrame):
            ok = await self.s.turns.feedback(self.cid, frame.turn_id, frame.rating, frame.comment)
            if not ok:
                raise FrameError("invalid_frame", "unknown turn_id in this conversation")
        elif isinstance(frame, Ping):
            pong: Frame = {"type": "pong"}
            if frame.nonce is not None:
                pong["nonce"] = frame.nonce
            await self.send(pong)
        elif isinstance(frame, Typing):
            return
        elif isinstance(frame, Hello):
            raise FrameError("invalid_frame", "hello was already received on this connection")

    def _rate(self, message_id: str) -> None:
        wait = self.s.rate.hit(self.cid)
        if wait is not None:
            self._count_limited("ws_conversation")
            raise FrameError("rate_limited", "too many messages; slow down", retry_after=wait)
        guards = self.s.guards
        wait = guards.ws_message_ip.hit(self.ip) if guards is not None else None
        if wait is not None:
            self._count_limited("ws_ip_message")
            raise FrameError(
                "rate_limited", "too many messages from this address; slow down", retry_after=wait
            )

    async def _message(self, frame: Message) -> None:
        text = clean_text(frame.text)
        if not text:
            raise FrameError("empty_message", "the message is empty")
        if len(text) > self.limits.max_message_chars:
            raise FrameError(
                "message_too_long", f"messages are limited to {self.limits.max_message_chars} chars"
            )
        if self.s.runtime is None:
            raise FrameError("not_ready", "the assistant is not ready yet; try again shortly")
        self._rate(frame.message_id)
        result = await self.s.turns.submit(self.cid, frame.message_id, text)
        log.info(
            "message",
            extra={
                "turn_id": result.turn_id,
                "new": result.new,
                "text": redact(text, log_pii=self.s.settings.log_pii),
            },
        )


@router.websocket("/ws/chat")
async def chat_ws(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    conn = _Connection(websocket, services)
    try:
        await conn.run()
    finally:
        if websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()
