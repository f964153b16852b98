"""Server side of the websocket benchmarks: ``create_app`` plus ``/_bench/ttft`` (server-side
time from a ``message`` frame received to its first token persisted, i.e. ready to send).

``KLARTEXT_BENCH_ENGINE=fake`` injects a scripted engine that streams like extractive mode (a
short answer in ~12 chunks, no sleeps) — used only when the real runtime is unavailable, and
labelled as such in the results. Run with ``uvicorn --factory --app-dir bench _ws_server:app``.
``/_bench/threads`` reports CPU seconds per thread role; ``KLARTEXT_BENCH_WORKERS=n`` gives the
loop's default executor (the engine's ``asyncio.to_thread``) ``n`` threads for the measured part.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from bot.config import get_settings
from bot.conversation import ConversationContext
from bot.events import Done, Event, SourceRef, Sources, Token
from web.app import create_app

ANSWER = (
    "Standard delivery takes two to four working days within Germany and three to seven "
    "working days to other EU countries."
)


class _ExtractiveLikeEngine:
    async def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]:
        words = ANSWER.split(" ")
        for i in range(0, len(words), 2):
            yield Token(text=(" " if i else "") + " ".join(words[i : i + 2]))
            await asyncio.sleep(0)
        yield Sources(items=[SourceRef(id="shipping", title="Shipping", url="/help/shipping")])
        yield Done(turn_id=turn_id, mode="extractive", answered=True, confidence=0.9)


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process's Python threads, summed per thread name
    (a pool's numbered threads together): the event loop (``MainThread``), the SQLite writer,
    worker threads (``asyncio.to_thread``; ``uvloop`` under uvloop), aiosqlite's; ``total``
    includes native threads (e.g. OpenMP) that ``threading`` does not know."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(tid: int | str) -> float:
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    out: dict[str, float] = {}
    for t in threading.enumerate():
        name = re.sub(r"[-_ ]?\d+", "", t.name)  # a pool's threads together
        if t.native_id is not None:
            out[name] = out.get(name, 0.0) + cpu(t.native_id)
    out["total"] = sum(cpu(tid) for tid in os.listdir("/proc/self/task"))
    return out


class _FakeRuntime:
    engine = _ExtractiveLikeEngine()

    def ready(self) -> dict[str, bool]:
        return {"index": True}


def app() -> FastAPI:
    fake = os.environ.get("KLARTEXT_BENCH_ENGINE") == "fake"
    application = create_app(get_settings(), runtime=_FakeRuntime() if fake else None)

    @application.get("/_bench/ttft")
    async def ttft(request: Request) -> dict[str, Any]:
        samples = sorted(request.app.state.services.turns.first_token_ms)
        if not samples:
            return {"n": 0}
        q = (
            statistics.quantiles(samples, n=100, method="inclusive")
            if len(samples) > 1
            else samples * 99
        )
        return {"n": len(samples), "p50_ms": q[49], "p99_ms": q[98], "max_ms": samples[-1]}

    @application.get("/_bench/threads")
    async def threads(request: Request) -> dict[str, float]:
        out = thread_cpu()
        writer = getattr(request.app.state.services.db, "_writer", None)
        if writer is not None:  # group commit: jobs per SQLite transaction
            out["writer_batches"], out["writer_jobs"] = writer.batches, writer.jobs_done
        return out

    @application.post("/_bench/reset")
    async def reset(request: Request) -> dict[str, bool]:
        request.app.state.services.turns.first_token_ms.clear()
        workers = os.environ.get("KLARTEXT_BENCH_WORKERS")
        if workers:  # A/B: the engine's worker threads (asyncio.to_thread) for the measured part
            pool = ThreadPoolExecutor(int(workers), thread_name_prefix="bench-worker")
            asyncio.get_running_loop().set_default_executor(pool)
        return {"ok": True}

    return application
