"""``python tests/web/_serve_fake.py``: a real uvicorn server in the main thread (so SIGTERM is
handled as in production) around ``create_app`` with the scripted fake engine. Settings come
from ``KLARTEXT_*`` variables. The engine also logs what it was asked, carelessly, so tests can
check that the log scrubbing catches it."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _wsfakes import FakeEngine, FakeRuntime

from bot.config import Settings
from bot.conversation import ConversationContext
from bot.events import Event
from web.app import create_app

log = logging.getLogger("klartext.fake_engine")


class LoggingEngine(FakeEngine):
    async def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]:
        log.warning("answering %s", text)  # a careless log line with user text
        async for ev in super().turn(text, ctx, turn_id=turn_id):
            yield ev


def main() -> None:
    settings = Settings()
    runtime = FakeRuntime()
    runtime.engine = LoggingEngine()
    app = create_app(settings, runtime=runtime)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=settings.port,
        log_level="warning",
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=15,
        forwarded_allow_ips=settings.trusted_proxies,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
