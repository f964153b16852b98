"""``klartext eval retrieval``: hit@1/hit@5/MRR and latency of the bot's retrieval path on a
labelled query set (see :mod:`retrieval.evaluate`). Heavy imports happen inside the command."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from bot.cli._apps import eval_app
from bot.config import get_settings
from knowledge.errors import KnowledgeError
from retrieval.errors import RetrievalError

if TYPE_CHECKING:
    from knowledge.schema import KnowledgeBase
    from retrieval.evaluate import RetrievalEval
    from retrieval.types import Embedder

console = Console()
err_console = Console(stderr=True)
_FUSIONS = ("rrf", "weighted", "dense", "lexical")


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


@eval_app.command("retrieval")
def retrieval(
    kb: Annotated[Path, typer.Option("--kb", help="Knowledge folder or one FAQ file.")],
    queries: Annotated[
        Path,
        typer.Option(
            "--queries",
            help="CSV with columns query,expected_id ('|' separates several ids; "
            "empty = should not be answered).",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (last line) instead.")
    ] = False,
    k: Annotated[int, typer.Option("-k", "--k", help="Hits per query (MRR@k).", min=1)] = 5,
    fusion: Annotated[
        str | None,
        typer.Option(
            "--fusion", help="rrf | weighted | dense | lexical (default: what the bot uses)."
        ),
    ] = None,
    weight: Annotated[
        float | None,
        typer.Option("--weight", min=0.0, max=1.0, help="Dense weight for --fusion weighted."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="Embedding backend (default: the configured one)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model for the sentence-transformers backend.")
    ] = None,
    misses: Annotated[
        int, typer.Option("--misses", help="Also list up to N queries whose top hit is wrong.")
    ] = 0,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Leave out invalid knowledge and go on.")
    ] = False,
) -> None:
    """Evaluate retrieval on a labelled query set, using a temporary index."""
    from retrieval.embedders import BACKENDS, make_embedder
    from retrieval.evaluate import evaluate_retrieval

    settings = get_settings()
    if fusion is not None and fusion not in _FUSIONS:
        raise _fail(f"--fusion must be one of {', '.join(_FUSIONS)}")
    chosen = backend or settings.embedding_backend
    if chosen not in BACKENDS:
        raise _fail(f"--backend must be one of {', '.join(BACKENDS)}")

    def factory(loaded: KnowledgeBase) -> Embedder:
        return make_embedder(chosen, model or settings.embedding_model, loaded.languages)

    try:
        with nullcontext() if as_json else console.status("Indexing and evaluating…"):
            result = evaluate_retrieval(
                kb,
                queries,
                embedder=factory,
                fusion=fusion,  # type: ignore[arg-type]
                weight=weight,
                k=k,
                answer_threshold=settings.answer_threshold,
                skip_invalid=skip_invalid,
            )
    except KnowledgeError as exc:
        for issue in exc.issues:
            err_console.print(str(issue), highlight=False, markup=False)
        raise _fail(exc.message) from None
    except RetrievalError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        print(json.dumps(result.summary()))
        return
    _print_table(result, kb, k)
    if misses:
        _print_misses(result, misses)


def _print_table(result: RetrievalEval, kb: Path, k: int) -> None:
    table = Table(title=f"Retrieval: {kb} ({result.model}, fusion {result.fusion})")
    for col in ("hit@1", "hit@5", f"MRR@{k}", "n", "p50 ms", "p95 ms"):
        table.add_column(col, justify="right")
    s = result.summary()
    table.add_row(
        f"{s['hit@1']:.3f}",
        f"{s['hit@5']:.3f}",
        f"{s['mrr']:.3f}",
        str(s["n"]),
        f"{s['p50_ms']:.1f}",
        f"{s['p95_ms']:.1f}",
    )
    console.print(table)
    if result.refusal_n:
        console.print(
            f"should-not-answer queries: {result.refusal_correct}/{result.refusal_n} "
            "correctly below the answer threshold"
        )


def _print_misses(result: RetrievalEval, limit: int) -> None:
    table = Table(title="Misses (top hit wrong)")
    for col in ("query", "expected", "top hit", "score", "rank"):
        table.add_column(col)
    wrong = [r for r in result.rows if r.answerable and r.rank != 1][:limit]
    for r in wrong:
        rank = str(r.rank) if r.rank else "-"
        table.add_row(r.query, "|".join(r.expected), r.top_id or "-", f"{r.top_score:.2f}", rank)
    console.print(table)
