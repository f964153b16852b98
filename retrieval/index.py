"""FAISS vector index: inner product over L2-normalised vectors, stable int64 row ids.

Two layouts behind one class, both wrapped in ``IndexIDMap2`` so rows keep their ids:

* ``flat`` — an exhaustive scan, used up to ``hnsw_threshold`` vectors: an
  ``IndexScalarQuantizer`` with half-precision (fp16) codes, which reads half the memory of
  ``IndexFlatIP`` per query (20k x 384: 0.42 vs 1.2 ms CPU). Scores are exact to ~1e-3; the
  retriever recomputes the cosines it reports from ``vectors.npy``. Indexes written as
  ``IndexFlatIP`` by older versions load and work unchanged.
* ``hnsw`` — ``IndexHNSWFlat(dim, M, METRIC_INNER_PRODUCT)`` above it.

HNSW graphs cannot delete nodes (``remove_ids`` is unsupported). Removed HNSW rows therefore
become *tombstones*: they stay in the graph (still useful for navigation) but every search
excludes them through a FAISS ``IDSelector``, so results never contain them and recall is not
hurt. When tombstones exceed ``COMPACT_RATIO`` of the rows, the graph is rebuilt from the live
vectors (``reconstruct``). Tombstones are persisted next to ``index.faiss``.

``faiss`` is imported lazily so that importing this module is cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from retrieval.errors import IndexCorrupt
from retrieval.types import Vectors

if TYPE_CHECKING:
    import faiss

IndexKind = Literal["flat", "hnsw"]
Ids = npt.NDArray[np.int64]

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 100
# M=32/efC=100 at 1M clustered 384-d vectors (docs/benchmarks.md): efSearch 96 -> recall@10
# 0.914, 192 -> 0.962, 256 -> 0.972 at p99 2.6 ms; 256 keeps a margin over the 0.95 goal.
HNSW_EF_SEARCH = 256
COMPACT_RATIO = 0.2
# Flat layout: fp16 codes (half the memory read per query) instead of exact IndexFlatIP.
FLAT_FP16 = True
_TOMBSTONES = ".tombstones.npy"
# Searches of up to this many queries run on one thread: a single query gains nothing from
# OpenMP and its thread wake-ups cost milliseconds on a busy machine.
_SINGLE_THREAD_QUERIES = 8


_FAISS: Any = None


def _faiss() -> Any:
    global _FAISS
    if _FAISS is None:  # a cached module: ``import`` in a hot path costs ~0.1 ms per call
        import faiss

        _FAISS = faiss
    return _FAISS


def choose_kind(n_vectors: int, hnsw_threshold: int) -> IndexKind:
    """Flat up to ``hnsw_threshold`` vectors, HNSW above."""
    return "hnsw" if n_vectors > hnsw_threshold else "flat"


class FaissIndex:
    """A :class:`retrieval.types.VectorIndex` over FAISS."""

    def __init__(
        self,
        dim: int,
        kind: IndexKind = "flat",
        *,
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
        _index: faiss.IndexIDMap2 | None = None,
        _tombstones: set[int] | None = None,
    ) -> None:
        self.dim = dim
        self.kind: IndexKind = kind
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self._tombstones: set[int] = _tombstones or set()
        self._index = _index if _index is not None else self._empty()

    def _empty(self) -> Any:
        faiss = _faiss()
        if self.kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = self.ef_construction
            base.hnsw.efSearch = self.ef_search
        else:
            base = (
                faiss.IndexScalarQuantizer(
                    self.dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
                )
                if FLAT_FP16
                else faiss.IndexFlatIP(self.dim)
            )
        return faiss.IndexIDMap2(base)

    # --- VectorIndex ------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Live (searchable) vectors."""
        return int(self._index.ntotal) - len(self._tombstones)

    @property
    def tombstones(self) -> int:
        return len(self._tombstones)

    def ids(self) -> Ids:
        """Live row ids, in storage order."""
        faiss = _faiss()
        all_ids: Ids = np.asarray(faiss.vector_to_array(self._index.id_map), dtype=np.int64)
        if not self._tombstones:
            return all_ids
        dead = np.fromiter(self._tombstones, dtype=np.int64)
        return all_ids[~np.isin(all_ids, dead)]

    def add(self, ids: Ids, vectors: Vectors) -> None:
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids) == 0:
            return
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dim {vectors.shape[1]}, index has {self.dim}")
        self._index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, np.int64)
        )

    def remove(self, ids: Ids) -> None:
        if len(ids) == 0:
            return
        faiss = _faiss()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.kind == "flat":
            self._index.remove_ids(faiss.IDSelectorBatch(ids))
            return
        self._tombstones.update(int(i) for i in ids)
        if len(self._tombstones) > COMPACT_RATIO * max(1, int(self._index.ntotal)):
            self.compact()

    def search(self, queries: Vectors, k: int) -> tuple[npt.NDArray[np.float32], Ids]:
        """Top-``k`` (scores, ids) per query; missing slots have id ``-1``."""
        faiss = _faiss()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, max(1, self.size)))
        threads = faiss.omp_get_max_threads()
        if len(queries) <= _SINGLE_THREAD_QUERIES:
            faiss.omp_set_num_threads(1)  # per calling thread; avoids OpenMP spin overhead
        try:
            if self.kind == "hnsw":
                params: Any = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
                if self._tombstones:
                    dead = np.fromiter(self._tombstones, dtype=np.int64)
                    params.sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(dead))
                scores, ids = self._index.search(queries, k, params=params)
            else:
                scores, ids = self._index.search(queries, k)
        finally:
            faiss.omp_set_num_threads(threads)
        return scores.astype(np.float32), ids.astype(np.int64)

    # --- maintenance ------------------------------------------------------------------
    def vectors(self, ids: Ids) -> Vectors:
        """Stored vectors for ``ids`` (any layout)."""
        out = np.vstack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else None
        return (
            np.asarray(out, dtype=np.float32)
            if out is not None
            else np.zeros((0, self.dim), np.float32)
        )

    def compact(self) -> None:
        """Rebuild an HNSW graph from its live vectors (drops tombstones)."""
        if not self._tombstones:
            return
        faiss = _faiss()
        all_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        base = faiss.downcast_index(self._index.index)
        vecs = base.reconstruct_n(0, int(base.ntotal))
        keep = ~np.isin(all_ids, np.fromiter(self._tombstones, dtype=np.int64))
        self._tombstones = set()
        self._index = self._empty()
        self.add(all_ids[keep], vecs[keep])

    def save(self, path: Path) -> None:
        faiss = _faiss()
        faiss.write_index(self._index, str(path))
        tomb = Path(str(path) + _TOMBSTONES)
        if self._tombstones:
            arr = np.fromiter(sorted(self._tombstones), dtype=np.int64)
            np.save(tomb, arr, allow_pickle=False)
        elif tomb.exists():
            tomb.unlink()

    @classmethod
    def load(cls, path: Path, *, ef_search: int = HNSW_EF_SEARCH) -> FaissIndex:
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorrupt(f"cannot read FAISS index {path}: {exc}") from exc
        base = faiss.downcast_index(index.index)
        kind: IndexKind = "hnsw" if isinstance(base, faiss.IndexHNSW) else "flat"
        m = HNSW_M
        if kind == "hnsw":
            base.hnsw.efSearch = ef_search
            m = int(base.hnsw.nb_neighbors(1))
        tomb = Path(str(path) + _TOMBSTONES)
        dead = {int(i) for i in np.load(tomb, allow_pickle=False)} if tomb.exists() else set[int]()
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexCorrupt(f"{path} is not an IndexIDMap2 index")
        return cls(int(index.d), kind, m=m, ef_search=ef_search, _index=index, _tombstones=dead)


def build_index(
    ids: Ids, vectors: Vectors, *, hnsw_threshold: int, dim: int | None = None
) -> FaissIndex:
    """A fresh index of the right kind for ``len(vectors)``."""
    d = dim if dim is not None else int(vectors.shape[1])
    index = FaissIndex(d, choose_kind(len(vectors), hnsw_threshold))
    index.add(ids, vectors)
    return index
