"""`klartext reindex` tells running replicas over a real Redis (KLARTEXT_REDIS_URL)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import redis
from fakes import FakeEmbedder
from rich.console import Console
from typer.testing import CliRunner

import bot.cli.index_cmds as cmds
from bot.cli._apps import app
from bot.config import get_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from _redis import redis_server

FAQ = """\
lang: en
entries:
  - id: ship
    question: How long does delivery take?
    answer: Orders arrive in 1-3 working days.
"""


def _setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Path:
    root = tmp_path / "kb"
    root.mkdir()
    (root / "faq.yaml").write_text(FAQ)
    monkeypatch.setenv("KLARTEXT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KLARTEXT_KNOWLEDGE_DIR", str(root))
    monkeypatch.setenv("KLARTEXT_REDIS_URL", redis_url)
    monkeypatch.setenv("KLARTEXT_REDIS_PREFIX", "kt-test:")
    monkeypatch.setattr(cmds, "make_embedder", lambda settings, languages: FakeEmbedder())
    monkeypatch.setattr(cmds, "_configured_name", lambda settings, languages: "fake:trigram")
    monkeypatch.setattr(cmds, "console", Console(width=200))
    monkeypatch.setattr(cmds, "err_console", Console(width=200, stderr=True))
    get_settings.cache_clear()
    return root


def _next_message(sub: redis.client.PubSub) -> dict[str, object] | None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        msg = sub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if msg is not None:
            return dict(json.loads(msg["data"]))
    return None


def test_reindex_publishes_the_new_build_and_a_no_op_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with redis_server() as server:
        root = _setup(tmp_path, monkeypatch, server.url)
        client = redis.Redis.from_url(server.url)
        sub = client.pubsub()
        sub.subscribe("kt-test:control")
        try:
            result = CliRunner().invoke(app, ["reindex", str(root)])
            assert result.exit_code == 0, result.output
            assert "Notified 1 running server(s)" in result.output
            msg = _next_message(sub)
            build = get_settings().index_dir / "CURRENT"
            assert msg == {"type": "reindex", "build": build.read_text().strip()}
            again = CliRunner().invoke(app, ["reindex", str(root)])
            assert again.exit_code == 0 and "Notified" not in again.output
            assert _next_message(sub) is None
        finally:
            sub.close()
            client.close()
            get_settings.cache_clear()


def test_unreachable_redis_warns_but_the_reindex_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _setup(tmp_path, monkeypatch, "redis://127.0.0.1:1/0")
    try:
        result = CliRunner().invoke(app, ["reindex", str(root)])
        assert result.exit_code == 0, result.output
        assert "replicas not notified" in result.output
        assert (get_settings().index_dir / "CURRENT").is_file()
    finally:
        get_settings.cache_clear()
