"""Persist-then-publish: every conversation event is committed with its ``seq`` before any
socket sees it. Writes to one conversation are serialised in-process so frames are published
in ``seq`` order (subscribers still de-duplicate and refill gaps, for multi-replica hubs).
Writes of different conversations share group commits (``Database.write``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.orm import Session

from bot.store import Database, NewEvent, StoredEvent, writes
from web.hub import Hub

T = TypeVar("T")


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


class EventLog:
    def __init__(self, db: Database, hub: Hub) -> None:
        self.db = db
        self.hub = hub
        self._locks = KeyedLocks()

    async def write(
        self, conversation_id: str, fn: Callable[[Session], tuple[list[StoredEvent], T]]
    ) -> T:
        """Run ``fn`` in a write transaction for ``conversation_id``; the events it returns
        are published after the commit (nothing is published if it raises)."""
        async with self._locks.hold(conversation_id):
            stored, result = await self.db.write(fn)
            if stored:
                await self.hub.publish(conversation_id, [e.frame() for e in stored])
        return result

    async def emit(self, conversation_id: str, events: list[NewEvent]) -> list[StoredEvent]:
        """Append and publish events (e.g. an agent's message from the REST API)."""

        def op(s: Session) -> tuple[list[StoredEvent], list[StoredEvent]]:
            stored = writes.append_events(s, conversation_id, events)
            return stored, stored

        return await self.write(conversation_id, op)
