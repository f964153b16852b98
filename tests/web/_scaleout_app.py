"""The app one replica runs in the scale-out tests (``uvicorn --factory --app-dir tests/web
_scaleout_app:app``): ``create_app`` from ``KLARTEXT_*`` settings with the scripted engine of
``_wsfakes``, an index "build" read from ``index/CURRENT`` in the shared data dir (so the
reload loop has something to swap), the reload loop running (``KT_TEST_RELOAD_S`` seconds between
polls) and ``/_test/state`` reporting the build and the reindex notifications received."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from _wsfakes import FakeEngine
from fastapi import FastAPI, Request

import web.app as web_app
from bot.config import get_settings
from bot.conversation import ConversationContext
from bot.events import Event


class PacedEngine(FakeEngine):
    """``slow`` answers take ~4 s (0.4 s per event): long enough to reconnect mid-answer even on
    a loaded machine."""

    async def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]:
        async for ev in super().turn(text, ctx, turn_id=turn_id):
            yield ev
            if "slow" in text:
                await asyncio.sleep(0.25)


class SharedIndexRuntime:
    def __init__(self, index_dir: Path) -> None:
        self.engine = PacedEngine()
        self.current = index_dir / "CURRENT"
        self.build = self._read()
        self.reloads = 0

    def _read(self) -> str:
        return self.current.read_text().strip() if self.current.is_file() else ""

    def ready(self) -> dict[str, bool]:
        return {"index": True, "nlu": True}

    def reload_if_changed(self) -> bool:
        build = self._read()
        if build == self.build:
            return False
        self.build = build
        self.reloads += 1
        return True


def app() -> FastAPI:
    settings = get_settings()
    web_app.RELOAD_INTERVAL_S = float(os.environ.get("KT_TEST_RELOAD_S", "60"))
    runtime = SharedIndexRuntime(settings.index_dir)
    application = web_app.create_app(settings, runtime=runtime)
    inner = application.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            task = asyncio.create_task(web_app._reload_loop(a.state.services))
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    application.router.lifespan_context = lifespan

    @application.get("/_test/state")
    async def state(request: Request) -> dict[str, Any]:
        hub = request.app.state.services.hub
        return {
            "build": runtime.build,
            "reloads": runtime.reloads,
            "engine_calls": runtime.engine.calls,
            "reindex_received": getattr(hub, "reindex_received", None),
            "node": getattr(hub, "node", None),
        }

    return application
