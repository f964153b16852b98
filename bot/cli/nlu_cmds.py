"""``klartext nlu train|parse`` and ``klartext eval intents``. Heavy imports stay inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli._apps import eval_app, nlu_app

if TYPE_CHECKING:
    from retrieval.types import Embedder

EmbedderOpt = Annotated[
    str,
    typer.Option(
        "--embedder",
        help="auto = the retrieval embedder from settings; or minilm, e5, e5+minilm (local).",
    ),
]


FinetuneOpt = Annotated[
    str | None,
    typer.Option(
        "--finetune",
        help="Fine-tune the encoder on the intents: auto, on, off "
        "(default: settings.nlu_finetune).",
    ),
]


def _finetune_mode(mode: str | None) -> str:
    from bot.config import get_settings

    chosen = mode or get_settings().nlu_finetune
    if chosen not in ("auto", "on", "off"):
        raise typer.BadParameter("--finetune must be auto, on or off")
    return chosen


def _embedder(spec: str) -> tuple[Embedder, str | None]:
    from bot.config import get_settings
    from bot.nlu.embedding import default_embedder, local_embedder

    if spec == "auto":
        s = get_settings()
        return default_embedder(s.embedding_backend, s.languages), None
    return local_embedder(spec), spec


@nlu_app.command("train")
def nlu_train(
    knowledge_dir: Annotated[
        Path | None, typer.Argument(help="Knowledge folder (default: settings.knowledge_dir).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Model folder (default: settings.nlu_dir).")
    ] = None,
    embedder: EmbedderOpt = "auto",
    finetune: FinetuneOpt = None,
) -> None:
    """Train intents (intents.yaml) and product patterns (catalog.yaml) and save the NLU."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from bot.config import get_settings
    from bot.errors import KlartextError
    from bot.nlu.training import train_from_knowledge

    settings = get_settings()
    console = Console()
    mode = _finetune_mode(finetune)
    source = knowledge_dir or settings.knowledge_dir
    target = out or settings.nlu_dir
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("loading embedder", total=None)
        try:
            emb, spec = _embedder(embedder)
            report = train_from_knowledge(
                source,
                target,
                embedder=emb,
                languages=settings.languages,
                order_pattern=settings.order_number_pattern,
                embedder_spec=spec,
                progress=lambda msg: progress.update(task, description=msg),
                finetune=mode,
            )
        except KlartextError as exc:
            console.print(str(exc), style="red", markup=False)
            raise typer.Exit(1) from exc
    console.print(
        f"[green]trained[/green] {len(report.intents)} intents from {report.n_examples} examples "
        f"({report.n_oos_examples} out-of-scope), {report.products} products, "
        f"languages {', '.join(report.languages)} in {report.train_s:.1f}s → {target}\n"
        f"embedder {report.embedder}; cross-validated accuracy {report.cv_accuracy:.3f}; "
        f"out-of-scope threshold {report.oos_threshold:.3f}"
    )


@nlu_app.command("parse")
def nlu_parse(
    text: Annotated[str, typer.Argument(help="The message to parse.")],
    lang: Annotated[str | None, typer.Option(help="Language hint (used when unsure).")] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Model folder (default: settings.nlu_dir).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Parse one message: language, intent, confidence, top-3, out of scope, entities."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from bot.config import get_settings
    from bot.errors import KlartextError
    from bot.nlu.pipeline import load_nlu

    settings = get_settings()
    console = Console()
    try:
        nlu = load_nlu(
            model_dir or settings.nlu_dir,
            order_pattern=settings.order_number_pattern,
            default_language=settings.default_language,
            ner_model=settings.spacy_ner_model,
        )
    except KlartextError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from exc
    msg = nlu.parse(text, lang=lang)
    if as_json:
        typer.echo(json.dumps(asdict(msg), ensure_ascii=False))
        return
    table = Table(title="NLU", show_header=False)
    table.add_row("language", msg.lang)
    table.add_row("intent", msg.intent or "—")
    table.add_row("confidence", f"{msg.confidence:.3f}")
    table.add_row("top-3", ", ".join(f"{i} {p:.3f}" for i, p in msg.ranking) or "—")
    table.add_row("out_of_scope", "yes" if msg.out_of_scope else "no")
    console.print(table)
    ents = Table(title="entities")
    for col in ("label", "text", "value", "span"):
        ents.add_column(col)
    for e in msg.entities:
        ents.add_row(e.label, e.text, e.value, f"{e.start}–{e.end}")
    console.print(ents if msg.entities else "no entities")


@eval_app.command("intents")
def eval_intents(
    train: Annotated[Path, typer.Option(help="CSV with columns text,intent (or category).")],
    test: Annotated[Path, typer.Option(help="CSV; intent `oos` marks out-of-scope rows.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON summary on the last line.")] = False,
    embedder: EmbedderOpt = "auto",
    lang: Annotated[str | None, typer.Option(help="Language of all rows (skip detection).")] = None,
    finetune: FinetuneOpt = None,
) -> None:
    """Train exactly as the bot does on TRAIN, then report per-intent P/R/F1 on TEST."""
    from rich.console import Console
    from rich.table import Table

    from bot.errors import KlartextError
    from bot.nlu.evaluate import evaluate_intents, read_intent_csv
    from bot.nlu.finetune import finetune_config

    console = Console(stderr=as_json)
    mode = _finetune_mode(finetune)
    try:
        train_rows, test_rows = read_intent_csv(train), read_intent_csv(test)
        emb, _spec = _embedder(embedder)
        ft = finetune_config(mode, emb.name)
        result = evaluate_intents(train_rows, test_rows, emb, lang=lang, finetune=ft)
    except KlartextError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from exc
    table = Table(title="per intent")
    for col in ("intent", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "intent" else "right")
    for name, s in sorted(result.per_intent.items()):
        table.add_row(name, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    console.print(table)
    conf = Table(title="most confused (gold → predicted)")
    for col in ("gold", "predicted", "count"):
        conf.add_column(col)
    for gold, pred, count in result.confusions:
        conf.add_row(gold, pred, str(count))
    console.print(conf)
    summary = result.summary()
    console.print(" ".join(f"{k}={v}" for k, v in summary.items()))
    if as_json:
        typer.echo(json.dumps(summary))
