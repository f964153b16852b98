"""``klartext apikey create|list|revoke``: API keys of the CRM REST API (``/api/v1``).

The plaintext key is printed once by ``create``; only its SHA-256 hash is stored. The database
must be migrated (``klartext db upgrade``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from bot.cli._apps import apikey_app
from bot.config import get_settings

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

UrlOption = Annotated[
    str | None, typer.Option("--url", help="Database URL (default: the configured database).")
]


def _with_session(url: str | None, fn: Callable[..., Awaitable[T]], *, write: bool) -> T:
    from bot.store import Database
    from bot.store.migrate import is_up_to_date_async

    target = url or get_settings().effective_database_url

    async def run() -> T:
        if not await is_up_to_date_async(target):
            raise RuntimeError("the database is not migrated: run `klartext db upgrade` first")
        db = Database(target)
        try:
            ctx = db.writing() if write else db.session()
            async with ctx as session:
                return await fn(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except Exception as exc:  # not migrated, bad name/scope, unknown id, database errors
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc


@apikey_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="A label, e.g. the CRM's name.")],
    scopes: Annotated[
        str, typer.Option("--scopes", help="Comma-separated: read, agent, admin.")
    ] = "read",
    url: UrlOption = None,
) -> None:
    """Create a key and print it once (store it now: it cannot be shown again)."""
    from bot.store.apikeys import create_api_key

    created = _with_session(url, lambda s: create_api_key(s, name=name, scopes=scopes), write=True)
    info = created.info
    console.print(
        f"created key [bold]{info.id}[/bold] ({info.name}, scopes {','.join(sorted(info.scopes))})",
        highlight=False,
    )
    console.print("The key is shown only now:", highlight=False)
    print(created.plaintext)


@apikey_app.command("list")
def list_keys(
    active_only: Annotated[bool, typer.Option("--active-only", help="Hide revoked keys.")] = False,
    url: UrlOption = None,
) -> None:
    """List keys (id, name, prefix, scopes, created, revoked) — never the keys themselves."""
    from bot.store.apikeys import list_api_keys

    keys = _with_session(
        url, lambda s: list_api_keys(s, include_revoked=not active_only), write=False
    )
    table = Table("id", "name", "prefix", "scopes", "created", "revoked")
    for k in keys:
        table.add_row(
            k.id,
            k.name,
            k.prefix + "…",
            ",".join(sorted(k.scopes)),
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "",
        )
    console.print(table)


@apikey_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `klartext apikey list`).")],
    url: UrlOption = None,
) -> None:
    """Revoke a key: requests with it are refused with 401 from now on."""
    from bot.store.apikeys import revoke_api_key

    info = _with_session(url, lambda s: revoke_api_key(s, key_id), write=True)
    console.print(f"revoked {info.id} ({info.name})", highlight=False)
