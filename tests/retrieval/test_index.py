"""FaissIndex: flat and HNSW add/remove/search, tombstones, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.index import FaissIndex, build_index, choose_kind
from retrieval.types import VectorIndex


def _unit(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_add_search_remove(kind: str) -> None:
    x = _unit(300)
    ids = np.arange(300, dtype=np.int64) * 7 + 5
    index = FaissIndex(32, kind)  # type: ignore[arg-type]
    assert isinstance(index, VectorIndex)
    index.add(ids, x)
    assert index.size == 300
    scores, found = index.search(x[:4], 3)
    assert found[:, 0].tolist() == ids[:4].tolist()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-3)  # flat stores fp16 codes
    index.remove(ids[:2])
    assert index.size == 298
    _, found = index.search(x[:4], 3)
    assert ids[0] not in found and ids[1] not in found
    assert found[2, 0] == ids[2]
    assert set(index.ids().tolist()) == set(ids[2:].tolist())


def test_hnsw_tombstones_compact_when_many() -> None:
    x = _unit(200)
    ids = np.arange(200, dtype=np.int64)
    index = FaissIndex(32, "hnsw")
    index.add(ids, x)
    index.remove(ids[:10])
    assert index.tombstones == 10
    index.remove(ids[10:60])  # over 20 % dead -> rebuilt from live vectors
    assert index.tombstones == 0
    assert index.size == 140
    _, found = index.search(x[100:101], 1)
    assert found[0, 0] == 100


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    x = _unit(120)
    ids = np.arange(120, dtype=np.int64) + 1000
    index = FaissIndex(32, kind)  # type: ignore[arg-type]
    index.add(ids, x)
    index.remove(ids[:3])
    index.save(tmp_path / "index.faiss")
    loaded = FaissIndex.load(tmp_path / "index.faiss")
    assert loaded.kind == kind
    assert loaded.size == 117
    _, a = index.search(x[3:8], 5)
    _, b = loaded.search(x[3:8], 5)
    assert a.tolist() == b.tolist()
    assert np.allclose(loaded.vectors(ids[5:7]), x[5:7], atol=1e-3)


def test_choose_kind_and_build() -> None:
    assert choose_kind(10, 10) == "flat"
    assert choose_kind(11, 10) == "hnsw"
    x = _unit(50)
    index = build_index(np.arange(50, dtype=np.int64), x, hnsw_threshold=20)
    assert index.kind == "hnsw"
    assert index.size == 50


def test_hnsw_recall_against_exact() -> None:
    x = _unit(2000, dim=24, seed=1)
    q = _unit(50, dim=24, seed=2)
    ids = np.arange(2000, dtype=np.int64)
    flat, hnsw = FaissIndex(24, "flat"), FaissIndex(24, "hnsw")
    flat.add(ids, x)
    hnsw.add(ids, x)
    _, exact = flat.search(q, 10)
    _, approx = hnsw.search(q, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.9


def test_mismatched_input_is_rejected() -> None:
    index = FaissIndex(8)
    with pytest.raises(ValueError, match="dim"):
        index.add(np.arange(2, dtype=np.int64), _unit(2, dim=4))
    with pytest.raises(ValueError, match="ids"):
        index.add(np.arange(3, dtype=np.int64), _unit(2, dim=8))


def test_flat_is_half_precision_and_old_flat_indexes_still_load(tmp_path: Path) -> None:
    import faiss

    x = _unit(50)
    ids = np.arange(50, dtype=np.int64)
    index = FaissIndex(32, "flat")
    index.add(ids, x)
    index.save(tmp_path / "new.faiss")
    assert (tmp_path / "new.faiss").stat().st_size < 50 * 32 * 4  # fp16 codes
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(32))  # written by earlier versions
    old.add_with_ids(x, ids)
    faiss.write_index(old, str(tmp_path / "old.faiss"))
    loaded = FaissIndex.load(tmp_path / "old.faiss")
    assert loaded.kind == "flat"
    loaded.remove(ids[:1])
    _, found = loaded.search(x[1:2], 1)
    assert found[0, 0] == 1 and loaded.size == 49
