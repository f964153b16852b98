"""Knowledge-gap clustering (bot.stats) with deterministic embedders."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bot.stats import HashingEmbedder, cluster_cosine, cluster_questions, redact


class TopicEmbedder:
    """Texts mentioning the same topic word map to the same axis (plus a little noise)."""

    name = "topic:test"
    dim = 4
    topics = (("parcel", "package", "delivery"), ("invoice", "bill"), ("unicorn",))

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            axis = next(
                (a for a, words in enumerate(self.topics) if any(w in t.lower() for w in words)),
                3,
            )
            out[i, axis] = 1.0
            out[i, 3] += 0.1 * (len(t) % 3)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


def test_clusters_by_meaning_counted_and_ranked() -> None:
    texts = [
        "Where is my parcel?",
        "where is my parcel?",
        "WHERE IS MY PARCEL?",
        "My package never arrived",
        "delivery is late",
        "Can I get an invoice?",
        "send the bill to a@b.example",
        "do you sell unicorns",
    ]
    gaps = cluster_questions(texts, TopicEmbedder(), threshold=0.9, top=2, examples=2)
    assert [g.count for g in gaps] == [5, 2]
    assert gaps[0].examples[0] == "Where is my parcel?"  # the most frequent wording first
    assert gaps[0].representative in {"Where is my parcel?", "My package never arrived",
                                      "delivery is late"}  # fmt: skip
    assert "send the bill to <email>" in gaps[1].examples
    assert cluster_questions([], TopicEmbedder(), threshold=0.5) == []


def test_hashing_embedder_is_deterministic_and_lexical() -> None:
    emb = HashingEmbedder()
    a, b, c = emb.embed(["where is my parcel", "where is my parcel?", "refund policy"])
    assert np.allclose(emb.embed(["where is my parcel"])[0], a)
    assert float(a @ b) > 0.95 > 0.3 > float(a @ c)
    assert abs(float(np.linalg.norm(c)) - 1.0) < 1e-5


def test_threshold_mapping_and_redaction() -> None:
    assert cluster_cosine(0.6, "minilm:all-MiniLM-L6-v2") == 0.6
    assert abs(cluster_cosine(0.6, "e5:multilingual-e5-small") - (1 - 0.4 * 0.28)) < 1e-9
    assert redact("mail x.y+z@shop.example.de now") == "mail <email> now"
