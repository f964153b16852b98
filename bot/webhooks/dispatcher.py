"""The webhook dispatcher: delivers the outbox (``webhook_deliveries``) at least once.

One loop per server process: record finished attempts, claim due deliveries up to the free
concurrency (``bot.store.webhook_queue.claim_due``: ``FOR UPDATE SKIP LOCKED`` + a lease, so
replicas share the work), POST each, signed, with httpx. A failed attempt (no 2xx, timeout,
connection error) is retried after ``base · 2^(n-1)`` seconds (capped, ×0.8–1.2 jitter) until
``webhook_max_attempts``, then marked ``failed``. Nothing is lost on a crash: a row is marked
delivered only after the receiver's 2xx, and a claim whose process died expires with its lease
(on a clean stop the claims are released at once). Receivers de-duplicate by
``Klartext-Delivery-Id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store import Database
from bot.store import webhook_queue as q
from bot.store.models import utcnow
from bot.webhooks.clients import ClientPool
from bot.webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature_header

log = logging.getLogger("klartext.webhooks")
_PRUNE_EVERY_S = 600.0
_LEASE_MIN_S = 5.0
_MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    max_attempts: int = 10
    backoff_base_s: float = 10.0
    backoff_max_s: float = 3600.0
    timeout_s: float = 10.0
    poll_interval_s: float = 0.5
    batch_size: int = 200
    concurrency: int = 64
    retention_days: float = 30.0

    @classmethod
    def from_settings(cls, settings: object) -> DispatchConfig:
        return cls(
            **{
                name: getattr(settings, f"webhook_{name}")
                for name in cls.__dataclass_fields__
                if hasattr(settings, f"webhook_{name}")
            }
        )


def backoff_delay(
    attempts: int, cfg: DispatchConfig, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1-based), with jitter."""
    base = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** min(attempts - 1, 40))
    return float(base * (0.8 + 0.4 * rand()))


def outcome_of(
    claimed: q.Claimed,
    cfg: DispatchConfig,
    at: datetime,
    code: int | None,
    error: str | None,
) -> q.Outcome:
    if error is None and code is not None and 200 <= code < 300:
        return q.Outcome(claimed.id, "delivered", at, at, code, None)
    attempts = claimed.attempts + 1
    if attempts >= cfg.max_attempts:
        return q.Outcome(claimed.id, "failed", at, at, code, error)
    retry_at = at + timedelta(seconds=backoff_delay(attempts, cfg))
    return q.Outcome(claimed.id, "pending", retry_at, at, code, error)


def _worker_id() -> str:
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WebhookDispatcher:
    def __init__(self, db: Database, cfg: DispatchConfig | None = None) -> None:
        self.db = db
        self.cfg = cfg or DispatchConfig()
        self.worker = _worker_id()
        self._clients = ClientPool(self.cfg.timeout_s)
        self._signal = asyncio.Event()
        self._done: list[q.Outcome] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._idle_tick = False
        self._idle = False  # the last claim found nothing: probe with a read first
        # claim again once this many slots are free (or at the next poll tick)
        self._refill_at = max(1, min(self.cfg.batch_size, self.cfg.concurrency // 4))
        self._last_prune = 0.0
        self.delivered = 0
        self.failed_attempts = 0

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self.db.sqlite:  # one process owns a SQLite file: claims left by a crash are ours
            released = await self.db.write(lambda s: q.release_claims(s, None))
            if released:
                log.info("webhook claims released after restart", extra={"count": released})
        self._task = asyncio.create_task(self._run(), name="klartext-webhooks")

    def wake(self) -> None:
        """Look for due deliveries now (e.g. after a redelivery request)."""
        self._signal.set()

    async def aclose(self, grace_s: float | None = None) -> None:
        """Stop claiming, let in-flight POSTs finish (up to ``grace_s``), record them and
        release what is left, so another process can deliver it at once."""
        self._stopping = True
        self._signal.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:
            _, pending = await asyncio.wait(
                set(self._inflight), timeout=self.cfg.timeout_s if grace_s is None else grace_s
            )
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self._flush()
            await self.db.write(lambda s: q.release_claims(s, self.worker))
        except Exception:
            log.exception("webhook dispatcher: final flush failed (leases will expire)")
        await self._clients.aclose()

    # --- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            try:
                full = await self._step()
            except Exception:
                log.exception("webhook dispatcher step failed")
                full = False
            if full and not self._stopping:
                continue
            try:
                await asyncio.wait_for(self._signal.wait(), self.cfg.poll_interval_s)
            except TimeoutError:
                self._idle_tick = True
            self._signal.clear()

    async def _step(self) -> bool:
        """Record finished attempts, claim and start more; ``True`` if it should go on at
        once (a full batch was claimed and there is room for more)."""
        free = self.cfg.concurrency - len(self._inflight)
        if self._inflight and free < self._refill_at and not self._idle_tick:
            return False  # let more POSTs finish: fewer, larger database round trips
        self._idle_tick = False
        await self._flush()
        await self._maybe_prune()
        if free <= 0:
            return False
        limit = min(self.cfg.batch_size, free)
        lease = 2 * self.cfg.timeout_s + _LEASE_MIN_S  # a POST ends within timeout_s
        if self._idle and not await self._anything_due():
            return False  # idle: a plain read, no write transaction (SQLite's lock) per poll
        claimed = await self.db.write(
            lambda s: q.claim_due(s, limit=limit, lease_s=lease, worker=self.worker)
        )
        self._idle = not claimed
        for c in claimed:
            task = asyncio.create_task(self._deliver(c))
            self._inflight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed) == limit and len(self._inflight) < self.cfg.concurrency

    async def _anything_due(self) -> bool:
        async with self.db.session() as session:
            return await session.run_sync(q.any_due)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._signal.set()

    async def _flush(self) -> None:
        if not self._done:
            return
        done, self._done = self._done, []
        try:
            await self.db.write(lambda s: q.record_outcomes(s, done))
        except Exception:
            self._done = done + self._done  # keep them for the next try
            raise

    async def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < _PRUNE_EVERY_S:
            return
        self._last_prune = now
        await self._clients.close_idle()
        cutoff = utcnow() - timedelta(days=self.cfg.retention_days)
        n = await self.db.write(lambda s: q.prune(s, older_than=cutoff))
        if n:
            log.info("webhook deliveries pruned", extra={"count": n})

    async def _deliver(self, c: q.Claimed) -> None:
        body = c.body.encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: c.event_type,
            DELIVERY_HEADER: c.idempotency_key,
            SIGNATURE_HEADER: signature_header(c.secret, body),
        }
        code: int | None = None
        error: str | None = None
        try:
            async with self._clients.client(c.url) as client:
                resp = await client.post(c.url, content=body, headers=headers)
            code = resp.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}: {resp.text[:_MAX_ERROR_CHARS]}".rstrip(": ")
        except Exception as exc:  # any transport or URL problem is a failed attempt
            error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
        outcome = outcome_of(c, self.cfg, utcnow(), code, error)
        if outcome.status == "delivered":
            self.delivered += 1
        else:
            self.failed_attempts += 1
            log.warning(
                "webhook attempt failed",
                extra={"delivery": c.idempotency_key, "error": error, "status": outcome.status},
            )
        self._done.append(outcome)
