"""The out-of-scope rule (bot.nlu.oos) on hand-made signals."""

from __future__ import annotations

import numpy as np

from bot.nlu.oos import LEGACY_SIGNALS, SIGNALS, ExampleIndex, OOSRule, low_quantile, signals


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


def _unit(angles: list[float]) -> np.ndarray:
    a = np.radians(np.array(angles, dtype=np.float64))
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


def test_knn_z_judges_each_intent_on_its_own_scale() -> None:
    # intent 0: tight (neighbours 2° apart); intent 1: loose (neighbours 30° apart)
    vecs = np.vstack([_unit([0, 2, 4, 6]), _unit([90, 120, 150, 180])])
    index = ExampleIndex.build(vecs, np.array([0, 0, 0, 0, 1, 1, 1, 1]), 2)
    loo = index.loo_stats(1)
    assert loo[0, 0] > 0.99 and 0.8 < loo[0, 1] < 0.9  # mean leave-one-out 1-NN cosine
    # both queries are 20° from their intent's nearest example: raw cosine equal...
    query = _unit([-20, 200])
    raw = index.knn_similarity(query, np.array([0, 1]), 1)
    assert np.isclose(raw[0], raw[1])
    # ...but far for the tight intent and ordinary for the loose one
    z = index.knn_z(query, np.array([0, 1]))
    assert z[0] < -0.9 and z[1] > 0.5  # (intent 0's std is shrunk towards the pooled one)
    assert index.loo is not None and index.loo_k == 1


def test_loo_stats_pool_intents_without_two_examples() -> None:
    vecs = np.vstack([_unit([0, 10, 20]), _unit([90])])
    index = ExampleIndex.build(vecs, np.array([0, 0, 0, 1]), 3)
    loo = index.loo_stats(1)
    assert np.allclose(loo[:, 1], loo[:, 2])  # one example / none: pooled statistics
    assert np.isclose(loo[0, 1], loo[0, 0])  # the pool is intent 0's values only
    assert np.all(loo[1] > 0)


def test_rule_spec_round_trip_and_format_2_specs() -> None:
    sig = {n: np.linspace(0, 1, 300, dtype=np.float32) for n in SIGNALS}
    rule = OOSRule.fit(
        sig, np.ones(300, np.float32), np.ones(300, bool), quantile=0.02, far_quantile=0.0, k=1
    )
    again = OOSRule.from_dict(rule.as_dict(), rule.threshold, rule.far_threshold)
    assert (again.names, again.k, again.knn_name) == (SIGNALS, 1, "knn_z")
    np.testing.assert_allclose(again.score(sig), rule.score(sig))
    legacy = {
        "means": dict.fromkeys(LEGACY_SIGNALS, 0.5),
        "stds": dict.fromkeys(LEGACY_SIGNALS, 1.0),
        "k": 3,
    }
    old = OOSRule.from_dict(legacy, 0.0, -1.0)
    assert (old.names, old.k, old.knn_name) == (LEGACY_SIGNALS, 3, "knn")
