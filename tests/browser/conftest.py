"""Browser tests: the real Klartext app under uvicorn + real headless Chromium via Playwright.

The server runs as a subprocess (``uvicorn web.app:create_app --factory``) on a free loopback
port with its own ``KLARTEXT_DATA_DIR`` (migrated SQLite + an index built by
``klartext reindex knowledge/demo``). ``KlartextServer.restart()`` kills it hard and starts it
again on the same port and data dir, for the reconnect test.

Screenshots go to a temporary folder; set ``KLARTEXT_SCREENSHOTS=docs/img`` to refresh the ones
in the docs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _kt_server import CHROMIUM, CHROMIUM_ARGS, ROOT, KlartextServer, free_port
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[KlartextServer]:
    srv = KlartextServer(tmp_path_factory.mktemp("klartext-data"), free_port())
    cache = request.config.cache
    srv.prepare(index_cache=cache.mkdir("klartext-browser-index") if cache is not None else None)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


# Module scope, not session: Playwright's sync API keeps an event loop running in this
# thread, which would break asyncio.run() in every test collected after the browser tests.
@pytest.fixture(scope="module")
def playwright_() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_: Playwright) -> Iterator[Browser]:
    b = playwright_.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    assert not errors, f"uncaught page errors: {errors}"


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("KLARTEXT_SCREENSHOTS")
    if target:
        path = (ROOT / target).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")
