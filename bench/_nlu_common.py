"""Shared bits of the NLU benchmarks: data paths, a validation split, an embedding cache."""

from __future__ import annotations

import hashlib
import os
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.types import Embedder, Vectors

if TYPE_CHECKING:
    import argparse

    from bot.nlu.finetune import FinetuneConfig

DATA = Path(
    os.environ.get("KLARTEXT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def val_split(
    rows: list[tuple[str, str]], frac: float = 0.15, seed: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Stratified hold-out of ``frac`` of each intent (for tuning; never tune on test.csv)."""
    by_intent: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_intent[row[1]].append(row)
    rng = random.Random(seed)
    train, val = [], []
    for intent in sorted(by_intent):
        items = by_intent[intent][:]
        rng.shuffle(items)
        k = max(1, round(len(items) * frac))
        val += items[:k]
        train += items[k:]
    return train, val


class CachedEmbedder:
    """Wraps an embedder with an on-disk per-text cache (tuning runs only: the reported
    training times of the final runs are measured without it)."""

    def __init__(self, inner: Embedder, cache_dir: Path) -> None:
        self.inner = inner
        self.dir = cache_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._mem: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def _key(self, text: str, kind: str) -> str:
        return hashlib.sha1(f"{self.name}|{kind}|{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        store = self.dir / f"{hashlib.sha1(self.name.encode()).hexdigest()[:10]}-{kind}.npz"
        if not self._mem and store.is_file():
            with np.load(store) as z:
                self._mem = {k: z[k] for k in z.files}
        keys = [self._key(t, kind) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in self._mem]
        if missing:
            vecs = self.inner.embed([texts[i] for i in missing], kind=kind)
            for i, v in zip(missing, vecs, strict=True):
                self._mem[keys[i]] = v
            if len(missing) > 50:
                save: Any = np.savez  # numpy's stub types **arrays as its bool flag
                save(store, **self._mem)
        return np.stack([self._mem[k] for k in keys]).astype(np.float32)


def ft_config(args: argparse.Namespace) -> FinetuneConfig | None:
    """The encoder fine-tune asked for by ``--finetune`` / ``--ft-*`` (None: frozen encoder)."""
    if not args.finetune:
        return None
    from bot.nlu.finetune import FinetuneConfig

    cfg = FinetuneConfig()
    for field, value in (
        ("epochs", args.ft_epochs),
        ("lr", args.ft_lr),
        ("train_layers", args.ft_layers),
    ):
        if value is not None:
            setattr(cfg, field, value)
    return cfg
