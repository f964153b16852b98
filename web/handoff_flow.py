"""Handoff around the state machine: the summary attached when a conversation is handed to a
human, the "no agent available" fallback, and the timeout sweep.

* :meth:`HandoffFlow.annotate` / :meth:`HandoffFlow.summary`: the ``summary`` of a ``handoff``
  event entering ``pending_human`` (:mod:`bot.handoff_summary`; LLM if configured and healthy).
* :meth:`HandoffFlow.requested`: after a visitor's handoff is committed — when agents are
  switched off (``POST /api/v1/agents/availability``), the fallback runs at once.
* :meth:`HandoffFlow.run`: the lifespan's background sweep. Every ``handoff_sweep_interval_s``
  it gives every conversation waiting in ``pending_human`` longer than ``handoff_timeout_s``
  (or any, while agents are off or it is outside ``handoff_office_hours``) back to the bot
  with the fallback message (:mod:`bot.handoff_fallback`). The claim is a conditional UPDATE,
  so replicas sweeping at the same time never double a message.

Cheap on the event loop (a handoff turn is a few % of all turns, but read a lot): the summary's
inputs (the conversation's language, its recent events) are read by one job of the store's
writer (:func:`bot.store.handoff_reads.summary_inputs`, plain SQL on SQLite) instead of an
async session; the availability switch is kept for ``handoff_availability_cache_s`` seconds
(:meth:`HandoffFlow.availability_changed` applies a change made through this replica's API at
once; another replica sees it when its copy expires, and its sweep then falls back whatever
was queued in between).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import Settings
from bot.handoff_fallback import FallbackReason, fallback_op
from bot.handoff_summary import SUMMARY_EVENT_TYPES, summarize
from bot.llm.providers import ChatModelProvider
from bot.office_hours import parse_office_hours
from bot.store import Database, NewEvent
from bot.store.handoff_reads import summary_inputs
from bot.store.handoff_timeout import Availability, due_conversations, get_availability
from web.eventlog import EventLog

log = logging.getLogger("klartext.handoff")
_HISTORY_EVENTS = 400
_SWEEP_BATCH = 200

ProviderSource = Callable[[], ChatModelProvider | None]


class HandoffFlow:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        events: EventLog,
        provider: ProviderSource = lambda: None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        self._provider = provider
        self._clock = clock  # for the availability copy's age
        hours = settings.handoff_office_hours
        # a bad spec stops the server at start (ConfigError), not at the first handoff
        self.hours = parse_office_hours(hours, settings.handoff_timezone) if hours else None
        self._availability: tuple[float, Availability] | None = None  # (monotonic read time, …)
        self._availability_version = 0  # bumped on every change told; stale reads are dropped

    # --- summary -------------------------------------------------------------------------
    async def summary(
        self, conversation_id: str, pending: Sequence[NewEvent] = (), reason: str | None = None
    ) -> dict[str, Any] | None:
        """The handoff summary of the conversation so far (plus ``pending`` events not yet
        written); ``None`` if it cannot be made — a summary never stops a handoff."""
        try:
            return await self._summary(conversation_id, pending, reason)
        except Exception:
            log.exception("handoff summary failed", extra={"conversation_id": conversation_id})
            return None

    async def _summary(
        self, conversation_id: str, pending: Sequence[NewEvent], reason: str | None
    ) -> dict[str, Any]:
        conv_lang, stored = await self.db.write(
            functools.partial(
                summary_inputs,
                conversation_id=conversation_id,
                limit=_HISTORY_EVENTS,
                types=SUMMARY_EVENT_TYPES,
            )
        )
        events: list[Any] = [*stored, *pending]
        lang = conv_lang or _last_lang(events) or self.settings.default_language
        provider = self._provider() if self.settings.handoff_summary_llm else None
        return await summarize(
            events,
            lang=lang,
            order_pattern=self.settings.order_number_pattern,
            reason=reason,
            provider=provider,
            timeout_s=self.settings.handoff_summary_timeout_s,
        )

    async def annotate(self, conversation_id: str, events: list[NewEvent]) -> list[NewEvent]:
        """``events`` with a ``summary`` on each ``handoff`` entering ``pending_human``."""
        marks = [
            i
            for i, e in enumerate(events)
            if e.type == "handoff" and e.payload.get("state") == "pending_human"
        ]
        if not marks:
            return events
        summary = await self.summary(
            conversation_id, events, reason=events[marks[0]].payload.get("reason")
        )
        if summary is None:
            return events
        out = list(events)
        for i in marks:
            e = out[i]
            out[i] = NewEvent(e.type, {**e.payload, "summary": summary}, e.turn_id)
        return out

    # --- availability and the fallback ---------------------------------------------------
    async def availability(self) -> Availability:
        """The agent-availability switch, at most ``handoff_availability_cache_s`` old."""
        ttl = self.settings.handoff_availability_cache_s
        cached = self._availability
        if cached is not None and self._clock() - cached[0] < ttl:
            return cached[1]
        version, read_at = self._availability_version, self._clock()
        async with self.db.session() as session:
            current = await get_availability(session)
        if ttl > 0 and version == self._availability_version:  # no change told meanwhile
            self._availability = (read_at, current)
        return current

    def availability_changed(self, current: Availability) -> None:
        """The switch was just set (or read) through this replica: use it from now on."""
        self._availability_version += 1
        if self.settings.handoff_availability_cache_s > 0:
            self._availability = (self._clock(), current)

    async def closed_reason(self) -> FallbackReason | None:
        """Why agents take no handoffs now (switched off / outside office hours), or None."""
        if not (await self.availability()).available:
            return "no_agent_available"
        if self.hours is not None and not self.hours.open_at(datetime.now(UTC)):
            return "outside_office_hours"
        return None

    async def requested(self, conversation_id: str) -> None:
        """A visitor's handoff was committed: with agents off, fall back right away."""
        try:
            reason = await self.closed_reason()
            if reason is not None:
                await self.fallback(conversation_id, reason, older_than=None)
        except Exception:
            log.exception("no-agent fallback failed", extra={"conversation_id": conversation_id})

    async def fallback(
        self, conversation_id: str, reason: FallbackReason, *, older_than: datetime | None
    ) -> bool:
        op = fallback_op(
            conversation_id,
            reason=reason,
            older_than=older_than,
            default_lang=self.settings.default_language,
        )
        done = await self.events.write(conversation_id, op)
        if done:
            log.info(
                "handoff fallback", extra={"conversation_id": conversation_id, "reason": reason}
            )
        return done

    async def sweep_once(self) -> int:
        """One pass of the sweep; returns how many conversations went back to the bot."""
        closed = await self.closed_reason()
        timeout = self.settings.handoff_timeout_s
        if closed is None and timeout <= 0:
            return 0
        cutoff = None if closed else datetime.now(UTC) - timedelta(seconds=timeout)
        reason: FallbackReason = closed or "handoff_timeout"
        async with self.db.session() as session:
            ids = await due_conversations(session, older_than=cutoff, limit=_SWEEP_BATCH)
        n = 0
        for cid in ids:
            try:
                n += await self.fallback(cid, reason, older_than=cutoff)
            except Exception:
                log.exception("handoff fallback failed", extra={"conversation_id": cid})
        return n

    async def run(self) -> None:
        """The background sweep (cancel to stop)."""
        interval = max(0.05, self.settings.handoff_sweep_interval_s)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep_once()
            except Exception:
                log.exception("handoff sweep failed")


def llm_of(runtime: object) -> ChatModelProvider | None:
    """The runtime's LLM provider, unless there is none or its circuit is open."""
    provider = getattr(runtime, "provider", None)
    breaker = getattr(getattr(runtime, "engine", None), "breaker", None)
    if not isinstance(provider, ChatModelProvider):
        return None
    if breaker is not None and getattr(breaker, "state", "closed") == "open":
        return None
    return provider


def _last_lang(events: Sequence[Any]) -> str | None:
    for e in reversed(events):
        if e.type == "done" and e.payload.get("lang"):
            return str(e.payload["lang"])
    return None
