"""``klartext ask`` (one turn, printed as events) and ``klartext eval answers``."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from bot.cli._apps import app, eval_app
from bot.config import Settings, get_settings
from knowledge.errors import KlartextError

if TYPE_CHECKING:
    from bot.events import Event
    from bot.runtime import Runtime

console = Console()
err_console = Console(stderr=True)


def _runtime(settings: Settings, *, prepare: bool, extractive: bool) -> Runtime:
    from bot.runtime import build_runtime

    if extractive:
        settings = settings.model_copy(update={"llm_provider": "none"})
    return build_runtime(settings, prepare=prepare)


def _fail(exc: Exception) -> typer.Exit:
    code = getattr(exc, "code", "KT000")
    err_console.print(f"[red]error {code}:[/red] {exc}", highlight=False)
    return typer.Exit(code=2)


def _print_event(event: Event) -> None:
    from bot.events import ActionEvent, Done, Error, Handoff, Sources, Suggestions, Token

    if isinstance(event, Token):
        console.print(event.text, end="", highlight=False, markup=False)
        return
    console.print()
    if isinstance(event, Sources):
        for s in event.items:
            url = f" {s.url}" if s.url else ""
            console.print(f"[dim]source[/dim] \\[{s.id}] {s.title}{url} ({s.score:.2f})")
    elif isinstance(event, Suggestions):
        console.print("[dim]suggestions:[/dim] " + " | ".join(event.items))
    elif isinstance(event, ActionEvent):
        console.print(f"[dim]action[/dim] {event.name}: {event.status}")
    elif isinstance(event, Handoff):
        console.print(f"[yellow]handoff[/yellow] ({event.reason})")
    elif isinstance(event, Error):
        console.print(f"[red]error {event.code}[/red] {event.message}")
    elif isinstance(event, Done):
        console.print(
            f"[dim]done mode={event.mode} answered={event.answered} "
            f"confidence={event.confidence:.2f} lang={event.lang} "
            f"total={event.timing_ms.get('total', 0):.0f} ms[/dim]"
        )


async def _ask(runtime: Runtime, question: str, lang: str | None, as_json: bool) -> None:
    from bot.conversation import ConversationContext

    ctx = ConversationContext(conversation_id=f"cli-{uuid.uuid4().hex[:8]}", lang=lang)
    async for event in runtime.engine.turn(question, ctx, turn_id=uuid.uuid4().hex[:12]):
        if as_json:
            print(json.dumps(event.model_dump(mode="json"), ensure_ascii=False), flush=True)
        else:
            _print_event(event)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The user message.")],
    lang: Annotated[str | None, typer.Option("--lang", help="Language hint (en, de).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
    extractive: Annotated[
        bool, typer.Option("--extractive", help="Ignore the configured LLM (no-LLM answers).")
    ] = False,
    prepare: Annotated[
        bool, typer.Option("--prepare", help="Reindex / retrain first if the knowledge changed.")
    ] = False,
) -> None:
    """Answer one message and print the turn's events (tokens, sources, done …)."""
    try:
        runtime = _runtime(get_settings(), prepare=prepare, extractive=extractive)
        asyncio.run(_ask(runtime, question, lang, as_json))
    except KlartextError as exc:
        raise _fail(exc) from None


@eval_app.command("answers")
def eval_answers(
    cases_file: Annotated[Path, typer.Argument(help="YAML file with `cases:`.", exists=True)],
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON lines per case; the summary object last.")
    ] = False,
    use_llm: Annotated[
        bool, typer.Option("--use-llm", help="Use the configured LLM (default: extractive).")
    ] = False,
    prepare: Annotated[
        bool, typer.Option("--prepare", help="Reindex / retrain first if the knowledge changed.")
    ] = False,
) -> None:
    """Run answer-quality cases through the engine: correct-source, correct-refusal and
    false-answer rates."""
    from bot.evaluate import evaluate_answers, load_cases

    try:
        cases = load_cases(cases_file)
        runtime = _runtime(get_settings(), prepare=prepare, extractive=not use_llm)
        report = asyncio.run(evaluate_answers(runtime.engine, cases))
    except KlartextError as exc:
        raise _fail(exc) from None
    if as_json:
        for r in report.results:
            print(json.dumps(r.as_dict(), ensure_ascii=False))
        kinds = report.by_kind()
        print(json.dumps({**report.summary, **({"kinds": kinds} if kinds else {})}))
        return
    table = Table("ok", "expect", "question", "mode", "sources", "conf")
    for r in report.results:
        mark = (
            "[green]✓[/green]"
            if r.correct
            else ("[red]✗ FALSE[/red]" if r.false_answer else "[yellow]✗[/yellow]")
        )
        exp = ",".join(r.expected_sources) if r.expect == "answer" else r.expect
        table.add_row(mark, exp, r.q[:60], r.mode, ",".join(r.sources[:2]), f"{r.confidence:.2f}")
    console.print(table)
    s = report.summary
    console.print(
        f"n={s['n']}  correct_source={s['correct_source']:.1%}  "
        f"correct_refusal={s['correct_refusal']:.1%}  false_answer={s['false_answer']:.1%}  "
        + "  ".join(f"{k}={v:.1%}" for k, v in report.extra.items())
    )
    for kind, k in report.by_kind().items():
        console.print(
            f"  {kind}: n={k['n']}  correct_source={k['correct_source']:.1%}  "
            f"correct_refusal={k['correct_refusal']:.1%}  false_answer={k['false_answer']:.1%}"
        )
