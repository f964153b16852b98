"""One integration test with the real MiniLM embedder (loaded once per session)."""

from __future__ import annotations

import numpy as np
import pytest
from nlu_fakes import REF_DATE, toy_examples

from bot.nlu.embedding import MiniLMEmbedder
from bot.nlu.pipeline import NLU, load_nlu
from bot.nlu.training import train_nlu

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def real_nlu(minilm: MiniLMEmbedder, tmp_path_factory: pytest.TempPathFactory) -> NLU:
    out = tmp_path_factory.mktemp("real") / "nlu"
    train_nlu(toy_examples(), out, embedder=minilm)
    nlu = load_nlu(out, embedder=minilm)
    nlu.set_reference_date(REF_DATE)
    return nlu


def test_embedder_vectors_are_unit_norm(minilm: MiniLMEmbedder) -> None:
    vecs = minilm.embed(["where is my parcel", "wo ist mein paket"], kind="query")
    assert vecs.shape == (2, minilm.dim)
    assert abs(float((vecs**2).sum(axis=1).max()) - 1.0) < 1e-4


def test_small_batch_fast_path_matches_sentence_transformers(minilm: MiniLMEmbedder) -> None:
    texts = ["where is my parcel", "Can I please speak to a real person about my refund?"]
    reference = minilm._model.encode(texts, normalize_embeddings=True)  # the batch path
    single = np.vstack([minilm.embed([t], kind="query") for t in texts])
    padded = minilm.embed(texts, kind="query")  # two texts of different length: masking
    assert float((single * reference).sum(axis=1).min()) > 0.9999
    assert float((padded * reference).sum(axis=1).min()) > 0.9999


@pytest.mark.parametrize(
    ("text", "lang", "intent"),
    [
        ("Hey, good morning!", "en", "greeting"),
        ("my parcel still hasn't arrived, where is my order?", "en", "order_status"),
        ("Can I please speak to a real person?", "en", "human_handoff"),
        ("Guten Tag!", "de", "greeting"),
        ("Wann kommt endlich meine Bestellung NC-12345?", "de", "order_status"),
        ("Ich will mit einem echten Mitarbeiter sprechen", "de", "human_handoff"),
    ],
)
def test_parses_english_and_german(real_nlu: NLU, text: str, lang: str, intent: str) -> None:
    msg = real_nlu.parse(text)
    assert (msg.lang, msg.intent, msg.out_of_scope) == (lang, intent, False)


def test_unrelated_question_is_out_of_scope(real_nlu: NLU) -> None:
    msg = real_nlu.parse("What is the boiling point of mercury in kelvin?")
    assert msg.out_of_scope and msg.intent is None


def test_entities_with_real_pipeline(real_nlu: NLU) -> None:
    msg = real_nlu.parse("Bestellung NC-12345 kam gestern, ich zahlte 19,99 €", lang="de")
    assert [(e.label, e.value) for e in msg.entities] == [
        ("ORDER_NUMBER", "NC-12345"),
        ("DATE", "2026-11-27"),
        ("MONEY", "19.99 EUR"),
    ]
