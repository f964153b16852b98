"""Build or incrementally update the index of a knowledge base.

Incremental by default: entries are compared with the served build's manifest by content hash
(:func:`knowledge.changes.diff_entries`); only added/changed entries are embedded, vectors of
unchanged ones are copied from the previous build's ``vectors.npy``, removed ones are dropped.
The FAISS index is updated in place when its layout (flat/HNSW) stays the same, else rebuilt.
``full=True`` (or a different embedding model) re-embeds everything.

A reindex with nothing changed writes nothing and never resolves the embedder: pass a factory
(``Callable[[], Embedder]``) to keep the model unloaded, plus ``model_name`` to detect a changed
model without loading it. If only positions moved (file/line), a new build is written without
embedding. Near-duplicate FAQ phrasings (cosine >= ``duplicate_threshold`` across entries) are
found for new rows and carried over for unchanged pairs, so the report always lists all of them,
together with exact duplicates from :func:`knowledge.changes.find_exact_duplicates`
(:mod:`retrieval.duplicates`).
"""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.changes import (
    ChangeSet,
    DuplicatePair,
    diff_entries,
    find_exact_duplicates,
    fingerprint_files,
)
from knowledge.schema import Entry, KnowledgeBase
from retrieval import store, translations
from retrieval.duplicates import (
    duplicate_cosine,
    exact_touching,
    merge_duplicates,
    near_duplicates,
    pair_dict,
)
from retrieval.errors import IndexMissing, RetrievalError
from retrieval.head import HEAD_FILES, train_head
from retrieval.head import should_train as should_train_head
from retrieval.types import Embedder, Vectors

if TYPE_CHECKING:
    from retrieval.lexical import LexicalIndex

EMBED_BATCH = 64

EmbedderSource = Embedder | Callable[[], Embedder]


@dataclass(slots=True)
class ReindexReport:
    added: int
    changed: int
    removed: int
    unchanged: int
    duplicates: list[DuplicatePair] = field(default_factory=list)
    seconds: float = 0.0
    build: Path | None = None  # None when nothing was written (no change or dry run)
    embedded: int = 0  # vector rows embedded
    entries: int = 0
    rows: int = 0
    model: str | None = None
    full: bool = False
    dry_run: bool = False

    @property
    def written(self) -> bool:
        return self.build is not None


@dataclass(slots=True)
class _Previous:
    build: Path
    manifest: store.Manifest


def _previous(index_dir: Path) -> _Previous | None:
    try:
        build = store.current_build(index_dir)
        return _Previous(build, store.read_manifest(build))
    except (IndexMissing, RetrievalError):
        return None


def plan_reindex(kb: KnowledgeBase, index_dir: Path) -> ChangeSet:
    """What an incremental reindex would do (reads only the manifest)."""
    prev = _previous(index_dir)
    return diff_entries(kb.entries, prev.manifest.entry_hashes if prev else {})


def _ids(items: Iterable[Any]) -> set[str]:
    return {i if isinstance(i, str) else i.id for i in items}


def _is_factory(source: EmbedderSource) -> bool:
    # not isinstance(source, Embedder): on Python 3.11 that evaluates the ``dim`` property,
    # which may load a model
    return callable(source) and not hasattr(type(source), "embed")


def _resolve(source: EmbedderSource) -> Embedder:
    return source() if _is_factory(source) else source  # type: ignore[operator,return-value]


def _embed(
    embedder: Embedder,
    texts: Sequence[str],
    progress: Callable[[int, int], None] | None,
) -> Vectors:
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    if progress is not None:
        progress(0, len(texts))  # before the first batch, which may load the model
    for start in range(0, len(texts), EMBED_BATCH):
        batch = texts[start : start + EMBED_BATCH]
        out[start : start + len(batch)] = embedder.embed(batch, kind="passage")
        if progress is not None:
            progress(start + len(batch), len(texts))
    return out


