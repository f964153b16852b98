"""bot.embedcache.CachingEmbedder: one embedding per (kind, text), bounded, bulk bypass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bot.embedcache import CachingEmbedder
from retrieval.types import Vectors


class CountingEmbedder:
    name = "fake:counting"
    dim = 4

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        self.calls.append(tuple(texts))
        rows = [[len(t), hash(kind) % 7, 1.0, 0.0] for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 4)


def test_same_query_is_embedded_once_and_rows_match() -> None:
    inner = CountingEmbedder()
    cache = CachingEmbedder(inner, maxsize=2)
    a = cache.embed(["hello"], kind="query")
    b = cache.embed(["hello", "world"], kind="query")
    assert inner.calls == [("hello",), ("world",)]
    np.testing.assert_array_equal(a[0], b[0])
    assert b.shape == (2, 4) and b.dtype == np.float32
    cache.embed(["hello"], kind="passage")  # another kind is another row
    assert len(inner.calls) == 3 and (cache.hits, cache.misses) == (1, 3)
    assert cache.name == "fake:counting" and cache.dim == 4


def test_bounded_bulk_bypass_and_clear() -> None:
    inner = CountingEmbedder()
    cache = CachingEmbedder(inner, maxsize=2)
    for t in ("a", "b", "c"):
        cache.embed([t], kind="query")
    cache.embed(["a"], kind="query")  # evicted → embedded again
    assert inner.calls[-1] == ("a",)
    bulk = [str(i) for i in range(20)]
    assert cache.embed(bulk).shape == (20, 4) and inner.calls[-1] == tuple(bulk)
    cache.clear()
    cache.embed(["a"], kind="query")
    assert inner.calls[-1] == ("a",)
    assert cache.embed([], kind="query").shape == (0, 4)


def test_contains_tells_whether_a_row_is_cached() -> None:
    cache = CachingEmbedder(CountingEmbedder(), maxsize=1)
    assert not cache.contains("a")
    cache.embed(["a"], kind="query")
    assert cache.contains("a") and not cache.contains("a", kind="passage")
    cache.embed(["b"], kind="query")  # evicts "a"
    assert not cache.contains("a") and cache.contains("b")
