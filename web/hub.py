"""Per-conversation fan-out of persisted event frames to connected sockets.

``Hub`` is the seam: :class:`InProcessHub` serves one process; a Redis pub/sub implementation
can replace it for several replicas (subscribers already tolerate gaps and duplicates — they
de-duplicate by ``seq`` and refill gaps from the database).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

Frame = dict[str, Any]


class Subscription(Protocol):
    async def get(self) -> Frame: ...

    def get_nowait(self) -> Frame | None: ...


class Hub(Protocol):
    def subscribe(
        self, conversation_id: str
    ) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def publish(self, conversation_id: str, frames: list[Frame]) -> None: ...

    def subscribers(self, conversation_id: str) -> int: ...


class TurnLeases(Protocol):
    """Which conversations have a turn running on any replica (``web.turn_leases``): taken
    before the user's message is committed, released after the turn's last event."""

    async def acquire(self, conversation_id: str) -> None: ...

    async def release(self, conversation_id: str) -> None: ...

    async def held(self, conversation_id: str) -> bool: ...


class _QueueSubscription:
    """A bounded queue. On overflow the oldest frames are dropped and a ``{"type": "_gap"}``
    marker tells the socket to refill from the database."""

    def __init__(self, maxsize: int) -> None:
        self._q: asyncio.Queue[Frame] = asyncio.Queue(maxsize)

    def put(self, frame: Frame) -> None:
        try:
            self._q.put_nowait(frame)
        except asyncio.QueueFull:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._q.get_nowait()
            with contextlib.suppress(asyncio.QueueFull):
                self._q.put_nowait({"type": "_gap"})

    async def get(self) -> Frame:
        return await self._q.get()

    def get_nowait(self) -> Frame | None:
        try:
            return self._q.get_nowait()
        except asyncio.QueueEmpty:
            return None


class InProcessHub:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subs: dict[str, set[_QueueSubscription]] = defaultdict(set)
        self._queue_size = queue_size

    @contextlib.asynccontextmanager
    async def subscribe(self, conversation_id: str) -> AsyncIterator[Subscription]:
        sub = _QueueSubscription(self._queue_size)
        self._subs[conversation_id].add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(conversation_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[conversation_id]

    async def publish(self, conversation_id: str, frames: list[Frame]) -> None:
        for sub in list(self._subs.get(conversation_id, ())):
            for frame in frames:
                sub.put(frame)

    def subscribers(self, conversation_id: str) -> int:
        return len(self._subs.get(conversation_id, ()))
