"""Group commit for SQLite: one writer thread runs queued write functions, many per
transaction (a SAVEPOINT each, so one failing function does not sink the others), with the
stdlib driver — one thread hand-off per batch instead of one per statement through aiosqlite.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bot.store.sqlite_fast import RAW_CONNECTION

T = TypeVar("T")
MAX_BATCH = 256
_Job = tuple[Callable[[Session], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


def sqlite_begin_immediate(engine: Engine) -> None:
    """Take SQLite's write lock at BEGIN (waits via busy_timeout instead of failing later)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=10000",
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # on the driver connection: SQLAlchemy's own execution path costs more than the BEGIN
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")


def _resolve_all(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in outcomes:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def _run_job(session: Session, raw: Any, fn: Callable[[Session], Any]) -> tuple[bool, Any]:
    """One job in its own SAVEPOINT, issued on the driver connection (plain SQL, no statement
    compilation). Inside it, SQLAlchemy's nested transaction is lazy: it emits its own
    SAVEPOINT only if the job goes through the ORM, and then restores the session's ORM state
    on failure as usual."""
    raw.execute("SAVEPOINT klartext_job")
    try:
        with session.begin_nested():
            value = fn(session)
    except Exception as exc:
        if not session.is_active:  # the transaction itself is gone: the batch fails as a whole
            raise
        raw.execute("ROLLBACK TO klartext_job")
        raw.execute("RELEASE klartext_job")
        return False, exc
    raw.execute("RELEASE klartext_job")
    return True, value


class SqliteWriter:
    def __init__(self, async_url: str) -> None:
        url = make_url(async_url).set(drivername="sqlite")
        self.engine = create_engine(url, connect_args={"check_same_thread": False})
        sqlite_begin_immediate(self.engine)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: Connection | None = None  # the writer thread's, kept between batches
        self.batches = 0
        self.jobs_done = 0

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="klartext-sqlite-writer", daemon=True
                )
                self._thread.start()

    async def run(self, fn: Callable[[Session], T]) -> T:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, fut, loop))
        return await fut

    def _loop(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            while len(jobs) < MAX_BATCH:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            self._run_batch(jobs)
            if stop:
                return

    def _run_batch(self, jobs: list[_Job]) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            if self._conn is None:
                self._conn = self.engine.connect()
            with Session(self._conn, expire_on_commit=False) as session, session.begin():
                # the hot writes run plain SQL on this connection (``bot.store.sqlite_fast``)
                raw = session.connection().connection.driver_connection
                session.info[RAW_CONNECTION] = raw
                for fn, _fut, _loop in jobs:
                    results.append(_run_job(session, raw, fn))
        except Exception as exc:  # commit (or BEGIN) failed: nothing of this batch persisted
            results = [(False, exc)] * len(jobs)
            self._drop_connection()  # the next batch starts on a fresh one
        self.batches += 1
        self.jobs_done += len(jobs)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for (_fn, fut, loop), (ok, value) in zip(jobs, results, strict=True):
            by_loop.setdefault(loop, []).append((fut, ok, value))
        for loop, outcomes in by_loop.items():  # one wake-up per loop and batch
            with contextlib.suppress(RuntimeError):  # loop closed
                loop.call_soon_threadsafe(_resolve_all, outcomes)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout=30)
            if not thread.is_alive():
                self._drop_connection()
        self.engine.dispose()