def reindex(
    kb: KnowledgeBase,
    index_dir: Path,
    embedder: EmbedderSource,
    *,
    full: bool = False,
    dry_run: bool = False,
    hnsw_threshold: int = 20_000,
    duplicate_threshold: float = 0.92,
    progress: Callable[[int, int], None] | None = None,
    model_name: str | None = None,
) -> ReindexReport:
    """Bring ``index_dir`` up to date with ``kb``; see the module docstring."""
    t0 = time.perf_counter()
    prev = _previous(index_dir)
    if not _is_factory(embedder):
        model_name = _resolve(embedder).name
    if prev is not None and model_name is not None and prev.manifest.model != model_name:
        full = True
    changes = diff_entries(kb.entries, prev.manifest.entry_hashes if prev and not full else {})
    report = ReindexReport(
        added=len(changes.added),
        changed=len(changes.changed),
        removed=len(changes.removed),
        unchanged=len(changes.unchanged),
        entries=len(kb.entries),
        model=model_name or (prev.manifest.model if prev else None),
        full=full,
        dry_run=dry_run,
    )
    no_change = prev is not None and changes.is_empty and not full
    if no_change and prev is not None and _answers_missing(kb, prev):
        no_change = False  # a build from before answer vectors: add them (no row embedding)
    if dry_run or no_change:
        exact = [] if no_change else find_exact_duplicates(kb.entries)
        report.duplicates = merge_duplicates(exact, prev.manifest.duplicates if prev else [], kb)
        if not dry_run and prev is not None and not _same_entries(prev.build, kb.entries):
            report.build = _relocate(kb, index_dir, prev, report.duplicates)
        report.rows = prev.manifest.row_count if prev else 0
        report.seconds = time.perf_counter() - t0
        return report
    resolved = _resolve(embedder)
    if prev is not None and prev.manifest.model != resolved.name and not full:
        return reindex(
            kb, index_dir, resolved, full=True, hnsw_threshold=hnsw_threshold,
            duplicate_threshold=duplicate_threshold, progress=progress,
        )  # fmt: skip
    report.model = resolved.name
    fresh = prev is None or full
    with _no_cyclic_gc():
        exact = find_exact_duplicates(kb.entries) if fresh else exact_touching(kb, changes.to_embed)
        _build(kb, index_dir, resolved, prev if not full else None, changes, exact, report,
               hnsw_threshold=hnsw_threshold, duplicate_threshold=duplicate_threshold,
               progress=progress, t0=t0)  # fmt: skip
    report.seconds = time.perf_counter() - t0
    return report


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a build allocates (10k entries: its full
    collections cost 0.1-0.3 s of a 0.25 s incremental run); nothing here creates cycles
    that must be freed before the build ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _answers_missing(kb: KnowledgeBase, prev: _Previous) -> bool:
    """A multilingual knowledge base whose served build has no answer vectors (built before
    :mod:`retrieval.translations`) though its model family uses them."""
    wanted = translations.wanted(kb.entries, prev.manifest.model)
    return wanted and not (prev.build / translations.ANSWERS).is_file()


def _same_entries(build: Path, entries: list[Entry]) -> bool:
    try:
        return store.read_entries(build) == entries
    except RetrievalError:
        return False


def _build(
    kb: KnowledgeBase,
    index_dir: Path,
    embedder: Embedder,
    prev: _Previous | None,
    changes: ChangeSet,
    exact: list[DuplicatePair],
    report: ReindexReport,
    *,
    hnsw_threshold: int,
    duplicate_threshold: float,
    progress: Callable[[int, int], None] | None,
    t0: float,
) -> None:
    from retrieval.index import FaissIndex, build_index, choose_kind

    by_id = kb.by_id()
    keep_ids = _ids(changes.unchanged) if prev is not None else set()
    new_entries = [e for e in kb.entries if e.id not in keep_ids]
    # rows kept from the previous build (itertools.compress: C speed for 10k+ rows)
    kept_pos: list[int] = []
    dropped: list[int] = []
    row_ids: list[int] = []
    entry_ids: list[str] = []
    phrase: list[int] = []
    next_id = 0
    old_vectors: Vectors | None = None
    if prev is not None:
        old_rows = store.read_rows(prev.build)
        old_vectors = np.load(prev.build / store.VECTORS, allow_pickle=False)
        next_id = prev.manifest.next_row_id
        keep = [eid in keep_ids for eid in old_rows.entry_ids]
        kept_pos = list(compress(range(len(keep)), keep))
        row_ids = list(compress(old_rows.row_ids, keep))
        entry_ids = list(compress(old_rows.entry_ids, keep))
        phrase = list(compress(old_rows.phrase, keep))
        dropped = list(compress(old_rows.row_ids, (not k for k in keep)))
    texts: list[str] = []
    n_kept = len(row_ids)
    for entry in new_entries:
        for i, text in enumerate(store.row_texts(entry)):
            texts.append(text)
            row_ids.append(next_id)
            entry_ids.append(entry.id)
            phrase.append(i)
            next_id += 1
    new_vectors = _embed(embedder, texts, progress)
    report.embedded = len(texts)
    kept_vectors = old_vectors[kept_pos] if old_vectors is not None and kept_pos else None
    vectors = np.vstack([kept_vectors, new_vectors]) if kept_vectors is not None else new_vectors
    ids = np.asarray(row_ids, dtype=np.int64)
    kind = choose_kind(len(vectors), hnsw_threshold)
    if prev is not None and prev.manifest.index_kind == kind and prev.manifest.dim == embedder.dim:
        index = FaissIndex.load(prev.build / store.FAISS)
        index.remove(np.asarray(dropped, dtype=np.int64))
        index.add(ids[n_kept:], new_vectors)
    else:
        index = build_index(ids, vectors, hnsw_threshold=hnsw_threshold, dim=embedder.dim)
    rowmap = store.RowMap(row_ids, entry_ids, phrase)
    threshold = duplicate_cosine(duplicate_threshold, embedder.name)
    near = near_duplicates(index, vectors, rowmap, by_id, start=n_kept, threshold=threshold)
    carried = prev.manifest.duplicates if prev is not None else []
    carried = [d for d in carried if d["a_id"] in keep_ids and d["b_id"] in keep_ids]
    report.duplicates = merge_duplicates([*exact, *near], carried, kb)
    build = store.create_build(index_dir)
    store.write_rows(build, rowmap)
    np.save(build / store.VECTORS, vectors, allow_pickle=False)
    index.save(build / store.FAISS)
    if translations.wanted(kb.entries, embedder.name):
        answer_ids, answers = translations.embed_answers(
            kb.entries,
            embedder,
            prev.build if prev else None,
            keep_ids,
            lambda e, t: _embed(e, t, None),
        )
        translations.save(build, answer_ids, answers)
    _lexical(kb, prev, keep_ids).save(build)
    if should_train_head(len(kb.entries), len(row_ids)):
        train_head(vectors, entry_ids).save(build)
    _finish(kb, build, embedder.name, embedder.dim, index.kind, len(row_ids), next_id,
            report.duplicates, time.perf_counter() - t0)  # fmt: skip
    store.publish(index_dir, build)
    report.build = build
    report.rows = len(row_ids)


