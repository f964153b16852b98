"""``klartext serve`` (uvicorn with the import string ``web.app:create_app`` — ``bot`` never
imports ``web``) and ``klartext db upgrade`` / ``klartext db current``.

``serve`` migrates the embedded default SQLite database automatically (so ``make run`` just
works); an explicitly configured ``KLARTEXT_DATABASE_URL`` is never migrated behind the
operator's back — run ``klartext db upgrade`` (the server refuses an un-migrated database).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from bot.cli._apps import app, db_app
from bot.config import get_settings

console = Console()
err_console = Console(stderr=True)

WS_MAX_FRAME_BYTES = 1 << 20  # frames above our own limit get `too_large`; above this, close 1009


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: settings.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.port).")] = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="Restart on code changes (dev).")
    ] = False,
    prepare: Annotated[
        bool,
        typer.Option(
            "--prepare/--no-prepare",
            help="Reindex / retrain the NLU on start if the knowledge folder changed.",
        ),
    ] = True,
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate/--no-migrate",
            help="Upgrade the default SQLite database before starting (never an explicit URL).",
        ),
    ] = True,
) -> None:
    """Run the web server: websocket chat at /ws/chat, widget at /widget.js, demo at /."""
    import os

    import uvicorn

    from bot.store.migrate import is_up_to_date, upgrade

    if prepare:  # read by create_app() through Settings (also in --reload worker processes)
        os.environ["KLARTEXT_PREPARE_ON_START"] = "1"
        get_settings.cache_clear()
    settings = get_settings()
    url = settings.effective_database_url
    try:
        if migrate and settings.database_url is None:
            upgrade(url)
        elif not is_up_to_date(url):
            err_console.print(
                f"[red]error:[/red] database {_redacted(url)} is not migrated: "
                "run `klartext db upgrade` first",
                highlight=False,
            )
            raise typer.Exit(code=1)
    except typer.Exit:
        raise
    except Exception as exc:
        err_console.print(f"[red]error:[/red] database {_redacted(url)}: {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    bind_host = host or settings.host
    bind_port = port or settings.port
    shown = "127.0.0.1" if bind_host in ("0.0.0.0", "::") else bind_host
    console.print(f"Klartext: [bold]http://{shown}:{bind_port}[/bold]  (websocket /ws/chat)")
    uvicorn.run(
        "web.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        reload=reload,
        ws_per_message_deflate=False,
        ws_max_size=WS_MAX_FRAME_BYTES,
        ws_ping_interval=settings.heartbeat_s,
        ws_ping_timeout=settings.heartbeat_s,
        timeout_graceful_shutdown=15,
        forwarded_allow_ips=settings.trusted_proxies,  # X-Forwarded-For only from these
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@db_app.command("upgrade")
def db_upgrade(
    url: Annotated[
        str | None, typer.Option(help="Database URL (default: the configured database).")
    ] = None,
) -> None:
    """Apply all pending migrations."""
    from bot.store.migrate import current_revision, head_revision, upgrade

    target = url or get_settings().effective_database_url
    try:
        before = current_revision(target)
        upgrade(target)
    except Exception as exc:
        err_console.print(f"[red]error:[/red] {_redacted(target)}: {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    head = head_revision()
    if before == head:
        console.print(f"{_redacted(target)}: already at {head}")
    else:
        console.print(f"{_redacted(target)}: {before or 'empty'} → {head}")


@db_app.command("current")
def db_current(
    url: Annotated[
        str | None, typer.Option(help="Database URL (default: the configured database).")
    ] = None,
) -> None:
    """Show the database's migration revision and whether it is up to date."""
    from bot.store.migrate import current_revision, head_revision

    target = url or get_settings().effective_database_url
    current = current_revision(target)
    state = "up to date" if current == head_revision() else f"behind (head {head_revision()})"
    console.print(f"{_redacted(target)}: {current or 'empty'} — {state}")
