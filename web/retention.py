"""The server's retention sweep (:mod:`bot.store.retention`): every
``retention_sweep_interval_s`` it erases the conversations last active more than
``conversation_retention_days`` ago.

Each erasure goes through the event log's per-conversation write (like
``DELETE /api/v1/conversations/{id}``), so it is serialised with any write of that conversation
in this process, and drops the conversation's cached history. Several replicas may sweep at
once: an erasure re-checks the cutoff in its transaction and a second one finds nothing. The
log says how many were erased, never which.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.store import Database, StoredEvent
from bot.store.retention import erase_if_expired_sync, expired_conversations, retention_cutoff
from web.eventlog import EventLog

log = logging.getLogger("klartext.retention")

_BATCH = 200


class _Forgets(Protocol):
    def forget(self, conversation_id: str) -> None: ...


class RetentionSweep:
    def __init__(self, settings: Settings, db: Database, events: EventLog, turns: _Forgets) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        self.turns = turns

    async def sweep_once(self) -> int:
        """Erase every expired conversation; how many were erased."""
        days = self.settings.conversation_retention_days
        if days is None:
            return 0
        cutoff = retention_cutoff(days)
        erased = 0
        while True:
            async with self.db.session() as session:
                ids = await expired_conversations(session, cutoff, limit=_BATCH)
            done = 0
            for cid in ids:
                if await self.events.write(cid, _eraser(cid, cutoff)):
                    self.turns.forget(cid)
                    done += 1
            erased += done
            if len(ids) < _BATCH or done == 0:
                break
            await asyncio.sleep(0)  # let chats write between batches
        if erased:
            log.info("retention: erased expired conversations", extra={"erased": erased})
        return erased

    async def run(self) -> None:
        """The background sweep (cancel to stop); the first one right after start."""
        interval = max(0.05, self.settings.retention_sweep_interval_s)
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(interval)


def _eraser(cid: str, cutoff: datetime) -> Callable[[Session], tuple[list[StoredEvent], bool]]:
    def erase(s: Session) -> tuple[list[StoredEvent], bool]:
        return [], erase_if_expired_sync(s, cid, cutoff)

    return erase
