"""Health probes, static pages, and the refusal to start on an un-migrated database."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from _wsfakes import FakeRuntime
from _wsutil import ServerThread, StartServer, make_settings
from fastapi import FastAPI

from bot.errors import StoreError
from web.app import create_app
from web.routes import pages


async def test_healthz_and_readyz(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        health = await http.get("/healthz", headers={"X-Request-ID": "req-42"})
        assert health.json() == {"status": "ok"} and health.headers["x-request-id"] == "req-42"
        assert len((await http.get("/healthz")).headers["x-request-id"]) == 32
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"index": True, "nlu": True, "database": True, "migrations": True},
    }


async def test_readyz_stays_ready_without_llm_or_order_backend(start_server: StartServer) -> None:
    checks = {"index": True, "nlu": True, "llm": False, "actions": False}
    server = start_server(runtime=FakeRuntime(ready=checks))
    async with httpx.AsyncClient(base_url=server.url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200  # still answers from knowledge
    assert ready.json()["checks"]["llm"] is False and ready.json()["checks"]["actions"] is False


async def test_readyz_reports_a_missing_index(start_server: StartServer) -> None:
    server = start_server(runtime=FakeRuntime(ready={"index": False, "nlu": True}))
    async with httpx.AsyncClient(base_url=server.url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["index"] is False


async def test_refuses_to_start_on_unmigrated_database(tmp_path: Path) -> None:
    app: FastAPI = create_app(make_settings(tmp_path), runtime=FakeRuntime())
    with pytest.raises(StoreError, match="klartext db upgrade"):
        async with app.router.lifespan_context(app):
            pass


async def test_pages_serve_widget_files_with_types_and_cors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "widget.js").write_text("customElements.define('klartext-chat', class {});")
    (tmp_path / "widget.css").write_text(":host{}")
    (tmp_path / "demo" / "index.html").write_text("<!doctype html><title>demo</title>")
    (tmp_path / "icons").mkdir()
    (tmp_path / "icons" / "a.svg").write_text("<svg/>")
    (tmp_path.parent / "outside.txt").write_text("secret")
    monkeypatch.setattr(pages, "WIDGET_DIR", tmp_path)
    app = create_app(make_settings(tmp_path / "data"), runtime=FakeRuntime())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        js = await http.get("/widget.js")
        css = await http.get("/widget.css")
        index = await http.get("/")
        svg = await http.get("/static/icons/a.svg")
        theming = await http.get("/demo/theming")
        head = await http.head("/widget.js")
        escape = await http.get("/static/..%2Foutside.txt")
        escape2 = await http.get("/static/%2e%2e/outside.txt")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["access-control-allow-origin"] == "*"
    assert "max-age" in js.headers["cache-control"]
    assert head.status_code == 200 and head.headers["content-type"] == js.headers["content-type"]
    assert css.headers["content-type"].startswith("text/css")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert theming.status_code == 404  # not there yet → a clean 404
    assert escape.status_code == 404 and escape2.status_code == 404
