"""One loaded index build (:class:`Snapshot`) and the vectorised helpers the hot search path
runs on it: :func:`load_snapshot` and :func:`best_rows` (split out of :mod:`retrieval.search`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from knowledge.schema import Entry
from retrieval import store, translations
from retrieval.errors import IndexCorrupt
from retrieval.head import EntryHead, aligned_head
from retrieval.index import FaissIndex
from retrieval.lexical import LexicalIndex
from retrieval.translations import Flags
from retrieval.types import Vectors

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One loaded build; immutable, swapped as a whole on reload."""

    build: str
    manifest: store.Manifest
    entries: list[Entry]
    by_id: dict[str, Entry]
    index: FaissIndex
    lexical: LexicalIndex
    vectors: Vectors
    row_ids_sorted: Ints  # FAISS ids, sorted
    row_pos_sorted: Ints  # row position for each sorted id
    row_entry: Ints  # row position -> entry position
    row_phrase: Ints  # row position -> phrasing index
    entry_row_ptr: Ints  # CSR: rows of entry i are entry_rows[ptr[i]:ptr[i+1]]
    entry_rows: Ints
    entry_row_count: Ints  # np.diff(entry_row_ptr), precomputed for the hot path
    head: EntryHead | None = None  # classes in entry order (see _aligned_head)
    translated: Flags | None = None  # per entry: has a translation (retrieval.translations)
    main_lang: str | None = None  # the language with the most entries (translations)


def load_snapshot(index_dir: Path, build_name: str | None = None) -> Snapshot:
    build = store.builds_dir(index_dir) / build_name if build_name else None
    if build is None:
        build = store.current_build(index_dir)
    manifest = store.read_manifest(build)
    entries = store.read_entries(build)
    rows = store.read_rows(build)
    vectors = np.load(build / store.VECTORS, mmap_mode="r", allow_pickle=False)
    if len(vectors) != len(rows) or len(entries) != manifest.entry_count:
        raise IndexCorrupt(f"build {build} is inconsistent (vectors/rows/entries counts)")
    position = {e.id: i for i, e in enumerate(entries)}
    row_entry = np.fromiter((position[e] for e in rows.entry_ids), np.int64, len(rows))
    row_ids = np.asarray(rows.row_ids, dtype=np.int64)
    order = np.argsort(row_ids, kind="stable")
    by_entry = np.argsort(row_entry, kind="stable")
    ptr = np.zeros(len(entries) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_entry, minlength=len(entries)), out=ptr[1:])
    return Snapshot(
        build=build.name,
        manifest=manifest,
        entries=entries,
        by_id={e.id: e for e in entries},
        index=FaissIndex.load(build / store.FAISS),
        lexical=LexicalIndex.load(build),
        vectors=vectors.view(np.ndarray),  # still mapped; plain indexing is cheaper
        row_ids_sorted=row_ids[order],
        row_pos_sorted=order.astype(np.int64),
        row_entry=row_entry,
        row_phrase=np.asarray(rows.phrase, dtype=np.int64),
        entry_row_ptr=ptr,
        entry_rows=by_entry.astype(np.int64),
        entry_row_count=np.diff(ptr),
        head=aligned_head(build, [e.id for e in entries]),
        translated=translations.translated(build, entries, manifest.model),
        main_lang=translations.main_language(entries),
    )


def best_rows(snap: Snapshot, entries: Ints, qvec: Vectors) -> tuple[Vectors, Ints]:
    """Exact cosine of each entry's best phrasing, and that row's position (vectorised)."""
    ents = entries
    starts, counts = snap.entry_row_ptr[ents], snap.entry_row_count[ents]
    offsets = np.cumsum(counts) - counts
    idx = np.arange(int(counts.sum())) - np.repeat(offsets, counts) + np.repeat(starts, counts)
    rows = snap.entry_rows[idx]
    sims = np.asarray(snap.vectors[rows]) @ qvec
    best = np.maximum.reduceat(sims, offsets) if len(sims) else np.zeros(0, np.float32)
    hit = np.flatnonzero(sims == np.repeat(best, counts))
    segment = np.repeat(np.arange(len(ents)), counts)[hit]
    first = hit[np.unique(segment, return_index=True)[1]]
    return best.astype(np.float32), rows[first]


def first_occurrences(parts: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    """The distinct values of ``parts`` (concatenated) in order of first occurrence."""
    if not parts:
        return np.zeros(0, dtype=np.int64)
    values = np.concatenate(parts).astype(np.int64, copy=False)
    _, first = np.unique(values, return_index=True)
    out: npt.NDArray[np.int64] = values[np.sort(first)]
    return out
