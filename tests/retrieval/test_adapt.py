"""Adapting e5 to a knowledge base (retrieval.adapt, retrieval.adapted) with the real e5
weights: the float graph equals torch, training pulls an entry's phrasings together, the
adapter file round-trips and is reused, pruned and found again from an index manifest."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from knowledge.loaders import load_knowledge
from knowledge.schema import KnowledgeBase
from retrieval import store
from retrieval.adapt import RECIPE, adapted_embedder_for, adapter_key, ensure_adapter
from retrieval.adapted import AdaptedE5Embedder, adapter_path, load_adapter, save_adapter
from retrieval.e5onnx._format import E5File
from retrieval.e5onnx.encoder import E5OnnxEncoder, default_model_path
from retrieval.e5onnx.torch_model import TorchE5
from retrieval.embedders import E5_MODEL, embedder_from_name
from retrieval.errors import AdaptError
from retrieval.reindex import reindex
from retrieval.search import load_retriever

GROUPS = [
    ("ship", ["How long does delivery take?", "When will my parcel arrive?"]),
    ("pw", ["How do I reset my password?", "I forgot my password"]),
    ("return", ["How can I return an item?", "I want to send something back"]),
    ("pay", ["Which payment methods do you accept?", "Can I pay with PayPal?"]),
    ("voucher", ["How do I redeem a voucher?", "Where do I enter my gift code?"]),
    ("cancel", ["Can I cancel my order?", "I ordered by mistake, stop it"]),
    ("invoice", ["Where is my invoice?", "I need a bill for my purchase"]),
    ("address", ["How do I change my address?", "I moved, update my shipping address"]),
    ("warranty", ["How long is the warranty?", "My device broke after a year"]),
    ("account", ["How do I delete my account?", "Remove all my data please"]),
]
FAST = replace(RECIPE, epochs=2, draws=3, lr=1e-4)  # enough steps to move on ten groups


def _faq(groups: list[tuple[str, list[str]]]) -> str:
    lines = ["lang: en", "entries:"]
    for ident, (q, *alts) in groups:
        lines += [f"  - id: {ident}", f"    question: {q!r}", f"    alt_questions: {alts!r}"]
        lines.append(f"    answer: 'The answer about {ident}.'")
    return "\n".join(lines) + "\n"


def _kb(tmp_path: Path, groups: list[tuple[str, list[str]]] = GROUPS) -> KnowledgeBase:
    root = tmp_path / "kb"
    root.mkdir(exist_ok=True)
    (root / "faq.yaml").write_text(_faq(groups))
    return load_knowledge(root)


def test_float_graph_with_untrained_weights_equals_torch_and_the_4bit_graph() -> None:
    f = E5File(default_model_path())
    texts = ["Wie lange dauert der Versand nach Österreich?", "How do I return a broken item?"]
    vocab = {i for t in texts for i in TorchE5(f, []).tok.content_ids("query: " + t)}
    model = TorchE5(f, vocab)
    adapted = E5OnnxEncoder(overrides=model.layer_weights()).embed(texts, query=True)
    plain = E5OnnxEncoder().embed(texts, query=True)
    torch_rows = model.embed(texts, query=True)
    assert np.min((adapted * torch_rows).sum(1)) > 0.99999
    assert np.min((adapted * plain).sum(1)) > 0.999  # 4-bit graph: int8 activations
    with pytest.raises(ValueError, match="all of"):
        E5OnnxEncoder(overrides={"l0.q.w": model.layer_weights()["l0.q.w"]})


def test_training_pulls_an_entrys_phrasings_together_and_is_reused(tmp_path: Path) -> None:
    kb = _kb(tmp_path)
    index_dir = tmp_path / "idx"
    steps: list[tuple[int, int]] = []
    report = ensure_adapter(kb, index_dir, recipe=FAST, progress=lambda d, n: steps.append((d, n)))
    assert report.trained and report.groups == 10 and report.twins == 0
    assert steps[0] == (0, report.steps) and steps[-1] == (report.steps, report.steps)
    assert report.path == adapter_path(index_dir, adapter_key(kb, FAST))
    assert report.model == f"e5kb:{adapter_key(kb, FAST)}"

    adapted = AdaptedE5Embedder(report.path)
    plain = E5OnnxEncoder()
    first = [g[1][0] for g in GROUPS]
    second = [g[1][1] for g in GROUPS]

    def margin(embed: object) -> float:
        """Mean over entries: cosine to its own other phrasing minus the best other entry's."""
        q = embed(first, query=True)  # type: ignore[operator]
        p = embed(second, query=False)  # type: ignore[operator]
        sims = q @ p.T
        own = np.diag(sims).copy()
        np.fill_diagonal(sims, -1)
        return float(np.mean(own - sims.max(1)))

    before = margin(plain.embed)
    after = margin(lambda t, query: adapted.embed(t, kind="query" if query else "passage"))
    assert after > before + 0.01, (before, after)

    again = ensure_adapter(kb, index_dir, recipe=FAST)
    assert not again.trained and again.path == report.path
    changed = _kb(tmp_path, [*GROUPS[:-1], ("account", ["How do I close my account?", "Bye"])])
    assert adapter_key(changed, FAST) != adapter_key(kb, FAST)


