"""The out-of-scope rule (bot.nlu.oos) on hand-made signals."""

from __future__ import annotations

import numpy as np

from bot.nlu.oos import ExampleIndex, OOSRule, low_quantile, signals


def test_knn_similarity_uses_only_the_predicted_intent() -> None:
    vecs = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], dtype=np.float32)
    index = ExampleIndex.build(vecs, np.array([1, 0, 0, 1]), 3)
    query = np.array([[1, 0], [1, 0], [1, 0]], dtype=np.float32)
    sims = index.knn_similarity(query, np.array([0, 1, 2]), k=1)
    assert np.allclose(sims, [0.8, 1.0, 0.0])  # intent 2 has no examples
    assert np.allclose(index.knn_similarity(query[:1], np.array([1]), k=2), [0.8])


def test_signals_top_and_margin() -> None:
    sig = signals(
        np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1]], dtype=np.float32),
        np.zeros(2, dtype=np.float32),
    )
    assert np.allclose(sig["top"], [0.7, 0.5])
    assert np.allclose(sig["margin"], [0.5, 0.1])


def test_rule_rejects_low_combined_score_and_far_messages() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    sig = {
        "top": rng.uniform(0.6, 1.0, n).astype(np.float32),
        "margin": rng.uniform(0.3, 1.0, n).astype(np.float32),
        "knn": rng.uniform(0.5, 0.9, n).astype(np.float32),
    }
    centroid = rng.uniform(0.4, 0.9, n).astype(np.float32)
    rule = OOSRule.fit(
        sig, centroid, np.ones(n, dtype=np.bool_), quantile=0.01, far_quantile=0.002, k=3
    )
    rejected = rule.reject(sig, centroid).mean()
    assert 0.005 <= rejected <= 0.02  # about the requested share of in-scope answers
    weak = {"top": np.array([0.3]), "margin": np.array([0.02]), "knn": np.array([0.3])}
    strong = {"top": np.array([0.99]), "margin": np.array([0.9]), "knn": np.array([0.85])}
    assert rule.reject(weak, np.array([0.8])).tolist() == [True]
    assert rule.reject(strong, np.array([0.8])).tolist() == [False]
    assert rule.reject(strong, np.array([0.0])).tolist() == [True]  # far from every intent


def test_low_quantile_small_samples_use_normal_approximation() -> None:
    values = np.array([0.5, 0.6, 0.7, 0.8], dtype=np.float32)
    assert low_quantile(values, 0.01) < float(values.min())
