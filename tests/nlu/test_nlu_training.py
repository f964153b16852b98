"""train_from_knowledge / train_if_changed on a small knowledge folder (fake embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nlu_fakes import FakeEmbedder

from bot.errors import NLUError
from bot.nlu.pipeline import load_nlu
from bot.nlu.training import knowledge_fingerprint, train_from_knowledge, train_if_changed


def test_train_from_knowledge_uses_intents_oos_and_catalog(
    knowledge_dir: Path, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    out = tmp_path / "nlu"
    report = train_from_knowledge(knowledge_dir, out, embedder=fake_embedder)
    assert report.intents == ["greeting", "human_handoff", "order_status"]
    assert report.n_oos_examples == 5
    assert report.products == 2
    assert report.languages == ["en", "de"]
    manifest = json.loads((out / "nlu.json").read_text())
    assert manifest["fingerprint"] == knowledge_fingerprint(knowledge_dir, fake_embedder.name)
    nlu = load_nlu(out, embedder=fake_embedder)
    assert nlu.parse("tell me a joke").out_of_scope
    assert nlu.parse("my trail runners are too small").entity("PRODUCT") is not None


def test_train_if_changed_only_retrains_on_change(knowledge_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "nlu"
    built: list[FakeEmbedder] = []

    def factory() -> FakeEmbedder:
        built.append(FakeEmbedder())
        return built[-1]

    assert train_if_changed(knowledge_dir, out, embedder_factory=factory) is True
    assert train_if_changed(knowledge_dir, out, embedder_factory=factory) is False
    assert len(built) == 1  # no embedder is built when nothing changed
    intents = knowledge_dir / "intents.yaml"
    intents.write_text(intents.read_text().replace("moin moin", "moin moin moin"))
    assert train_if_changed(knowledge_dir, out, embedder_factory=factory) is True
    (knowledge_dir / "catalog.yaml").write_text("products: []\n")
    assert train_if_changed(knowledge_dir, out, embedder_factory=factory) is True
    assert load_nlu(out, embedder=built[-1]).parse("fjell tent").entities == ()


def test_knowledge_without_intents_gives_entity_only_model(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    report = train_from_knowledge(kb, tmp_path / "nlu", embedder=FakeEmbedder())
    assert report.intents == []
    assert load_nlu(tmp_path / "nlu").parse("NC-12345").entity("ORDER_NUMBER") is not None


def test_single_intent_is_refused(tmp_path: Path) -> None:
    from bot.nlu.training import train_nlu

    with pytest.raises(NLUError, match="at least two intents"):
        train_nlu([("hi", "greeting", "en")] * 3, tmp_path / "m", embedder=FakeEmbedder())
