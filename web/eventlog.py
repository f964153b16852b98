"""Persist-then-publish: every conversation event is committed with its ``seq`` before any
socket sees it. Writes to one conversation are serialised in-process so frames are published
in ``seq`` order (subscribers still de-duplicate and refill gaps, for multi-replica hubs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import Database, NewEvent, StoredEvent, repo
from web.hub import Hub


class KeyedLocks:
    """One ``asyncio.Lock`` per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass
class Batch:
    session: AsyncSession
    conversation_id: str
    stored: list[StoredEvent] = field(default_factory=list)

    async def append(self, events: list[NewEvent]) -> list[StoredEvent]:
        out = await repo.append_events(self.session, self.conversation_id, events)
        self.stored.extend(out)
        return out

    async def update(self, **values: Any) -> None:
        await repo.update_conversation(self.session, self.conversation_id, **values)


class EventLog:
    def __init__(self, db: Database, hub: Hub) -> None:
        self.db = db
        self.hub = hub
        self._locks = KeyedLocks()

    @asynccontextmanager
    async def writing(self, conversation_id: str) -> AsyncIterator[Batch]:
        """One transaction for ``conversation_id``; its appended events are published after
        the commit (nothing is published if the block raises)."""
        async with self._locks.hold(conversation_id):
            async with self.db.writing() as session:
                batch = Batch(session, conversation_id)
                yield batch
            if batch.stored:
                await self.hub.publish(conversation_id, [e.frame() for e in batch.stored])

    async def emit(self, conversation_id: str, events: list[NewEvent]) -> list[StoredEvent]:
        async with self.writing(conversation_id) as batch:
            return await batch.append(events)
