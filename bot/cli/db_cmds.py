"""``klartext db purge``: erase the conversations last active before a cutoff (data retention,
:mod:`bot.store.retention`) — by hand, or from cron where the server's sweep is not wanted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.cli._apps import db_app
from bot.config import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

console = Console()
err_console = Console(stderr=True)

_BATCH = 200


@db_app.command("purge")
def db_purge(
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            help="Days without activity (default: KLARTEXT_CONVERSATION_RETENTION_DAYS).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be erased, erase nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    url: Annotated[
        str | None, typer.Option(help="Database URL (default: the configured database).")
    ] = None,
) -> None:
    """Erase conversations with no activity for N days, with their messages and feedback."""
    from bot.store.retention import retention_cutoff

    settings = get_settings()
    days = older_than if older_than is not None else settings.conversation_retention_days
    if days is None or days <= 0:
        err_console.print(
            "[red]error:[/red] give --older-than DAYS (> 0) or set "
            "KLARTEXT_CONVERSATION_RETENTION_DAYS"
        )
        raise typer.Exit(code=2)
    cutoff = retention_cutoff(days)
    target = url or settings.effective_database_url
    try:
        n = asyncio.run(_purge(target, cutoff, dry_run=dry_run, quiet=as_json))
    except Exception as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    if as_json:
        print(json.dumps({"erased": 0 if dry_run else n, "expired": n, "cutoff": cutoff.isoformat(),
                          "dry_run": dry_run}))  # fmt: skip
        return
    when = cutoff.strftime("%Y-%m-%d %H:%M UTC")
    verb = "would be erased" if dry_run else "erased"
    console.print(f"{n} conversation(s) last active before {when} {verb}")


def _eraser(ids: list[str], cutoff: datetime) -> Callable[[Session], int]:
    from bot.store.retention import erase_if_expired_sync

    def erase(s: Session) -> int:
        return sum(erase_if_expired_sync(s, c, cutoff) for c in ids)

    return erase


async def _purge(url: str, cutoff: datetime, *, dry_run: bool, quiet: bool) -> int:
    from bot.store import Database
    from bot.store.migrate import is_up_to_date_async
    from bot.store.retention import count_expired, expired_conversations

    if not await is_up_to_date_async(url):
        raise RuntimeError("the database is not migrated: run `klartext db upgrade` first")
    db = Database(url)
    try:
        async with db.session() as session:
            total = await count_expired(session, cutoff)
        if dry_run or total == 0:
            return total
        erased = 0
        columns = (TextColumn("erasing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
            task = bar.add_task("erase", total=total)
            while True:
                async with db.session() as session:
                    ids = await expired_conversations(session, cutoff, limit=_BATCH)
                done = await db.write(_eraser(ids, cutoff))
                erased += done
                bar.advance(task, done)
                if len(ids) < _BATCH or done == 0:
                    return erased
    finally:
        await db.dispose()
