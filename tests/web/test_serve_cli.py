"""``klartext serve`` and ``klartext db`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _wsutil import free_port
from typer.testing import CliRunner
from websockets.asyncio.client import connect

import bot.cli.serve_cmds  # noqa: F401  (registers the commands)
from bot.cli import app
from bot.store.migrate import head_revision

CLI = "import bot.cli.serve_cmds; from bot.cli import app; app()"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KLARTEXT_DATA_DIR": str(tmp_path / "var"),
        "KLARTEXT_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


async def test_serve_migrates_default_sqlite_prints_url_and_serves(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--port", str(port), "--no-prepare"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            while True:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
            ready = await http.get("/readyz")
        assert ready.status_code == 503  # no index yet: not ready, but serving
        assert ready.json()["checks"]["index"] is False
        assert ready.json()["checks"]["migrations"] is True
        async with connect(f"ws://127.0.0.1:{port}/ws/chat") as ws:
            await ws.send(json.dumps({"type": "hello", "v": 1}))
            assert json.loads(await ws.recv())["type"] == "welcome"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in out
    assert (tmp_path / "var" / "klartext.db").is_file()


def test_serve_refuses_an_unmigrated_explicit_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'explicit.db'}"
    result = subprocess.run(
        [sys.executable, "-c", CLI, "serve", "--port", str(free_port())],
        env=_env(tmp_path, KLARTEXT_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "klartext db upgrade" in result.stderr


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    before = runner.invoke(app, ["db", "current", "--url", url])
    assert before.exit_code == 0 and "empty" in before.output and "behind" in before.output
    up = runner.invoke(app, ["db", "upgrade", "--url", url])
    head = head_revision()
    assert up.exit_code == 0 and f"empty → {head}" in up.output
    again = runner.invoke(app, ["db", "upgrade", "--url", url])
    assert f"already at {head}" in again.output
    after = runner.invoke(app, ["db", "current", "--url", url])
    assert "up to date" in after.output
