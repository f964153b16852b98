"""``klartext stats``: answered / fallback / handoff rates per day, average confidence,
feedback ratio and the top knowledge gaps (unanswered questions clustered by embedding) —
the numbers of ``GET /api/v1/stats``, from the database, as rich tables or ``--json`` — and the
suggestion picks: questions the bot did not answer after which the user clicked a suggested
entry (candidate alternative phrasings).

Gaps are embedded with the index's model when an index exists (``--embedder index``, the
default), else — or with ``--embedder hashing`` — grouped by wording (no model load).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from bot.cli._apps import app
from bot.config import Settings, get_settings

console = Console()
err_console = Console(stderr=True)

EmbedderChoice = Literal["index", "hashing"]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _index_embedder(settings: Settings) -> Any:
    """The index's embedding model, or ``None`` when there is no index."""
    from retrieval import store
    from retrieval.embedders import embedder_from_name
    from retrieval.errors import IndexMissing

    try:
        manifest = store.read_manifest(store.current_build(settings.index_dir))
    except IndexMissing:
        return None
    return embedder_from_name(manifest.model, settings.index_dir)


def _report_json(report: Any) -> dict[str, Any]:
    def day(d: Any) -> dict[str, Any]:
        out = asdict(d)
        out["day"] = d.day.isoformat()
        for rate in (
            "answered_rate",
            "fallback_rate",
            "handoff_rate",
            "feedback_up_ratio",
            "resolution_rate",
        ):
            out[rate] = getattr(d, rate)
        return out

    return {
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "totals": day(report.total),
        "days": [day(d) for d in report.days],
        "unanswered": report.unanswered,
        "knowledge_gaps": [asdict(g) for g in report.gaps],
        "suggestion_picks": [asdict(p) for p in report.picks],
        "embedder": report.embedder,
    }


def _print_tables(report: Any) -> None:
    table = Table(title="Per day (UTC)")
    columns = ("day", "conv.", "resolved", "turns", "answered", "fallback", "handoff",
               "avg conf.", "up/down")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col == "day" else "right")
    for d in [*report.days, report.total]:
        total = d is report.total
        table.add_row(
            "total" if total else d.day.isoformat(),
            str(d.conversations),
            _pct(d.resolution_rate),
            str(d.turns),
            _pct(d.answered_rate),
            _pct(d.fallback_rate),
            _pct(d.handoff_rate),
            "-" if d.avg_confidence is None else f"{d.avg_confidence:.3f}",
            f"{d.feedback_up}/{d.feedback_down}",
            end_section=d is report.days[-1],
            style="bold" if total else None,
        )
    console.print(table)
    gaps = Table(title=f"Knowledge gaps ({report.unanswered} unanswered; {report.embedder})")
    gaps.add_column("count", justify="right")
    gaps.add_column("representative question")
    gaps.add_column("examples")
    for g in report.gaps:
        gaps.add_row(str(g.count), g.representative, " | ".join(g.examples))
    console.print(gaps)
    picks = Table(title="Picked after no answer: add the question to the entry's alt_questions")
    picks.add_column("count", justify="right")
    picks.add_column("asked")
    picks.add_column("entry")
    picks.add_column("picked suggestion")
    for p in report.picks:
        picks.add_row(str(p.count), p.asked, p.entry_id, p.picked)
    console.print(picks)


@app.command("stats")
def stats(
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Days up to today.")] = 7,
    top: Annotated[
        int, typer.Option("--top", min=1, max=50, help="Knowledge gaps (and picks) to show.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    embedder: Annotated[
        str,
        typer.Option(
            "--embedder", help="index: the index's model (if any); hashing: by wording, no model."
        ),
    ] = "index",
    url: Annotated[
        str | None, typer.Option("--url", help="Database URL (default: the configured database).")
    ] = None,
) -> None:
    """Answered / fallback / handoff rates per day, confidence, feedback, knowledge gaps and
    suggestion picks."""
    from bot.stats import build_report
    from bot.store import Database
    from bot.store.migrate import is_up_to_date_async
    from bot.store.stats import last_days

    if embedder not in ("index", "hashing"):
        err_console.print("[red]error:[/red] --embedder must be index or hashing")
        raise typer.Exit(code=2)
    settings = get_settings()
    target = url or settings.effective_database_url
    emb = _index_embedder(settings) if embedder == "index" else None

    async def run() -> Any:
        if not await is_up_to_date_async(target):
            raise RuntimeError("the database is not migrated: run `klartext db upgrade` first")
        db = Database(target)
        try:
            start, end = last_days(days)
            async with db.session() as session:
                return await build_report(
                    session,
                    start,
                    end,
                    embedder=emb,
                    threshold=settings.stats_gap_threshold,
                    top=top,
                )
        finally:
            await db.dispose()

    try:
        report = asyncio.run(run())
    except Exception as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    if as_json:
        print(json.dumps(_report_json(report), ensure_ascii=False))
    else:
        _print_tables(report)
