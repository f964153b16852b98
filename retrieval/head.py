"""The entry head: a softmax classifier over a knowledge base's entries, trained on its own
phrasings at reindex time.

Nearest-phrasing search treats every phrasing alike; FAQ entries on neighbouring topics ("How
do I buy a gift card?" / "How do I use a gift card?") are told apart by a few words the
embedding barely weighs. The head is a linear softmax regression from the (frozen) embedding
of a text to the entry it belongs to, fitted on every vector row of the build (each FAQ
phrasing, each passage): it learns which directions separate *this* knowledge base's entries.
At query time (:mod:`retrieval.search`) its log-probability is added to the fused ranking
score and, for embedder families with fitted constants, to the calibrated confidence
(:mod:`retrieval.calibration`). Held-out phrasings of the demo KB: hit@1 0.72 → 0.78
(``bench/calibrate_head.py``, docs/benchmarks.md).

Training is full-batch Adam on NumPy (no torch import; ~1–3 s for the demo's 1,569 rows) and
deterministic. It runs only where it can help and stays cheap: at most
:data:`MAX_HEAD_ENTRIES` entries, at most :data:`MAX_HEAD_WORK` rows × entries, and at least
:data:`MIN_ROWS_PER_ENTRY` rows per entry on average (one phrasing per entry gives the head
nothing to learn). Persisted as ``head_w.npy``,
``head_b.npy`` and ``head_ids.json`` (class order by entry id) in the build — no pickle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

HEAD_W = "head_w.npy"
HEAD_B = "head_b.npy"
HEAD_IDS = "head_ids.json"
HEAD_FILES = (HEAD_W, HEAD_B, HEAD_IDS)

MAX_HEAD_ENTRIES = 5_000
"""Above this many entries the head is not trained (its weights grow with entries × dim)."""
MAX_HEAD_WORK = 2_000_000
"""Training costs ~rows × entries × dim × steps: above this rows × entries the head is skipped
(the demo's 1,569 × 201 ≈ 0.3 M trains in 1–3 s; 2 M is ~15 s on two busy cores)."""
MIN_ROWS_PER_ENTRY = 1.5
L2 = 1e-5
STEPS = 300
LEARNING_RATE = 0.05

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class EntryHead:
    """``log_softmax(x @ weights + bias)`` gives ``log P(entry | text)`` for ``entry_ids``."""

    weights: Floats  # (dim, n_classes)
    bias: Floats  # (n_classes,)
    entry_ids: tuple[str, ...]

    def log_probs(self, vector: Floats) -> Floats:
        z = vector @ self.weights + self.bias
        z = z - z.max()
        out: Floats = (z - np.log(np.exp(z).sum())).astype(np.float32)
        return out

    def save(self, build: Path) -> None:
        np.save(build / HEAD_W, self.weights, allow_pickle=False)
        np.save(build / HEAD_B, self.bias, allow_pickle=False)
        (build / HEAD_IDS).write_text(json.dumps(list(self.entry_ids), ensure_ascii=False))

    @classmethod
    def load(cls, build: Path) -> EntryHead | None:
        """The head saved in ``build``, or None when the build has none."""
        if not all((build / name).is_file() for name in HEAD_FILES):
            return None
        ids = json.loads((build / HEAD_IDS).read_text())
        weights = np.load(build / HEAD_W, allow_pickle=False)
        bias = np.load(build / HEAD_B, allow_pickle=False)
        if weights.shape != (weights.shape[0], len(ids)) or bias.shape != (len(ids),):
            return None
        return cls(weights.astype(np.float32), bias.astype(np.float32), tuple(map(str, ids)))


def should_train(n_entries: int, n_rows: int) -> bool:
    return (
        2 <= n_entries <= MAX_HEAD_ENTRIES
        and n_rows >= MIN_ROWS_PER_ENTRY * n_entries
        and n_rows * n_entries <= MAX_HEAD_WORK
    )


def train_head(
    vectors: Floats,
    row_entry_ids: Sequence[str],
    *,
    l2: float = L2,
    steps: int = STEPS,
    learning_rate: float = LEARNING_RATE,
) -> EntryHead:
    """Fit the softmax regression on ``vectors`` (one row per phrasing/passage) labelled by
    ``row_entry_ids``: full-batch Adam with an L2 penalty, zero initialisation (deterministic)."""
    ids = tuple(dict.fromkeys(row_entry_ids))
    position = {eid: i for i, eid in enumerate(ids)}
    labels = np.fromiter((position[e] for e in row_entry_ids), np.int64, len(row_entry_ids))
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = x.shape
    n_classes = len(ids)
    weights = np.zeros((dim, n_classes), np.float32)
    bias = np.zeros(n_classes, np.float32)
    moments = [np.zeros_like(weights), np.zeros_like(weights), np.zeros_like(bias),
               np.zeros_like(bias)]  # fmt: skip
    rows = np.arange(n)
    for step in range(1, steps + 1):
        z = x @ weights + bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[rows, labels] -= 1.0
        p /= n
        grads = (x.T @ p + l2 * weights, p.sum(axis=0))
        for param, grad, m, v in ((weights, grads[0], moments[0], moments[1]),
                                  (bias, grads[1], moments[2], moments[3])):  # fmt: skip
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            m_hat = m / (1 - 0.9**step)
            v_hat = v / (1 - 0.999**step)
            param -= (learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)
    return EntryHead(weights, bias, ids)


def aligned_head(build: Path, entry_ids: Sequence[str]) -> EntryHead | None:
    """The build's head with one class per entry of ``entry_ids``, in that order (an entry the
    head was not trained on gets a bias that rules it out of the head's vote)."""
    head = EntryHead.load(build)
    if head is None:
        return None
    col = {eid: i for i, eid in enumerate(head.entry_ids)}
    weights = np.zeros((head.weights.shape[0], len(entry_ids)), np.float32)
    bias = np.full(len(entry_ids), -1e4, np.float32)
    for pos, eid in enumerate(entry_ids):
        i = col.get(eid)
        if i is not None:
            weights[:, pos] = head.weights[:, i]
            bias[pos] = head.bias[i]
    return EntryHead(weights, bias, tuple(entry_ids))