def _lexical(kb: KnowledgeBase, prev: _Previous | None, keep_ids: set[str]) -> LexicalIndex:
    """BM25 for ``kb``; entries in ``keep_ids`` reuse the previous build's tokens (only
    changed entries are tokenised) when that build stored them with the same tokeniser."""
    from retrieval.lexical import LexicalIndex

    if prev is None or not keep_ids:
        return LexicalIndex.build([store.lexical_text(e) for e in kb.entries])
    try:
        old = LexicalIndex.load(prev.build, tokens=True)
    except (OSError, ValueError):
        old = None
    if old is None or old.doc_terms is None or old.n_docs != len(prev.manifest.entry_hashes):
        return LexicalIndex.build([store.lexical_text(e) for e in kb.entries])
    old_pos = {eid: i for i, eid in enumerate(prev.manifest.entry_hashes)}
    docs: list[int | str] = [
        old_pos[e.id] if e.id in keep_ids and e.id in old_pos else store.lexical_text(e)
        for e in kb.entries
    ]
    return LexicalIndex.update(old, docs)


def _relocate(
    kb: KnowledgeBase, index_dir: Path, prev: _Previous, duplicates: list[DuplicatePair]
) -> Path:
    """Same content, new positions/order: copy the vectors and FAISS index, no embedding."""
    build = store.create_build(index_dir)
    for path in prev.build.iterdir():
        copied = (store.ROWS, store.VECTORS, *HEAD_FILES, *translations.FILES)
        if path.name in copied or path.name.startswith(store.FAISS):
            shutil.copy2(path, build / path.name)
    _finish(kb, build, prev.manifest.model, prev.manifest.dim, prev.manifest.index_kind,
            prev.manifest.row_count, prev.manifest.next_row_id, duplicates)  # fmt: skip
    _lexical(kb, prev, {e.id for e in kb.entries}).save(build)
    store.publish(index_dir, build)
    return build


def _finish(
    kb: KnowledgeBase,
    build: Path,
    model: str,
    dim: int,
    kind: str,
    row_count: int,
    next_row_id: int,
    duplicates: list[DuplicatePair],
    seconds: float = 0.0,
) -> None:
    """Write entries.json and, last, the manifest."""
    store.write_entries(build, kb.entries)
    manifest = store.Manifest(
        model=model,
        dim=dim,
        index_kind=kind,
        entry_count=len(kb.entries),
        row_count=row_count,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(seconds, 3),
        entry_hashes={e.id: e.content_hash for e in kb.entries},
        knowledge_root=str(kb.root),
        knowledge_fingerprint=fingerprint_files(kb.root) if kb.root.is_dir() else {},
        duplicates=[pair_dict(d) for d in duplicates],
        next_row_id=next_row_id,
    )
    store.write_manifest(build, manifest)
