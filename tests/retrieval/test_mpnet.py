"""The mpnet backend: names, factories, and the real packaged all-mpnet-base-v2 (extracted
once per session into a temporary cache; queries on ONNX Runtime, passages on torch)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from retrieval.calibration import calibration_for, head_rank_weight_for
from retrieval.embedders import BACKENDS, embedder_from_name, make_embedder
from retrieval.errors import RetrievalError
from retrieval.mpnet import MPNET_DIM, MpnetEmbedder

SENTENCES = [
    "How long does delivery take?",
    "When will my parcel arrive?",
    "Can I pay with a credit card?",
]


def test_name_round_trips_through_the_manifest_name() -> None:
    emb = MpnetEmbedder()
    assert emb.name == "mpnet:all-mpnet-base-v2"
    assert emb.dim == MPNET_DIM == 768  # known without loading anything
    again = embedder_from_name(emb.name)
    assert isinstance(again, MpnetEmbedder)
    assert again.name == emb.name
    with pytest.raises(RetrievalError, match="mpnet:all-mpnet-base-v2"):
        embedder_from_name("mpnet:some-other-model")


def test_backend_setting_selects_mpnet() -> None:
    assert "mpnet" in BACKENDS
    assert isinstance(make_embedder("mpnet", None, ["en"]), MpnetEmbedder)
    assert isinstance(make_embedder("mpnet", None, ["en", "de"]), MpnetEmbedder)


@pytest.fixture(scope="session")
def mpnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MpnetEmbedder]:
    """The real model, extracted from the installed wheels into a temporary cache directory
    (also where its ONNX graph is exported; removed afterwards)."""
    cache = tmp_path_factory.mktemp("mpnet-cache")
    previous = os.environ.get("KLARTEXT_CACHE_DIR")
    os.environ["KLARTEXT_CACHE_DIR"] = str(cache)
    try:
        emb = MpnetEmbedder()
        emb.embed(SENTENCES[:1], kind="query")  # extract, load, export
        yield emb
    finally:
        if previous is None:
            os.environ.pop("KLARTEXT_CACHE_DIR", None)
        else:
            os.environ["KLARTEXT_CACHE_DIR"] = previous
        shutil.rmtree(cache, ignore_errors=True)  # ~0.9 GB: pytest keeps old temp dirs


def test_packaged_model_embeds_paraphrases_close_and_unrelated_far(mpnet: MpnetEmbedder) -> None:
    vectors = mpnet.embed(SENTENCES, kind="passage")
    assert vectors.shape == (3, 768)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    paraphrase = float(vectors[0] @ vectors[1])
    unrelated = float(vectors[0] @ vectors[2])
    assert paraphrase > 0.5 > unrelated + 0.2
    # mpnet's own fitted calibration: confident on the paraphrase, not on the unrelated text
    # (both share no query terms with the other text: coverage 0).
    calibrate = calibration_for(mpnet.name)
    assert calibrate is not calibration_for("minilm:all-MiniLM-L6-v2")
    assert calibrate(paraphrase, 0.0) > 0.5 > calibrate(unrelated, 0.0)
    assert head_rank_weight_for(mpnet.name) == head_rank_weight_for("minilm:x")


def test_queries_on_onnx_match_torch_passages(mpnet: MpnetEmbedder) -> None:
    cache = Path(os.environ["KLARTEXT_CACHE_DIR"])
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1  # the query path is ONNX
    assert [p.name for p in (cache / "models").iterdir()] == ["all-mpnet-base-v2-78c0197b6159"]
    queries = np.concatenate([mpnet.embed([s], kind="query") for s in SENTENCES])
    passages = mpnet.embed(SENTENCES, kind="passage")
    assert float(np.min(np.sum(queries * passages, axis=1))) > 0.9999
