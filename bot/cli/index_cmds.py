"""Admin commands for the index: ``klartext reindex``, ``klartext search``, ``klartext kb stats``.

Heavy imports (FAISS, the embedding model) happen only where needed: ``kb stats`` reads the
manifest and entries JSON; a reindex with nothing changed never creates the embedder.
Tests replace :func:`make_embedder` (module attribute) with a fake.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast, get_args

import typer
from rich.console import Console
from rich.table import Table

from bot.cli._apps import app, kb_app
from bot.config import Settings, get_settings
from knowledge.errors import KnowledgeError
from retrieval.errors import AdaptError, RetrievalError

if TYPE_CHECKING:
    from knowledge.schema import Entry, KnowledgeBase
    from retrieval.reindex import ReindexReport
    from retrieval.types import Embedder

console = Console()
err_console = Console(stderr=True)


def make_embedder(settings: Settings, languages: Iterable[str]) -> Embedder:
    """The configured embedder for a knowledge base in ``languages`` (replaced in tests)."""
    from retrieval.embedders import make_embedder as _make

    return _make(settings.embedding_backend, settings.embedding_model, languages)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


@app.command()
def reindex(
    knowledge_dir: Annotated[
        Path | None,
        typer.Argument(help="Knowledge folder (default: the configured knowledge_dir)."),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Re-embed every entry.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Leave out invalid entries/files (listed) and go on."),
    ] = False,
    show_duplicates: Annotated[
        int,
        typer.Option(
            "--show-duplicates", min=0, help="Duplicate pairs to list (most similar first)."
        ),
    ] = 20,
    adapt: Annotated[
        bool | None,
        typer.Option(
            "--adapt/--no-adapt",
            help="Adapt e5 to this knowledge base's own phrasings before indexing (trains "
            "~100 s on the demo; reused while the FAQ is unchanged). Default: the "
            "adapt_embeddings setting.",
        ),
    ] = None,
) -> None:
    """Build or update the search index from a knowledge folder (incremental by default)."""
    from knowledge.loaders import load_knowledge
    from retrieval.reindex import reindex as run_reindex

    settings = get_settings()
    root = knowledge_dir or settings.knowledge_dir
    try:
        kb = load_knowledge(root, skip_invalid=skip_invalid)
    except KnowledgeError as exc:
        for issue in exc.issues:
            err_console.print(str(issue), highlight=False, markup=False)
        raise _fail(f"{exc.message} — fix the files or rerun with --skip-invalid") from None
    for issue in kb.issues:
        err_console.print(f"[yellow]skipped:[/yellow] {issue}", highlight=False)
    languages = sorted(kb.languages)
    embedder_cache: list[Embedder] = []

    def factory() -> Embedder:  # embedders load their model on the first embed() call
        if not embedder_cache:
            embedder_cache.append(make_embedder(settings, languages))
        return embedder_cache[0]

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    index_source: Callable[[], Embedder] | Embedder = factory
    model_name = _configured_name(settings, languages)
    if settings.adapt_embeddings if adapt is None else adapt:
        adapted = _adapted(settings, kb, model_name, dry_run, strict=adapt is not None)
        if adapted is not None:
            index_source, model_name = adapted, adapted.name
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("Embedding", total=None, visible=False)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, visible=total > 0)

        try:
            report = run_reindex(
                kb,
                settings.index_dir,
                index_source,
                full=full,
                dry_run=dry_run,
                hnsw_threshold=settings.hnsw_threshold,
                duplicate_threshold=settings.duplicate_threshold,
                progress=progress,
                model_name=model_name,
            )
        except RetrievalError as exc:
            raise _fail(str(exc)) from None
    _print_report(report, root, show_duplicates)
    if not dry_run:
        retrained = _train_nlu_if_changed(settings, root, factory)
        if report.written or retrained:
            _notify_replicas(settings, report.build.name if report.build else None)


def _adapted(
    settings: Settings, kb: KnowledgeBase, base_name: str, dry_run: bool, *, strict: bool
) -> Embedder | None:
    """The e5 adapted to ``kb`` (trained with a progress bar when its adapter is new).
    When ``kb`` or the embedder cannot be adapted: an error with ``strict`` (``--adapt``),
    else (the ``adapt_embeddings`` setting) a warning and ``None`` (index with plain e5)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from retrieval.adapt import adapted_embedder_for, adapter_key, check_adaptable
    from retrieval.adapted import AdaptedE5Embedder, adapter_path

    if dry_run:  # name the model a real run would use; train nothing
        try:
            check_adaptable(kb, base_name)
        except AdaptError as exc:
            if strict:
                raise _fail(exc.message) from None
            return None
        return AdaptedE5Embedder(adapter_path(settings.index_dir, adapter_key(kb)))
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("Adapting e5 to the knowledge base", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            embedder, report = adapted_embedder_for(
                kb, settings.index_dir, base_name, progress=progress
            )
        except AdaptError as exc:
            if strict:
                raise _fail(exc.message) from None
            err_console.print(f"[yellow]not adapting:[/yellow] {exc.message}", highlight=False)
            return None
        except RetrievalError as exc:
            raise _fail(str(exc)) from None
    if report.trained:
        console.print(
            f"Adapted e5 to the knowledge base: {report.groups} phrasing groups, "
            f"{report.twins} cross-language twins, {report.steps} steps, {report.seconds:.0f} s "
            f"({report.model})."
        )
    else:
        console.print(f"Adapter up to date ({report.model}).")
    return embedder


def _notify_replicas(settings: Settings, build: str | None) -> None:
    """With Redis configured, tell running replicas to reload now (they would otherwise
    notice within their poll interval). The message is the one ``web.redis_hub`` listens for."""
    if not settings.redis_url:
        return
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    message = json.dumps({"type": "reindex", "build": build})
    try:
        receivers = client.publish(f"{settings.redis_prefix}control", message)
    except redis.RedisError as exc:
        err_console.print(f"[yellow]replicas not notified[/yellow] (Redis: {exc}); "
                          "they pick the new index up within their poll interval")  # fmt: skip
    else:
        console.print(f"Notified {receivers} running server(s) over Redis.")
    finally:
        client.close()


def _train_nlu_if_changed(settings: Settings, root: Path, factory: Callable[[], Embedder]) -> bool:
    """Retrain the NLU when the folder's intents/catalog (or the embedder) changed."""
    from bot.nlu.training import train_if_changed_for

    if not (root / "intents.yaml").is_file():
        return False
    with console.status("Training the NLU (intents changed)…"):
        trained = train_if_changed_for(settings, root, factory)
    console.print("NLU retrained." if trained else "NLU up to date.")
    return trained


def _configured_name(settings: Settings, languages: Iterable[str]) -> str:
    """The configured embedder's name (embedders load their model lazily: this is cheap)."""
    return make_embedder(settings, languages).name


def _print_report(report: ReindexReport, root: Path, show_duplicates: int) -> None:
    title = "Reindex (dry run)" if report.dry_run else "Reindex"
    table = Table(title=f"{title}: {root}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in (
        ("added", report.added),
        ("changed", report.changed),
        ("removed", report.removed),
        ("unchanged", report.unchanged),
        ("entries", report.entries),
        ("vectors embedded", report.embedded),
        ("duplicates", len(report.duplicates)),
        ("time", f"{report.seconds:.2f} s"),
    ):
        table.add_row(label, str(value))
    table.add_row("model", report.model or "-")
    state = str(report.build) if report.build else ("nothing written" if report.dry_run else "")
    table.add_row("build", state or "up to date, nothing written")
    console.print(table)
    if report.duplicates and show_duplicates:
        shown = report.duplicates[:show_duplicates]
        more = len(report.duplicates) - len(shown)
        dups = Table(
            title="Duplicate questions",
            caption=f"… and {more} more (--show-duplicates N)" if more else None,
        )
        for col in ("similarity", "entry", "other entry", "text"):
            dups.add_column(col)
        for d in shown:
            dups.add_row(
                f"{d.similarity:.2f}",
                f"{d.a_id}\n{d.a_location}",
                f"{d.b_id}\n{d.b_location}",
                d.text,
            )
        console.print(dups)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What a customer would ask.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of hits.", min=1)] = 5,
    lang: Annotated[str | None, typer.Option("--lang", help="Prefer this language.")] = None,
    fusion: Annotated[
        str,
        typer.Option("--fusion", help="weighted (default) | rrf | dense | lexical (ordering)."),
    ] = "weighted",
) -> None:
    """Search the index (hybrid dense + BM25) and show ranked hits with scores."""
    from retrieval import store
    from retrieval.search import Fusion, load_retriever

    settings = get_settings()
    try:
        build = store.current_build(settings.index_dir)
        model = store.read_manifest(build).model
        if model.startswith("e5kb:"):  # adapted to the knowledge base: its own adapter
            from retrieval.embedders import embedder_from_name

            embedder = embedder_from_name(model, settings.index_dir)
        else:
            embedder = make_embedder(settings, sorted({e.lang for e in store.read_entries(build)}))
        retriever = load_retriever(settings.index_dir, embedder=embedder)
        if fusion not in get_args(Fusion):
            raise _fail(f"--fusion must be one of {', '.join(get_args(Fusion))}")
        hits = retriever.search(query, k=k, lang=lang, fusion=cast("Fusion", fusion))
    except RetrievalError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"{query!r} (confident at score >= {settings.answer_threshold:.2f})")
    for col, just in (("#", "right"), ("score", "right"), ("dense", "right"), ("bm25", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for col in ("entry", "lang", "matched", "source"):
        table.add_column(col)
    for h in hits:
        style = "green" if h.score >= settings.answer_threshold else None
        table.add_row(
            str(h.rank),
            f"{h.score:.3f}",
            f"{h.dense_score:.3f}",
            f"{h.lexical_score:.2f}",
            h.entry_id,
            h.lang,
            h.matched if len(h.matched) <= 80 else h.matched[:77] + "…",
            h.source if h.source == h.entry.source else f"{h.source}\n{h.entry.location}",
            style=style,
        )
    console.print(table)
    if not hits:
        console.print("no hits")


@kb_app.command("stats")
def stats() -> None:
    """Entries per source and language, index size and model, untranslated entries (no model
    is loaded)."""
    from knowledge.changes import fingerprint_files
    from retrieval import store

    settings = get_settings()
    try:
        build = store.current_build(settings.index_dir)
        manifest = store.read_manifest(build)
        entries = store.read_entries(build)
    except RetrievalError as exc:
        raise _fail(str(exc)) from None
    size = sum(p.stat().st_size for p in build.iterdir() if p.is_file())
    root = Path(manifest.knowledge_root)
    fresh = root.is_dir() and fingerprint_files(root) == manifest.knowledge_fingerprint
    info = Table(title="Index", show_header=False)
    info.add_column(style="bold")
    info.add_column()
    for label, value in (
        ("model", manifest.model),
        ("dimensions", str(manifest.dim)),
        ("layout", manifest.index_kind),
        ("entries", str(manifest.entry_count)),
        ("vectors", str(manifest.row_count)),
        ("size on disk", f"{size / 1e6:.2f} MB"),
        ("built", f"{manifest.built_at} ({manifest.build_seconds:.1f} s)"),
        ("knowledge", f"{root} ({'up to date' if fresh else 'changed since: reindex'})"),
        ("duplicates", str(len(manifest.duplicates))),
        ("build", str(build)),
    ):
        info.add_row(label, value)
    console.print(info)
    per = Counter((e.source, e.lang, e.kind.value) for e in entries)
    table = Table(title="Entries per source")
    for col in ("source", "lang", "kind", "entries"):
        table.add_column(col, justify="right" if col == "entries" else "left")
    for (source, lang, kind), n in sorted(per.items()):
        table.add_row(source, lang, kind, str(n))
    console.print(table)
    langs = Counter(e.lang for e in entries)
    console.print("languages: " + ", ".join(f"{k} {v}" for k, v in sorted(langs.items())))
    _print_untranslated(build, entries, manifest.model)


def _print_untranslated(build: Path, entries: list[Entry], model: str) -> None:
    """How many main-language entries have no translation: what other languages' questions
    are answered from in that language (bot.decide, retrieval.translations)."""
    from retrieval import translations

    flags = translations.translated(build, entries, model)
    main = translations.main_language(entries)
    if flags is None or main is None:
        return
    alone = [e for e, ok in zip(entries, flags, strict=True) if e.lang == main and not ok]
    total = sum(e.lang == main for e in entries)
    console.print(
        f"main language: {main}; {len(alone)} of {total} {main} entries have no "
        "translation (questions in other languages may be answered from them in "
        f"{main}, docs/engine.md)"
    )
