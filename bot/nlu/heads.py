"""Classifier heads: softmax regression (:class:`LinearHead`) and a one-hidden-layer MLP
(:class:`MLPHead`). Training uses scikit-learn / torch; inference is numpy only, and the weights
are plain arrays (saved as ``.npy`` by the classifier)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


def _softmax(logits: Matrix) -> Matrix:
    logits = logits - logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


@dataclass
class LinearHead:
    weights: Matrix  # (features, classes)
    bias: Matrix  # (classes,)

    def proba(self, x: Any) -> Matrix:
        return _softmax(np.asarray(x @ self.weights, dtype=np.float32) + self.bias)

    def arrays(self) -> dict[str, Matrix]:
        return {"w": self.weights, "b": self.bias}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Matrix]) -> LinearHead:
        return cls(arrays["w"], arrays["b"])


def fit_linear(x: Any, y: Labels, n_classes: int, c: float, max_iter: int) -> LinearHead:
    """Multinomial logistic regression (L2, ``C=c``); classes absent from ``y`` never win."""
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y)
    model = LogisticRegression(C=c, max_iter=max_iter, tol=1e-3)
    model.fit(x, y)
    coef = np.asarray(model.coef_, dtype=np.float32)
    intercept = np.asarray(model.intercept_, dtype=np.float32)
    if len(present) == 2:  # sklearn returns one row for binary problems
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
    weights = np.zeros((x.shape[1], n_classes), dtype=np.float32)
    bias = np.full(n_classes, -1e4, dtype=np.float32)
    weights[:, present] = coef.T
    bias[present] = intercept
    return LinearHead(weights, bias)


def _gelu(x: Matrix) -> Matrix:
    out = 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))
    return np.asarray(out, dtype=np.float32)


@dataclass
class MLPHead:
    w1: Matrix  # (features, hidden)
    b1: Matrix
    w2: Matrix  # (hidden, classes)
    b2: Matrix

    def proba(self, x: Any) -> Matrix:
        hidden = _gelu(np.asarray(x, dtype=np.float32) @ self.w1 + self.b1)
        return _softmax(hidden @ self.w2 + self.b2)

    def arrays(self) -> dict[str, Matrix]:
        return {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Matrix]) -> MLPHead:
        return cls(arrays["w1"], arrays["b1"], arrays["w2"], arrays["b2"])


def fit_mlp(
    x: Matrix,
    y: Labels,
    n_classes: int,
    *,
    hidden: int = 1024,
    epochs: int = 30,
    batch_size: int = 128,
    dropout: float = 0.3,
    seed: int = 0,
) -> MLPHead:
    """Dropout → Linear → GELU → Dropout → Linear, AdamW + one-cycle LR, label smoothing 0.1."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small matmuls: one thread is faster, and robust on a busy host
    try:
        return _train_mlp(x, y, n_classes, hidden, epochs, batch_size, dropout, seed)
    finally:
        torch.set_num_threads(previous)


def _train_mlp(
    x: Matrix,
    y: Labels,
    n_classes: int,
    hidden: int,
    epochs: int,
    batch_size: int,
    dropout: float,
    seed: int,
) -> MLPHead:
    import torch

    torch.manual_seed(seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    first = torch.nn.Linear(xt.shape[1], hidden)
    second = torch.nn.Linear(hidden, n_classes)
    net = torch.nn.Sequential(
        torch.nn.Dropout(0.1),
        first,
        torch.nn.GELU(approximate="tanh"),
        torch.nn.Dropout(dropout),
        second,
    )
    steps_per_epoch = max(1, (len(yt) + batch_size - 1) // batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=epochs * steps_per_epoch
    )
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(yt), generator=gen)
        for i in range(0, len(yt), batch_size):
            idx = perm[i : i + batch_size]
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
    with torch.no_grad():
        return MLPHead(
            first.weight.T.contiguous().numpy().astype(np.float32),
            first.bias.numpy().astype(np.float32),
            second.weight.T.contiguous().numpy().astype(np.float32),
            second.bias.numpy().astype(np.float32),
        )
