"""A reindex run in the background (the REST API's ``POST /api/v1/knowledge/reindex``).

Does what ``klartext reindex`` does, with the same functions: load the knowledge folder
strictly, :func:`retrieval.reindex.reindex` incrementally into ``settings.index_dir``, then
retrain the NLU through :func:`bot.nlu.training.train_if_changed_for` when the folder has an
``intents.yaml`` (a no-op unless intents/catalog changed). One run at a time per process;
:meth:`ReindexJob.status` reports ``idle → running → succeeded | failed`` with the counts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from bot.config import Settings

if TYPE_CHECKING:
    from retrieval.types import Embedder

log = logging.getLogger(__name__)
JobState = Literal["idle", "running", "succeeded", "failed"]
_MAX_ISSUES = 20


def make_embedder(settings: Settings, languages: Iterable[str]) -> Embedder:
    """The configured embedder (loads its model lazily); tests replace this attribute."""
    from retrieval.embedders import make_embedder as _make

    return _make(settings.embedding_backend, settings.embedding_model, languages)


class ReindexRunningError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ReindexStatus:
    state: JobState = "idle"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    entries: int = 0
    index_written: bool = False
    nlu_retrained: bool = False
    runtime_reloaded: bool = False  # the running server answers from the new build
    error: str | None = None
    issues: list[str] = field(default_factory=list)


class ReindexJob:
    """Thread-safe state of the background reindex: :meth:`begin` (on the caller's thread)
    marks it running, :meth:`execute` (on a worker thread) does the work."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._status = ReindexStatus()

    def status(self) -> ReindexStatus:
        with self._lock:
            return self._status

    def begin(self) -> ReindexStatus:
        with self._lock:
            if self._status.state == "running":
                raise ReindexRunningError("a reindex is already running")
            self._status = ReindexStatus(state="running", started_at=datetime.now(UTC))
            return self._status

    def execute(self, after: Callable[[ReindexStatus], bool] | None = None) -> ReindexStatus:
        """Run the reindex (blocking); never raises — failures end in state ``failed``.
        ``after`` (e.g. swap the server's index) runs on success before the state turns
        ``succeeded``; it returns whether the runtime was reloaded."""
        try:
            done = self._run()
        except Exception as exc:
            done = self._failed(exc)
        if done.state == "succeeded" and after is not None:
            try:
                done = replace(done, runtime_reloaded=after(done))
            except Exception:
                log.exception("reindex succeeded, but loading the new build failed")
        with self._lock:
            self._status = replace(done, finished_at=datetime.now(UTC))
            return self._status

    def start_thread(self, after: Callable[[ReindexStatus], bool] | None = None) -> None:
        """:meth:`begin`, then :meth:`execute` on a daemon thread."""
        self.begin()
        threading.Thread(
            target=self.execute, args=(after,), name="klartext-reindex", daemon=True
        ).start()

    def _failed(self, exc: Exception) -> ReindexStatus:
        from knowledge.errors import KnowledgeError

        issues = (
            [str(i) for i in exc.issues[:_MAX_ISSUES]] if isinstance(exc, KnowledgeError) else []
        )
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return replace(self.status(), state="failed", error=str(message), issues=issues)

    def _run(self) -> ReindexStatus:
        from bot.nlu.training import train_if_changed_for
        from knowledge.loaders import load_knowledge
        from retrieval.reindex import reindex

        settings = self.settings
        root = settings.knowledge_dir
        kb = load_knowledge(root)
        languages = sorted(kb.languages)
        cache: list[Embedder] = []

        def factory() -> Embedder:
            if not cache:
                cache.append(make_embedder(settings, languages))
            return cache[0]

        adapted: Embedder | None = None
        if settings.adapt_embeddings:  # trains only when the FAQ changed
            from retrieval.adapt import adapted_or_none

            # one torch thread: this runs inside the serving process, next to live chats
            adapted = adapted_or_none(kb, settings.index_dir, factory().name, threads=1)
        report = reindex(
            kb,
            settings.index_dir,
            factory if adapted is None else adapted,
            hnsw_threshold=settings.hnsw_threshold,
            duplicate_threshold=settings.duplicate_threshold,
            model_name=(factory() if adapted is None else adapted).name,
        )
        retrained = False
        if (root / "intents.yaml").is_file():
            retrained = train_if_changed_for(settings, root, factory)
        return replace(
            self.status(),
            state="succeeded",
            added=report.added,
            changed=report.changed,
            removed=report.removed,
            unchanged=report.unchanged,
            entries=report.entries,
            index_written=report.written,
            nlu_retrained=retrained,
        )
