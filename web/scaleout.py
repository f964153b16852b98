"""Wiring for several replicas: with ``KLARTEXT_REDIS_URL`` set, the app gets a
:class:`~web.redis_hub.RedisHub` (live events across replicas, reindex notifications) and
:class:`~web.turn_leases.RedisTurnLeases` (which turns run where). Without it nothing here
imports Redis and the app keeps its in-process hub.

Reindex: the replicas share the index directory (a shared volume). Each one still polls it; a
replica that swaps in a new build announces it on Redis so the others reload at once instead of
at their next poll.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config import Settings
from web.hub import Hub

if TYPE_CHECKING:
    from web.redis_hub import RedisHub
    from web.turn_leases import RedisTurnLeases

log = logging.getLogger("klartext.redis")


@dataclass
class ScaleOut:
    hub: RedisHub
    leases: RedisTurnLeases

    async def aclose(self) -> None:
        await self.leases.aclose()
        await self.hub.aclose()


async def start_scaleout(settings: Settings) -> ScaleOut | None:
    """The Redis hub and turn leases, started; ``None`` when no Redis is configured. An
    unreachable Redis does not stop the server: the hub reconnects with backoff and ``/readyz``
    reports ``redis: false`` meanwhile."""
    if not settings.redis_url:
        return None
    from web.redis_hub import RedisHub
    from web.turn_leases import RedisTurnLeases

    hub = RedisHub(settings.redis_url, prefix=settings.redis_prefix)
    leases = RedisTurnLeases(
        hub.client, node=hub.node, prefix=settings.redis_prefix, ttl_s=settings.redis_turn_lease_s
    )
    await hub.start()
    leases.start()
    if not await hub.ping():
        log.warning("redis at %s is not reachable yet; retrying", _safe_url(settings.redis_url))
    return ScaleOut(hub, leases)


async def wait_reload(hub: Hub, interval_s: float) -> bool:
    """Sleep until the next index check: ``interval_s``, or less when another replica
    announces a reindex (then ``True``)."""
    wake = getattr(hub, "reindex_requested", None)
    if not isinstance(wake, asyncio.Event):
        await asyncio.sleep(interval_s)
        return False
    try:
        await asyncio.wait_for(wake.wait(), interval_s)
    except TimeoutError:
        return False
    wake.clear()
    return True


def announce_reindex(hub: Hub) -> None:
    """Tell the other replicas (if any) that this one picked up a new index build."""
    notify = getattr(hub, "notify_reindex", None)
    if callable(notify):
        notify()


def _safe_url(url: str) -> str:
    return url.split("@")[-1]
