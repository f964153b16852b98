"""The engines and session factory, with SQLite tuned for a single-process server.

Reads go through the async engine (aiosqlite / asyncpg). Writes on hot paths go through
:meth:`Database.write`: on SQLite a group-commit writer thread (``bot.store.writer``; SQLite has
one writer anyway, and one thread hand-off per batch beats one per statement), on PostgreSQL a
plain async transaction where row locks do the work. :meth:`Database.writing` yields an
``AsyncSession`` in a write transaction (serialised in-process on SQLite; ``busy_timeout`` covers
the writer thread). In-memory SQLite is not supported: use a file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from bot.errors import StoreError
from bot.store.writer import SqliteWriter

T = TypeVar("T")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_dir(url: str) -> None:
    """Create the directory of a file-based SQLite URL (no-op for other backends)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    ensure_sqlite_dir(url)
    if is_sqlite(url):
        # aiosqlite runs SELECTs outside transactions and every write path commits or rolls back
        # explicitly, so the per-checkin ROLLBACK (a thread round trip) is pure overhead.
        engine = create_async_engine(url, pool_reset_on_return=None)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


def _unreachable(exc: OSError) -> StoreError:
    """asyncpg raises plain ``OSError``s (connection refused/reset) that SQLAlchemy does not
    wrap: callers get the store's own error instead (code KT800)."""
    return StoreError(f"database unreachable ({type(exc).__name__}: {exc})")


class Database:
    """Owns the engines. ``session()`` for reads; ``write(fn)`` for writes on hot paths (group
    commit on SQLite); ``writing()`` for an ``AsyncSession`` inside one write transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.sqlite else None
        self._writer = SqliteWriter(url) if self.sqlite else None

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in its own transaction (a SAVEPOINT inside a group commit on
        SQLite). ``fn`` is sync: use the operations of ``bot.store.writes``."""
        if self._writer is not None:
            return await self._writer.run(fn)
        try:
            async with self.sessions() as session, session.begin():
                return await session.run_sync(fn)
        except OSError as exc:
            raise _unreachable(exc) from exc

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self.sessions() as session:
                yield session
        except OSError as exc:
            raise _unreachable(exc) from exc

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed on success, rolled back on error."""
        guard = self._write_lock if self._write_lock is not None else nullcontext()
        try:
            async with guard, self.sessions() as session, session.begin():
                yield session
        except OSError as exc:
            raise _unreachable(exc) from exc

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        await self.engine.dispose()
