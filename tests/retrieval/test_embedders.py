"""Real-model tests of the embedding backends (models load once per session)."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.embedders import (
    E5Embedder,
    SentenceTransformerEmbedder,
    UseEmbedder,
    embedder_from_name,
    make_embedder,
)
from retrieval.errors import RetrievalError
from retrieval.types import Embedder

EN = [
    "How long does delivery take?",
    "When will my parcel arrive?",
    "Can I pay with a credit card?",
]
DE_EN = (
    "Wie lange dauert der Versand?",  # German question
    "How long does shipping take?",  # its English paraphrase
    "Can I pay with a credit card?",  # unrelated English entry
)


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def e5() -> Embedder:
    return E5Embedder()


@pytest.fixture(scope="session")
def use() -> Embedder:
    return UseEmbedder()


@pytest.fixture(params=["minilm", "e5", "use"])
def any_embedder(
    request: pytest.FixtureRequest, minilm: Embedder, e5: Embedder, use: Embedder
) -> Embedder:
    return {"minilm": minilm, "e5": e5, "use": use}[request.param]


def test_vectors_are_normalised_float32_rows(any_embedder: Embedder) -> None:
    assert isinstance(any_embedder, Embedder)
    vectors = any_embedder.embed(EN, kind="passage")
    assert vectors.shape == (3, any_embedder.dim)
    assert vectors.dtype == np.float32
    assert vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_empty_matrix(any_embedder: Embedder) -> None:
    assert any_embedder.embed([], kind="query").shape == (0, any_embedder.dim)


def test_paraphrase_is_closer_than_unrelated(any_embedder: Embedder) -> None:
    query = any_embedder.embed([EN[0]], kind="query")[0]
    passages = any_embedder.embed(EN[1:], kind="passage")
    paraphrase, unrelated = passages @ query
    assert paraphrase > unrelated + 0.05


@pytest.mark.parametrize("which", ["e5", "use"])
def test_multilingual_german_query_finds_english_paraphrase(
    which: str, e5: Embedder, use: Embedder
) -> None:
    embedder = {"e5": e5, "use": use}[which]
    query = embedder.embed([DE_EN[0]], kind="query")[0]
    paraphrase, unrelated = embedder.embed(DE_EN[1:], kind="passage") @ query
    assert paraphrase > unrelated + 0.05


def test_minilm_is_english_only(minilm: Embedder) -> None:
    """Why the multilingual backend exists: MiniLM barely links German to English."""
    query = minilm.embed([DE_EN[0]], kind="query")[0]
    paraphrase = float(minilm.embed([DE_EN[1]])[0] @ query)
    assert paraphrase < 0.5


def test_e5_query_and_passage_prefixes_differ(e5: Embedder) -> None:
    as_query = e5.embed([EN[0]], kind="query")[0]
    as_passage = e5.embed([EN[0]], kind="passage")[0]
    assert float(as_query @ as_passage) < 0.9999
    assert float(as_query @ as_passage) > 0.8


def test_batch_equals_single(e5: Embedder, minilm: Embedder) -> None:
    for embedder in (e5, minilm):
        batch = embedder.embed(EN, kind="passage")
        single = embedder.embed([EN[2]], kind="passage")[0]
        assert float(batch[2] @ single) > 0.999


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("minilm:all-MiniLM-L6-v2", SentenceTransformerEmbedder),
        ("sentence-transformers:/models/my-model", SentenceTransformerEmbedder),
        ("e5:multilingual-e5-small-q4", E5Embedder),
        ("use:multilingual-v3", UseEmbedder),
    ],
)
def test_embedder_from_name_round_trip(name: str, cls: type) -> None:
    embedder = embedder_from_name(name)  # lazy: nothing is loaded
    assert isinstance(embedder, cls)
    assert embedder.name == name


@pytest.mark.parametrize(
    "name", ["e5:other-model", "fake:trigram", "nocolon", "minilm:", "use:multilingual-v2"]
)
def test_unknown_names_are_a_clear_error(name: str) -> None:
    with pytest.raises(RetrievalError, match="cannot load"):
        embedder_from_name(name)


def test_make_embedder_auto_picks_by_languages() -> None:
    assert make_embedder("auto", None, ["en"]).name == "minilm:all-MiniLM-L6-v2"
    assert make_embedder("auto", None, []).name == "minilm:all-MiniLM-L6-v2"
    assert make_embedder("auto", None, ["en", "de"]).name == "e5:multilingual-e5-small-q4"
    assert make_embedder("auto", None, ["de-DE"]).name == "e5:multilingual-e5-small-q4"
    assert make_embedder("auto", "/m/x", ["de"]).name == "sentence-transformers:/m/x"


def test_make_embedder_explicit_backends() -> None:
    assert make_embedder("minilm", None, ["de"]).name == "minilm:all-MiniLM-L6-v2"
    assert make_embedder("e5", None, ["en"]).name == "e5:multilingual-e5-small-q4"
    assert make_embedder("use", None, ["en"]).name == "use:multilingual-v3"
    st = make_embedder("sentence-transformers", "some/model", ["en"])
    assert st.name == "sentence-transformers:some/model"
    with pytest.raises(RetrievalError, match="unknown embedding backend"):
        make_embedder("word2vec", None, ["en"])


def test_missing_sentence_transformers_model_is_a_clear_error(tmp_path: object) -> None:
    embedder = SentenceTransformerEmbedder(f"{tmp_path}/does-not-exist")
    with pytest.raises(RetrievalError, match="cannot load"):
        embedder.embed(["x"])
