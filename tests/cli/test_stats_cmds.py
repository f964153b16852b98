"""`klartext stats` against a real (migrated) SQLite database: rich tables and --json."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.store import Database, NewEvent, repo
from bot.store.migrate import upgrade


async def _seed(url: str) -> None:
    db = Database(url)
    try:
        async with db.writing() as s:
            conv = await repo.create_conversation(s, lang="en")
            events: list[NewEvent] = []
            for i, (text, mode) in enumerate(
                [("Where is my parcel?", "fallback"), ("where is my parcel?", "fallback"),
                 ("shipping time", "extractive")]
            ):  # fmt: skip
                tid = f"t{i}"
                answered = mode != "fallback"
                events += [
                    NewEvent("user_message", {"text": text, "message_id": tid}, tid),
                    NewEvent("done", {"mode": mode, "answered": answered, "confidence": 0.5}, tid),
                ]
            await repo.append_events(s, conv.id, events)
    finally:
        await db.dispose()


def _seeded(tmp_path: Path, seed: Callable[[str], Awaitable[None]]) -> tuple[str, dict[str, str]]:
    """A migrated SQLite database filled by ``seed``: its URL and the CLI's environment."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    asyncio.run(seed(url))
    return url, {"COLUMNS": "200", "KLARTEXT_DATA_DIR": str(tmp_path)}


def test_stats_tables_and_json(tmp_path: Path) -> None:
    url, env = _seeded(tmp_path, _seed)
    runner = CliRunner()
    # --embedder hashing: another test may have left an index in a cached settings' data dir
    out = runner.invoke(
        app, ["stats", "--days", "2", "--url", url, "--embedder", "hashing"], env=env
    )
    assert out.exit_code == 0, out.output
    today = datetime.now(UTC).date().isoformat()
    assert "Per day (UTC)" in out.output and today in out.output
    assert "66.7%" in out.output  # 2 of 3 turns fell back
    # equal counts: the newest wording represents the question
    assert "where is my parcel?" in out.output and "hashing:v1" in out.output

    res = runner.invoke(app, ["stats", "--days", "1", "--json", "--url", url], env=env)
    assert res.exit_code == 0, res.output
    body = json.loads(res.output.strip().splitlines()[-1])
    assert [d["day"] for d in body["days"]] == [today]
    assert (body["totals"]["turns"], body["totals"]["fallback"]) == (3, 2)
    assert body["totals"]["fallback_rate"] == round(2 / 3, 4)
    assert body["knowledge_gaps"] == [
        {"count": 2, "representative": "where is my parcel?", "examples": ["where is my parcel?"]}
    ]


def test_stats_errors(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    runner = CliRunner()
    env = {"KLARTEXT_DATA_DIR": str(tmp_path)}
    res = runner.invoke(app, ["stats", "--url", url], env=env)
    assert res.exit_code == 1 and "not migrated" in res.output
    res = runner.invoke(app, ["stats", "--embedder", "magic", "--url", url], env=env)
    assert res.exit_code == 2


async def _seed_pick(url: str) -> None:
    db = Database(url)
    try:
        async with db.writing() as s:
            conv = await repo.create_conversation(s, lang="de")
            offer = {"items": ["Wie storniere ich meine Bestellung?", "Mensch"], "ids": ["de-b-4"]}
            await repo.append_events(
                s,
                conv.id,
                [
                    NewEvent("user_message", {"text": "Bestellung stornieren"}, "t1"),
                    NewEvent("suggestions", offer, "t1"),
                    NewEvent("done", {"mode": "fallback", "answered": False}, "t1"),
                    NewEvent("user_message", {"text": "Wie storniere ich meine Bestellung?"}, "t2"),
                    NewEvent("done", {"mode": "extractive", "answered": True}, "t2"),
                ],
            )
    finally:
        await db.dispose()


def test_stats_shows_suggestion_picks(tmp_path: Path) -> None:
    url, env = _seeded(tmp_path, _seed_pick)
    runner = CliRunner()
    args = ["stats", "--days", "1", "--url", url, "--embedder", "hashing"]
    out = runner.invoke(app, args, env=env)
    assert out.exit_code == 0, out.output
    assert "Picked after no answer" in out.output
    row = next(line for line in out.output.splitlines() if "de-b-4" in line)
    assert "Bestellung stornieren" in row and "Wie storniere ich meine Bestellung?" in row
    res = runner.invoke(app, [*args, "--json"], env=env)
    body = json.loads(res.output.strip().splitlines()[-1])
    assert body["suggestion_picks"] == [
        {
            "count": 1,
            "asked": "Bestellung stornieren",
            "entry_id": "de-b-4",
            "picked": "Wie storniere ich meine Bestellung?",
        }
    ]
