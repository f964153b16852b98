"""`klartext apikey create|list|revoke` against a real (migrated) SQLite database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.store import Database
from bot.store.apikeys import verify_api_key
from bot.store.migrate import upgrade


async def _verify(url: str, key: str) -> str | None:
    db = Database(url)
    try:
        async with db.session() as s:
            info = await verify_api_key(s, key)
    finally:
        await db.dispose()
    return info.id if info else None


def test_create_list_revoke(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    runner = CliRunner()
    made = runner.invoke(
        app, ["apikey", "create", "--name", "crm", "--scopes", "read,agent,admin", "--url", url]
    )
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    key_id = asyncio.run(_verify(url, key))
    assert key.startswith("kt_") and key_id is not None
    listed = runner.invoke(app, ["apikey", "list", "--url", url], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and key_id in listed.output and key[:11] in listed.output
    assert key not in listed.output
    revoked = runner.invoke(app, ["apikey", "revoke", key_id, "--url", url])
    assert revoked.exit_code == 0, revoked.output
    assert asyncio.run(_verify(url, key)) is None
    active = runner.invoke(
        app, ["apikey", "list", "--active-only", "--url", url], env={"COLUMNS": "200"}
    )
    assert key_id not in active.output


def test_errors_exit_nonzero(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    runner = CliRunner()
    unmigrated = runner.invoke(app, ["apikey", "list", "--url", url])
    assert unmigrated.exit_code == 1 and "klartext db upgrade" in unmigrated.output
    upgrade(url)
    bad_scope = runner.invoke(
        app, ["apikey", "create", "--name", "x", "--scopes", "root", "--url", url]
    )
    assert bad_scope.exit_code == 1 and "unknown scope" in bad_scope.output
    unknown = runner.invoke(app, ["apikey", "revoke", "nope", "--url", url])
    assert unknown.exit_code == 1 and "unknown api key" in unknown.output
