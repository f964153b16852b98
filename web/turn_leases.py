"""Which conversations have a turn running somewhere, across replicas (Redis).

A replica holds a lease on a conversation from just before it commits the user's message until
the turn's last event is written: a member ``node`` in the sorted set ``{prefix}turn:{id}``
scored with an expiry time, refreshed while the turn runs. A replica whose process died stops
refreshing, so its leases lapse after ``ttl_s``. When a visitor reconnects, the replica it reaches
ends a turn that never finished only if no lease is held (``TurnRunner.finish_interrupted``).

Redis errors never stop a turn: ``acquire``/``release`` log and go on; ``held`` answers ``True``
when Redis cannot be asked (an unfinished turn is left alone rather than cut short).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("klartext.redis")


class RedisTurnLeases:
    def __init__(self, client: Redis, *, node: str, prefix: str = "klartext:", ttl_s: float = 30.0):
        self.client = client
        self.node = node
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._held: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def _key(self, conversation_id: str) -> str:
        return f"{self.prefix}turn:{conversation_id}"

    async def acquire(self, conversation_id: str) -> None:
        count = self._held.get(conversation_id, 0) + 1
        self._held[conversation_id] = count
        if count == 1:
            await self._put([conversation_id])

    async def release(self, conversation_id: str) -> None:
        count = self._held.get(conversation_id, 1) - 1
        if count > 0:
            self._held[conversation_id] = count
            return
        self._held.pop(conversation_id, None)
        try:
            await self.client.zrem(self._key(conversation_id), self.node)
        except (RedisError, OSError) as exc:
            log.warning("turn lease release failed (it lapses): %s", exc)

    async def held(self, conversation_id: str) -> bool:
        """Whether any replica (this one included) runs a turn of the conversation."""
        if self._held.get(conversation_id):
            return True
        try:
            n = await self.client.zcount(self._key(conversation_id), time.time(), "+inf")
        except (RedisError, OSError) as exc:
            log.warning("turn lease check failed: %s", exc)
            return True
        return bool(n)

    async def _put(self, conversation_ids: list[str]) -> None:
        expires = time.time() + self.ttl_s
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for cid in conversation_ids:
                    pipe.zadd(self._key(cid), {self.node: expires})
                    pipe.expire(self._key(cid), int(self.ttl_s * 2) + 1)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("turn lease refresh failed: %s", exc)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            if self._held:
                await self._put(list(self._held))
