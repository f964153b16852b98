"""The contrastive encoder fine-tune: loss, batches, policy, and one real (tiny) training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from nlu_fakes import FakeEmbedder, toy_examples

from bot.nlu.finetune import (
    ENCODER_DIR,
    FinetuneConfig,
    FinetunedEmbedder,
    _batches,
    finetune_config,
    supcon_loss,
)
from bot.nlu.pipeline import NLU, load_nlu, read_manifest
from bot.nlu.training import TrainReport, train_if_changed, train_nlu

TINY = FinetuneConfig(epochs=6, batch_size=16, per_intent=4, lr=2e-4, min_steps=1, max_cpu_s=120)


def _spread(vectors: np.ndarray, labels: list[str]) -> float:
    """Mean same-intent cosine minus mean different-intent cosine."""
    sims = vectors @ vectors.T
    same = np.array([[a == b for b in labels] for a in labels])
    np.fill_diagonal(same, False)
    other = ~same
    np.fill_diagonal(other, False)
    return float(sims[same].mean() - sims[other].mean())


def test_supcon_loss_prefers_tight_clusters() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    tight = torch.nn.functional.normalize(
        torch.tensor([[1, 0.01], [1, -0.01], [0.01, 1], [-0.01, 1]])
    )
    mixed = torch.nn.functional.normalize(
        torch.tensor([[1, 0.01], [0.01, 1], [1, -0.01], [-0.01, 1]])
    )
    assert float(supcon_loss(tight, labels, 0.1)) < float(supcon_loss(mixed, labels, 0.1))


def test_batches_hold_several_examples_of_each_intent() -> None:
    y = [i % 5 for i in range(50)]
    batches = _batches(y, FinetuneConfig(batch_size=12, per_intent=4), steps=7)
    assert len(batches) == 7
    for batch in batches:
        counts = np.bincount([y[i] for i in batch], minlength=5)
        assert len(batch) == 12 and sorted(c for c in counts if c) == [4, 4, 4]


def test_cv_folds_partition_the_rows() -> None:
    from bot.nlu.classifier import cv_folds

    intents = [i for _, i, _ in toy_examples()]
    folds = cv_folds(intents)
    assert len(folds) == 3
    assert sorted(int(i) for f in folds for i in f) == list(range(len(intents)))
    assert cv_folds(["a", "b", "b"]) == []  # an intent with one example: no cross-validation


def test_policy_auto_only_for_minilm() -> None:
    assert finetune_config("auto", "minilm:all-MiniLM-L6-v2") is not None
    assert finetune_config("auto", "e5:multilingual-e5-small-q4") is None
    assert finetune_config("on", "e5:multilingual-e5-small-q4") is not None
    assert finetune_config("off", "minilm:all-MiniLM-L6-v2") is None
    with pytest.raises(ValueError):
        finetune_config("sometimes", "minilm:all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainReport]:
    out = tmp_path_factory.mktemp("ft") / "nlu"
    report = train_nlu(toy_examples(), out, embedder=FakeEmbedder(), finetune=TINY)
    return out, report


def test_finetune_tightens_intent_clusters(trained: tuple[Path, TrainReport]) -> None:
    from sentence_transformers import SentenceTransformer

    from bot.nlu.finetune import _base_model_path

    out, report = trained
    texts = [t for t, _, _ in toy_examples()]
    intents = [i for _, i, _ in toy_examples()]
    base = SentenceTransformer(_base_model_path(), device="cpu")
    before = base.encode(texts, normalize_embeddings=True)
    after = FinetunedEmbedder(out / ENCODER_DIR).embed(texts)
    assert report.finetune["loss_last"] < report.finetune["loss_first"]
    assert _spread(after, intents) > _spread(before, intents) + 0.05


def test_model_folder_has_the_encoder_and_no_pickles(trained: tuple[Path, TrainReport]) -> None:
    out, report = trained
    manifest = read_manifest(out)
    assert manifest["encoder"] == ENCODER_DIR
    assert manifest["embedder"].startswith("minilm-ft:") and manifest["embedder"] == report.embedder
    assert manifest["base_embedder"] == FakeEmbedder().name
    assert report.finetune["steps"] > 0
    assert report.finetune["crossfit_folds"] == 3  # small file: one fine-tune per CV fold
    assert (out / ENCODER_DIR / "model.safetensors").is_file()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not {p.suffix for p in files} & {".pkl", ".pickle", ".pt", ".joblib"}
    assert not [p for p in files if p.suffix == ".bin" and ENCODER_DIR in p.parts]  # torch.save


def test_saved_and_loaded_models_predict_identically(trained: tuple[Path, TrainReport]) -> None:
    out, _report = trained
    probes = [t for t, _, _ in toy_examples()] + ["what is the weather", "wo bleibt mein paket"]
    first = load_nlu(out, embedder=FakeEmbedder())  # another embedder: the saved one is used
    second = load_nlu(out)
    assert isinstance(first.embedder, FinetunedEmbedder)
    a, b = first.parse_many(probes), second.parse_many(probes)
    assert [(m.intent, m.ranking, m.out_of_scope) for m in a] == [
        (m.intent, m.ranking, m.out_of_scope) for m in b
    ]
    right = sum(m.intent == i for m, (_, i, _) in zip(a, toy_examples(), strict=False))
    assert right >= 0.9 * len(toy_examples())


def test_single_message_parse_matches_batch(trained: tuple[Path, TrainReport]) -> None:
    out, _report = trained
    nlu: NLU = load_nlu(out)
    probes = ["where is my order", "hallo zusammen", "I want to talk to a human"]
    batch = nlu.parse_many(probes)
    single = [nlu.parse(t) for t in probes]
    assert [m.intent for m in single] == [m.intent for m in batch]
    assert nlu.embedder is not None
    one = np.vstack([nlu.embedder.embed([t]) for t in probes])
    many = nlu.embedder.embed(probes * 4)[: len(probes)]  # 12 texts: the batch path
    assert float((one * many).sum(axis=1).min()) > 0.9999


def test_train_if_changed_keeps_a_finetuned_model(
    tmp_path: Path, knowledge_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.nlu.finetune as ft

    few = FinetuneConfig(min_steps=2)
    monkeypatch.setattr(ft, "finetune_config", lambda mode, _name: few if mode == "on" else None)
    out = tmp_path / "nlu"
    (knowledge_dir / "intents.yaml").write_text(
        json.dumps(
            {
                "intents": {
                    "hi": {"en": ["hi", "hello", "hey"]},
                    "bye": {"en": ["bye", "ciao", "see you"]},
                }
            }
        )
    )
    fake = FakeEmbedder()
    assert train_if_changed(knowledge_dir, out, embedder_factory=lambda: fake, finetune="on")
    assert read_manifest(out)["encoder"] == ENCODER_DIR
    assert not train_if_changed(knowledge_dir, out, embedder_factory=lambda: fake, finetune="on")
    assert train_if_changed(knowledge_dir, out, embedder_factory=lambda: fake, finetune="off")
    assert read_manifest(out)["encoder"] is None
