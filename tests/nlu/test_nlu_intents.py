"""The intent component and NLU facade with a deterministic fake embedder."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from nlu_fakes import REF_DATE, FakeEmbedder, toy_examples

from bot.errors import NLUError
from bot.nlu.classifier import OOS_LABEL, ClassifierConfig, IntentClassifier, train_classifier
from bot.nlu.entities import ProductName
from bot.nlu.oos import LEGACY_SIGNALS, SIGNALS
from bot.nlu.pipeline import NLU, load_nlu
from bot.nlu.training import train_nlu
from bot.nlu.types import IntentParser

NONSENSE = ["xq zzv plorkt", "qwrtzp vbnm yxcv", "kkkk jjjj llll"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FakeEmbedder]:
    emb = FakeEmbedder()
    out = tmp_path_factory.mktemp("nlu") / "model"
    train_nlu(
        toy_examples(),
        out,
        embedder=emb,
        products=[ProductName("Fjell 2 Tent", ("fjell tent",))],
    )
    return out, emb


@pytest.fixture(scope="module")
def nlu(trained: tuple[Path, FakeEmbedder]) -> NLU:
    out, emb = trained
    loaded = load_nlu(out, embedder=emb)
    loaded.set_reference_date(REF_DATE)
    return loaded


def test_nlu_is_an_intent_parser(nlu: NLU) -> None:
    assert isinstance(nlu, IntentParser)
    assert nlu.intents == ["greeting", "human_handoff", "order_status"]


@pytest.mark.parametrize(
    ("text", "lang", "intent"),
    [
        ("hello there!", "en", "greeting"),
        ("where is my order", "en", "order_status"),
        ("Wo ist meine Bestellung?", "de", "order_status"),
        ("ich möchte mit einem Menschen sprechen", "de", "human_handoff"),
        ("connect me with a human agent please", "en", "human_handoff"),
    ],
)
def test_parse_intent_language_and_ranking(nlu: NLU, text: str, lang: str, intent: str) -> None:
    msg = nlu.parse(text)
    assert (msg.lang, msg.intent, msg.out_of_scope) == (lang, intent, False)
    assert len(msg.ranking) == 3
    assert msg.ranking[0] == (intent, msg.confidence)
    probs = [p for _, p in msg.ranking]
    assert probs == sorted(probs, reverse=True)
    assert 0.0 < sum(probs) <= 1.0001


@pytest.mark.parametrize("text", NONSENSE)
def test_nonsense_is_out_of_scope(nlu: NLU, text: str) -> None:
    msg = nlu.parse(text, lang="en")
    assert msg.out_of_scope
    assert msg.intent is None
    assert msg.ranking  # the ranking is still reported


def test_entities_come_through_the_pipeline(nlu: NLU) -> None:
    msg = nlu.parse("Wo ist meine Bestellung NC-12345 mit dem Fjell Tent von gestern?")
    assert msg.lang == "de"
    assert msg.entity("ORDER_NUMBER") is not None
    assert [(e.label, e.value) for e in msg.entities] == [
        ("ORDER_NUMBER", "NC-12345"),
        ("PRODUCT", "Fjell 2 Tent"),
        ("DATE", "2026-11-27"),
    ]


def test_spacy_doc_extensions(nlu: NLU) -> None:
    doc = nlu.pipelines["en"]("where is my order NC-12345")
    assert doc._.intent == "order_status"
    assert len(doc._.intent_ranking) == 3
    assert doc._.out_of_scope is False
    assert [(e.label_, e._.value) for e in doc.ents] == [("ORDER_NUMBER", "NC-12345")]
    assert nlu.pipelines["en"].pipe_names == [
        "entity_ruler",
        "klartext_entities",
        "klartext_intent",
    ]


def test_parse_many_matches_parse(nlu: NLU) -> None:
    texts = ["hello", "wo ist meine bestellung", "xq zzv plorkt", "talk to a human"]
    assert nlu.parse_many(texts) == [nlu.parse(t) for t in texts]


def test_to_disk_from_disk_round_trip(trained: tuple[Path, FakeEmbedder], tmp_path: Path) -> None:
    out, emb = trained
    first = load_nlu(out, embedder=emb)
    again_dir = tmp_path / "again"
    first.pipelines["en"].to_disk(again_dir)
    clf_a = IntentClassifier.from_dir(out / "en" / "klartext_intent")
    clf_b = IntentClassifier.from_dir(again_dir / "klartext_intent")
    assert clf_a.labels == clf_b.labels
    assert clf_a.oos_threshold == clf_b.oos_threshold
    texts = ["where is my order", "hallo"]
    vecs = emb.embed(texts)
    np.testing.assert_allclose(clf_a.predict_proba(texts, vecs), clf_b.predict_proba(texts, vecs))
    assert not list(out.rglob("*.pkl")) and not list(out.rglob("*.joblib"))


def test_rule_uses_per_intent_knn_and_format_2_models_still_load(
    trained: tuple[Path, FakeEmbedder], tmp_path: Path
) -> None:
    out, emb = trained
    src = out / "en" / "klartext_intent"
    clf = IntentClassifier.from_dir(src)
    assert clf.rule is not None and clf.rule.names == SIGNALS
    assert clf.examples is not None and clf.examples.loo is not None
    np.testing.assert_allclose(clf.examples.loo, np.load(src / "example_loo.npy"))
    # a model saved before format 3: rule over the raw 3-NN cosine, no per-intent statistics
    legacy = tmp_path / "legacy"
    shutil.copytree(src, legacy)
    (legacy / "example_loo.npy").unlink()
    meta = json.loads((legacy / "classifier.json").read_text())
    spec = meta["oos_rule"]
    del spec["signals"]
    spec["k"] = 3
    spec["means"]["knn"], spec["stds"]["knn"] = 0.5, 0.2
    (legacy / "classifier.json").write_text(json.dumps(meta))
    old = IntentClassifier.from_dir(legacy)
    assert old.rule is not None and old.rule.names == LEGACY_SIGNALS
    texts = ["where is my order", "hallo", *NONSENSE]
    vecs = emb.embed(texts)
    proba = old.predict_proba(texts, vecs)
    sig = old.oos_signals(proba, vecs)
    assert old.examples is not None and set(sig) == set(LEGACY_SIGNALS)
    np.testing.assert_allclose(
        sig["knn"], old.examples.knn_similarity(vecs, proba.argmax(axis=1), 3), rtol=1e-6
    )
    assert old.out_of_scope(proba, vecs).shape == (len(texts),)


def test_wrong_embedder_is_refused(trained: tuple[Path, FakeEmbedder]) -> None:
    class Other(FakeEmbedder):
        @property
        def name(self) -> str:
            return "other"

    with pytest.raises(NLUError, match="trained with embedder"):
        load_nlu(trained[0], embedder=Other())


def test_missing_model_raises(tmp_path: Path) -> None:
    with pytest.raises(NLUError, match="klartext nlu train"):
        load_nlu(tmp_path / "nothing", embedder=FakeEmbedder())


def test_oos_examples_train_a_reject_class() -> None:
    emb = FakeEmbedder()
    examples = toy_examples()
    oos = [
        "what is the weather today",
        "tell me a joke",
        "wie wird das wetter",
        "erzähl einen witz",
    ]
    clf = train_classifier(
        [t for t, _, _ in examples],
        [i for _, i, _ in examples],
        emb.embed([t for t, _, _ in examples]),
        oos_texts=oos,
        oos_vectors=emb.embed(oos),
        config=ClassifierConfig(folds=3),
    )
    assert clf.labels[-1] == "__oos__"
    assert "threshold_with_oos" in clf.stats
    proba = clf.predict_proba(["what is the weather"], emb.embed(["what is the weather"]))
    assert clf.labels[int(proba.argmax())] == "__oos__"


def test_entity_only_model_without_intents(tmp_path: Path) -> None:
    train_nlu([], tmp_path / "m", embedder=None)
    nlu = load_nlu(tmp_path / "m")
    msg = nlu.parse("my email is A@B.de")
    assert (msg.intent, msg.out_of_scope, msg.ranking) == (None, False, ())
    assert msg.entity("EMAIL") is not None


def test_mlp_head_round_trip_matches_torch_free_inference(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    examples = toy_examples()
    texts = [t for t, _, _ in examples]
    cfg = ClassifierConfig(semantic_head="mlp", mlp_min_examples=0, mlp_epochs=20, mlp_hidden=64)
    clf = train_classifier(texts, [i for _, i, _ in examples], emb.embed(texts), config=cfg)
    assert type(clf.semantic).__name__ == "MLPHead"
    clf.to_dir(tmp_path / "clf")
    again = IntentClassifier.from_dir(tmp_path / "clf")
    assert type(again.semantic).__name__ == "MLPHead"
    probe = ["where is my order", "hallo zusammen", "talk to a human"]
    vecs = emb.embed(probe)
    np.testing.assert_allclose(clf.predict_proba(probe, vecs), again.predict_proba(probe, vecs))
    predicted = [again.labels[i] for i in again.predict_proba(probe, vecs).argmax(axis=1)]
    assert predicted == ["order_status", "greeting", "human_handoff"]


OOS_TEXTS = [
    ("what is the weather", "en"),
    ("tell me a joke", "en"),
    ("who won the football game", "en"),
    ("wie wird das wetter", "de"),
    ("erzähl einen witz", "de"),
]


@pytest.fixture(scope="module")
def with_reject_class(tmp_path_factory: pytest.TempPathFactory) -> IntentClassifier:
    out = tmp_path_factory.mktemp("nlu-oos") / "model"
    train_nlu(toy_examples(), out, embedder=FakeEmbedder(), oos_examples=OOS_TEXTS)
    return IntentClassifier.from_dir(out / "en" / "klartext_intent")


def _rows(clf: IntentClassifier, winner: str | None) -> np.ndarray:
    """One probability row: ``winner`` takes 0.9, or (None) the in-scope intents share evenly."""
    in_scope = [i for i, lb in enumerate(clf.labels) if lb != OOS_LABEL]
    row = np.zeros(len(clf.labels), dtype=np.float32)
    if winner is None:
        row[in_scope] = 1 / len(in_scope)
    else:
        row[:] = 0.1 / (len(clf.labels) - 1)
        row[clf.labels.index(winner)] = 0.9
    return row[None, :]


def test_ambiguous_in_scope_message_is_uncertain_not_out_of_scope(
    with_reject_class: IntentClassifier,
) -> None:
    clf = with_reject_class
    assert OOS_LABEL in clf.labels
    vec = FakeEmbedder().embed(["where is my order"])  # near an intent: the far guard is quiet
    # no in-scope intent stands out, but the reject class does not win either
    reject, uncertain = clf.scope(_rows(clf, None), vec)
    assert (reject.tolist(), uncertain.tolist()) == ([False], [True])
    assert clf.out_of_scope(_rows(clf, None), vec).tolist() == [True]  # the rule's rejection
    # the reject class wins: out of scope
    reject, uncertain = clf.scope(_rows(clf, OOS_LABEL), vec)
    assert (reject.tolist(), uncertain.tolist()) == ([True], [False])
    # a confident intent: neither
    reject, uncertain = clf.scope(_rows(clf, "order_status"), vec)
    assert (reject.tolist(), uncertain.tolist()) == ([False], [False])


def test_without_a_reject_class_every_rejection_is_out_of_scope(
    with_reject_class: IntentClassifier,
) -> None:
    clf = with_reject_class
    plain = replace(clf, labels=["other" if lb == OOS_LABEL else lb for lb in clf.labels])
    vec = FakeEmbedder().embed(["where is my order"])
    row = _rows(clf, None)
    row[0, plain.labels.index("other")] = 0.0
    reject, uncertain = plain.scope(row, vec)
    assert (reject.tolist(), uncertain.tolist()) == ([True], [False])


def test_uncertain_message_parses_in_scope_without_intent(
    trained: tuple[Path, FakeEmbedder],
) -> None:
    out, emb = trained
    nlu = load_nlu(out, embedder=emb)
    comp = nlu.pipelines["en"].get_pipe("klartext_intent")

    class _Unsure:
        labels = comp.classifier.labels

        def predict_proba(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
            return np.full((len(texts), len(self.labels)), 1 / len(self.labels), np.float32)

        def scope(self, proba: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            n = len(proba)
            return np.zeros(n, dtype=np.bool_), np.ones(n, dtype=np.bool_)

    comp.classifier = _Unsure()
    msg = nlu.parse("the tracking says delivered but nothing is here", lang="en")
    assert (msg.intent, msg.out_of_scope) == (None, False)
    assert msg.ranking  # the ranking is still reported
