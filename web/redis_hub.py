"""``RedisHub``: the :class:`web.hub.Hub` for several replicas, on Redis pub/sub.

One channel per conversation (``{prefix}conv:{id}``) plus a control channel (``{prefix}control``,
reindex notifications). A frame published here goes to this process's sockets at once (an
:class:`~web.hub.InProcessHub` inside) and, through a background publisher, to Redis for the
other replicas; a replica ignores its own messages (each carries the node id before a newline).

Each process holds one dedicated subscriber connection and subscribes to a conversation's
channel while at least one of its sockets follows that conversation; ``subscribe`` returns once
Redis has confirmed the subscription, so together with the history read that follows it no
event can fall between the two. Delivery through Redis is best effort — subscribers already
de-duplicate by ``seq`` and refill gaps from the database:

- Redis unreachable: local delivery goes on; the publisher keeps a bounded backlog and retries
  with backoff; the subscriber reconnects with backoff, re-subscribes every followed channel and
  then hands each local subscription a ``_gap`` marker so it refills from the database.
- A silent connection (no reply to the periodic ``PING``) is closed and handled as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from web.hub import Frame, InProcessHub, Subscription

log = logging.getLogger("klartext.redis")

SUBSCRIBE_WAIT_S = 2.0
PING_INTERVAL_S = 5.0
BACKLOG_MAX = 20_000
_BATCH = 500
_GAP: Frame = {"type": "_gap"}


class RedisHub:
    """Cross-replica fan-out. Call :meth:`start` inside the event loop, :meth:`aclose` at the
    end. ``connected`` is what ``/readyz`` reports."""

    def __init__(
        self, url: str, *, prefix: str = "klartext:", queue_size: int = 1000, node: str = ""
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.node = node or uuid.uuid4().hex[:12]
        self._tag = self.node.encode() + b"\n"
        self._local = InProcessHub(queue_size)
        self.client: Redis = Redis.from_url(
            url,
            protocol=2,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 2),
        )
        self._sub_pool: ConnectionPool = ConnectionPool.from_url(
            url, protocol=2, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )
        self._conn: AbstractConnection | None = None
        self._send_lock = asyncio.Lock()
        self._interest: dict[str, int] = {}  # channel → local subscriptions following it
        self._ready: dict[str, asyncio.Future[bool]] = {}  # channel → confirmed?
        # per channel, in SUBSCRIBE order: a future to resolve, or None = signal a gap
        self._confirm: dict[str, deque[asyncio.Future[bool] | None]] = {}
        self._backlog: deque[tuple[str, bytes]] = deque()
        self._backlog_ready = asyncio.Event()
        self._last_rx = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connected = False
        self.dropped = 0  # frames dropped from a full backlog (Redis down for long)
        self.reindex_requested = asyncio.Event()
        self.reindex_received = 0

    # --- Hub -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def subscribe(self, conversation_id: str) -> AsyncIterator[Subscription]:
        channel = self._channel(conversation_id)
        async with self._local.subscribe(conversation_id) as sub:
            self._interest[channel] = self._interest.get(channel, 0) + 1
            try:
                ready = self._ready.get(channel)
                if ready is None:
                    ready = await self._subscribe_channel(channel)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(ready), SUBSCRIBE_WAIT_S)
                yield sub
            finally:
                left = self._interest.get(channel, 1) - 1
                if left > 0:
                    self._interest[channel] = left
                else:
                    self._interest.pop(channel, None)
                    self._ready.pop(channel, None)
                    await self._send("UNSUBSCRIBE", channel)

    async def publish(self, conversation_id: str, frames: list[Frame]) -> None:
        await self._local.publish(conversation_id, frames)
        data = json.dumps(frames, ensure_ascii=False, separators=(",", ":")).encode()
        self._enqueue(self._channel(conversation_id), data)

    def subscribers(self, conversation_id: str) -> int:
        """Sockets following the conversation on this replica (others are not counted)."""
        return self._local.subscribers(conversation_id)

    # --- control ---------------------------------------------------------------------------
    def notify_reindex(self, build: str | None = None) -> None:
        """Tell the other replicas that the shared index changed (they reload at once). Safe
        to call from another thread (e.g. a reindex running in a worker thread)."""
        data = json.dumps({"type": "reindex", "build": build}).encode()
        loop = self._loop
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if loop is None or same_loop:
            self._enqueue(self._control, data)
        else:
            loop.call_soon_threadsafe(self._enqueue, self._control, data)

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen_forever(), name="redis-hub-listen"),
            loop.create_task(self._publish_forever(), name="redis-hub-publish"),
            loop.create_task(self._ping_forever(), name="redis-hub-ping"),
        ]

    async def aclose(self, flush_s: float = 2.0) -> None:
        deadline = time.monotonic() + flush_s
        while self._backlog and self.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._drop_connection()
        await self.client.aclose()
        await self._sub_pool.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.client.ping(), 2.0))
        except (RedisError, OSError, TimeoutError):
            return False

    # --- internals -------------------------------------------------------------------------
    @property
    def _control(self) -> str:
        return f"{self.prefix}control"

    def _channel(self, conversation_id: str) -> str:
        return f"{self.prefix}conv:{conversation_id}"

    def _enqueue(self, channel: str, data: bytes) -> None:
        self._backlog.append((channel, self._tag + data))
        if len(self._backlog) > BACKLOG_MAX:
            self._backlog.popleft()
            self.dropped += 1
        self._backlog_ready.set()

    async def _subscribe_channel(self, channel: str) -> asyncio.Future[bool]:
        ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._ready[channel] = ready
        async with self._send_lock:
            if self._conn is None:  # the reconnect re-subscribes and signals a gap
                ready.set_result(False)
                return ready
            self._confirm.setdefault(channel, deque()).append(ready)
            if not await self._send_locked("SUBSCRIBE", channel):
                ready.set_result(False)
        return ready

    async def _send(self, *args: str) -> bool:
        async with self._send_lock:
            return await self._send_locked(*args)

    async def _send_locked(self, *args: str) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            await conn.send_command(*args)
        except (RedisError, OSError) as exc:
            log.warning("redis subscriber send failed: %s", exc)
            return False
        return True

    async def _listen_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._listen_once()
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("redis subscriber connection lost: %s", exc)
            except Exception:
                log.exception("redis subscriber failed")
            await self._drop_connection()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen_once(self) -> None:
        conn = await self._sub_pool.get_connection()  # type: ignore[no-untyped-call]
        async with self._send_lock:
            self._conn = conn
            channels = list(self._interest)
            for ch in channels:  # after a reconnect: refill whatever passed meanwhile
                self._confirm.setdefault(ch, deque()).append(None)
            await conn.send_command("SUBSCRIBE", self._control, *channels)
        self._last_rx = time.monotonic()
        while True:
            reply = await conn.read_response(timeout=math.inf)
            self._last_rx = time.monotonic()
            if isinstance(reply, list) and reply:
                await self._dispatch(reply)

    async def _dispatch(self, reply: list[Any]) -> None:
        kind = reply[0]
        if kind == b"message" and len(reply) == 3:
            channel, data = reply[1].decode(), reply[2]
            if data.startswith(self._tag):
                return
            body = data.split(b"\n", 1)[-1]
            if channel == self._control:
                self._control_message(body)
            elif channel.startswith(self.prefix + "conv:"):
                try:
                    frames = json.loads(body)
                except ValueError:
                    log.warning("malformed frames on %s ignored", channel)
                    return
                if isinstance(frames, list):
                    await self._local.publish(channel[len(self.prefix) + 5 :], frames)
        elif kind == b"subscribe" and len(reply) == 3:
            channel = reply[1].decode()
            if channel == self._control:
                self.connected = True
                log.info("redis hub subscribed", extra={"node": self.node})
            waiting = self._confirm.get(channel)
            if not waiting:
                return
            ready = waiting.popleft()
            if not waiting:
                del self._confirm[channel]
            if ready is None:
                await self._local.publish(channel[len(self.prefix) + 5 :], [_GAP])
                ready = self._ready.get(channel)
            if ready is not None and not ready.done():
                ready.set_result(True)

    def _control_message(self, body: bytes) -> None:
        try:
            msg = json.loads(body)
        except ValueError:
            return
        if isinstance(msg, dict) and msg.get("type") == "reindex":
            self.reindex_received += 1
            self.reindex_requested.set()

    async def _drop_connection(self) -> None:
        async with self._send_lock:
            conn, self._conn = self._conn, None
            self.connected = False
            waiting, self._confirm = self._confirm, {}
        for futures in waiting.values():  # unblock subscribers; the reconnect signals the gap
            for fut in futures:
                if fut is not None and not fut.done():
                    fut.set_result(False)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect()
            with contextlib.suppress(Exception):
                await self._sub_pool.release(conn)  # reused (reconnected) next time

    async def _ping_forever(self) -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            conn = self._conn
            if conn is None:
                continue
            if time.monotonic() - self._last_rx > 3 * PING_INTERVAL_S:
                log.warning("redis subscriber silent; reconnecting")
                with contextlib.suppress(Exception):
                    await conn.disconnect()  # the listener's read fails and reconnects
                continue
            await self._send("PING")

    async def _publish_forever(self) -> None:
        while True:
            await self._backlog_ready.wait()
            self._backlog_ready.clear()
            delay = 0.05
            while self._backlog:
                batch = [self._backlog.popleft() for _ in range(min(_BATCH, len(self._backlog)))]
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for channel, data in batch:
                            pipe.publish(channel, data)
                        await pipe.execute()
                except (RedisError, OSError) as exc:
                    self._backlog.extendleft(reversed(batch))  # retried, in order
                    while len(self._backlog) > BACKLOG_MAX:
                        self._backlog.popleft()
                        self.dropped += 1
                    log.warning("redis publish failed (%d queued): %s", len(self._backlog), exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                delay = 0.05
