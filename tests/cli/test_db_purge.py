"""`klartext db purge` against a real (migrated) SQLite database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from bot.cli import app
from bot.config import get_settings
from bot.store import Database, NewEvent, repo
from bot.store.migrate import upgrade
from bot.store.models import Conversation, EventRow


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()  # the commands read their defaults from the environment
    yield
    get_settings.cache_clear()


async def _seed(url: str, idle_days: list[float]) -> None:
    db = Database(url)
    try:
        for days in idle_days:
            async with db.writing() as s:
                conv = await repo.create_conversation(s, lang="en")
                await repo.append_events(
                    s, conv.id, [NewEvent("user_message", {"text": "hi"}, "t")]
                )
                last = datetime.now(UTC) - timedelta(days=days)
                await s.execute(
                    update(Conversation).where(Conversation.id == conv.id).values(updated_at=last)
                )
    finally:
        await db.dispose()


async def _counts(url: str) -> tuple[int, int]:
    db = Database(url)
    try:
        async with db.session() as s:
            convs = await s.scalar(select(func.count()).select_from(Conversation))
            events = await s.scalar(select(func.count()).select_from(EventRow))
        return int(convs or 0), int(events or 0)
    finally:
        await db.dispose()


def test_purge_dry_run_then_erase(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    asyncio.run(_seed(url, [400, 91, 89, 1]))
    env = {"KLARTEXT_DATA_DIR": str(tmp_path)}
    runner = CliRunner()

    out = runner.invoke(
        app, ["db", "purge", "--older-than", "90", "--dry-run", "--url", url], env=env
    )
    assert out.exit_code == 0, out.output
    assert "2 conversation(s)" in out.output and "would be erased" in out.output
    assert asyncio.run(_counts(url)) == (4, 4)

    out = runner.invoke(app, ["db", "purge", "--older-than", "90", "--json", "--url", url], env=env)
    assert out.exit_code == 0, out.output
    result = json.loads(out.output.strip().splitlines()[-1])
    assert (result["erased"], result["expired"], result["dry_run"]) == (2, 2, False)
    assert asyncio.run(_counts(url)) == (2, 2)

    # the setting is the default; nothing left to erase at 30 days but the 89-day one
    env["KLARTEXT_CONVERSATION_RETENTION_DAYS"] = "30"
    get_settings.cache_clear()
    out = runner.invoke(app, ["db", "purge", "--url", url], env=env)
    assert out.exit_code == 0, out.output
    assert "1 conversation(s)" in out.output and "erased" in out.output
    assert asyncio.run(_counts(url)) == (1, 1)


def test_purge_needs_a_retention(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    out = CliRunner().invoke(
        app, ["db", "purge", "--url", url], env={"KLARTEXT_DATA_DIR": str(tmp_path)}
    )
    assert out.exit_code == 2
    assert "--older-than" in out.output


def test_purge_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    out = CliRunner().invoke(
        app, ["db", "purge", "--older-than", "30", "--url", url],
        env={"KLARTEXT_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert out.exit_code == 1
    assert "klartext db upgrade" in out.output
