"""Gauges that need the database: a background task counts pending webhook deliveries every
``interval_s`` (the scrape callback must not query) and ``klartext_webhook_queue_depth`` reports
the last count."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import func, select

from bot.store import Database
from bot.store.webhook_models import WebhookDelivery
from web.metrics import Metrics

log = logging.getLogger("klartext.metrics")
POLL_INTERVAL_S = 15.0


async def pending_webhook_deliveries(db: Database) -> int:
    async with db.session() as session:
        stmt = select(func.count()).where(WebhookDelivery.status == "pending")
        return int((await session.execute(stmt)).scalar_one())


class DepthPoller:
    def __init__(self, db: Database, metrics: Metrics, interval_s: float = POLL_INTERVAL_S) -> None:
        self.db = db
        self.metrics = metrics
        self.interval_s = interval_s
        self.value: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.metrics.callbacks.webhook_depth = lambda: self.value
        self._task = asyncio.create_task(self._loop())

    async def poll_once(self) -> None:
        try:
            self.value = await pending_webhook_deliveries(self.db)
        except Exception as exc:  # database down: the gauge goes absent, not stale
            self.value = None
            log.debug("webhook queue depth unavailable: %s", exc)

    async def _loop(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