def test_too_few_phrasing_groups_or_another_model_are_refused(tmp_path: Path) -> None:
    small = _kb(tmp_path, GROUPS[:3])
    with pytest.raises(AdaptError, match="at least 8") as exc:
        ensure_adapter(small, tmp_path / "idx")
    assert exc.value.code == "KT304"
    with pytest.raises(AdaptError, match="e5 only"):
        adapted_embedder_for(_kb(tmp_path), tmp_path / "idx", "minilm:all-MiniLM-L6-v2")


def test_adapter_file_round_trip_and_damage(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weights = {"l0.q.w": rng.normal(size=(4, 3)).astype(np.float32), "l0.q.b": np.ones(4, "f4")}
    path = adapter_path(tmp_path, "0123456789abcdef")
    save_adapter(path, weights, {"model": "e5kb:0123456789abcdef"})
    loaded, meta = load_adapter(path)
    assert meta == {"model": "e5kb:0123456789abcdef"}
    assert np.allclose(loaded["l0.q.w"], weights["l0.q.w"], atol=1e-3)  # stored as float16
    assert loaded["l0.q.b"].dtype == np.float32
    path.write_bytes(b"not a zip")
    with pytest.raises(AdaptError, match="unreadable"):
        load_adapter(path)
    with pytest.raises(Exception, match="not an adapter key"):
        adapter_path(tmp_path, "../../etc/passwd")


def test_an_adapted_index_serves_searches_and_unused_adapters_are_pruned(tmp_path: Path) -> None:
    kb = _kb(tmp_path)
    index_dir = tmp_path / "idx"
    embedder, report = adapted_embedder_for(kb, index_dir, f"e5:{E5_MODEL}")
    stale = adapter_path(index_dir, "fedcba9876543210")
    save_adapter(stale, {"x": np.zeros(2, "f4")}, {})
    fresh = adapter_path(index_dir, "0000000000000000")
    save_adapter(fresh, {"x": np.zeros(2, "f4")}, {})
    os.utime(stale, (0, 0))  # an hour old and unused: pruned; the fresh one may be in flight
    os.utime(report.path, (0, 0))  # old but named by the build: kept
    built = reindex(kb, index_dir, embedder)
    assert built.model == report.model
    assert report.path.is_file() and fresh.is_file() and not stale.exists()

    retriever = load_retriever(index_dir, auto_reload_s=None)  # embedder from the manifest
    assert retriever.embedder.name == report.model
    hits = retriever.search("my parcel has not arrived yet, how long does shipping take?", k=3)
    assert hits[0].entry_id == "ship"
    assert store.read_manifest(store.current_build(index_dir)).model == report.model

    report.path.unlink()
    with pytest.raises(AdaptError, match="missing"):
        embedder_from_name(report.model, index_dir)
    with pytest.raises(AdaptError, match="index folder"):
        embedder_from_name(report.model)


def test_a_re_adapted_build_is_followed_through_the_embedder_factory(tmp_path: Path) -> None:
    kb = _kb(tmp_path)
    index_dir = tmp_path / "idx"
    embedder, first = adapted_embedder_for(kb, index_dir, f"e5:{E5_MODEL}")
    reindex(kb, index_dir, embedder)
    made: list[str] = []

    def embedder_for(name: str) -> AdaptedE5Embedder:
        made.append(name)
        return AdaptedE5Embedder(adapter_path(index_dir, name.partition(":")[2]))

    retriever = load_retriever(
        index_dir, embedder=embedder, auto_reload_s=None, embedder_for=embedder_for
    )
    edited = [*GROUPS[:-1], ("account", ["How do I close my account?", "Delete my profile"])]
    kb2 = _kb(tmp_path, edited)
    embedder2, second = adapted_embedder_for(kb2, index_dir, f"e5:{E5_MODEL}")
    assert second.model != first.model and second.trained
    reindex(kb2, index_dir, embedder2)
    assert retriever.reload_if_changed()
    assert made == [second.model] and retriever.embedder.name == second.model
    assert retriever.search("please delete my profile", k=1)[0].entry_id == "account"
