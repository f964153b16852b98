"""Adapt e5 to one knowledge base (opt-in: ``klartext reindex --adapt``).

Customers do not write like a FAQ. The knowledge base itself says which phrasings mean the
same thing: every FAQ entry lists several. Training e5's 12 transformer layers to put the
phrasings of one entry together (and those of different entries apart) lifts dense hit@1 on
the demo shop's customer-style development questions from 0.656 to 0.822 (study and numbers:
``bench/study_e5_kb_tune.py``, docs/benchmarks.md, "e5 tuned on the demo shop's own
phrasings").

Recipe (:data:`RECIPE`; fixed seeds, so the same knowledge base gives the same adapter):

* **pairs**: for each FAQ entry with at least two phrasings, ``query: <one phrasing>`` ->
  ``passage: <another>``, one pair per entry per batch (no same-entry false negatives),
  re-drawn ``draws`` times per epoch; symmetric in-batch cross-entropy at logit scale 20.
* **twins**: entries in different languages whose answers are mutual nearest neighbours with
  cosine >= ``twin_floor`` under the untrained model (likely translations) give cross-language
  pairs, so German questions keep finding English-only content.
* **anchor**: ``anchor`` x the mean (1 - cosine) between the model's vectors of random KB
  phrasings and the untrained ones, which keeps what the pairs do not train.

Only indexed knowledge is read; never questions. The result is an **adapter**: the float32
transformer weights, stored as float16 in ``<index_dir>/adapters/e5kb-<key>.npz`` (plain
arrays, read with ``allow_pickle=False``). ``key`` hashes the recipe, the base model and every
training text, so an unchanged knowledge base reuses its adapter and any change trains a new
one. The index built with it records the embedder ``e5kb:<key>``
(:class:`retrieval.adapted.AdaptedE5Embedder`). Costs on the demo shop (186 entries, 2 cores):
about 100 s and 2 GB of RAM; queries then run a float graph (~10 ms instead of ~7.5 ms).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.schema import EntryKind, KnowledgeBase
from retrieval import store
from retrieval.adapted import ADAPTER_FAMILY, AdaptedE5Embedder, adapter_path, save_adapter
from retrieval.errors import AdaptError
from retrieval.types import Embedder

log = logging.getLogger(__name__)
MIN_GROUPS = 8  # FAQ entries with >= 2 phrasings needed to train anything useful
_LIMIT = 64  # tokens per training text


@dataclass(frozen=True, slots=True)
class Recipe:
    version: int = 1
    epochs: int = 3
    draws: int = 3
    batch: int = 32
    lr: float = 3e-5
    scale: float = 20.0
    anchor: float = 5.0
    twin_floor: float = 0.9
    seed: int = 0


RECIPE = Recipe()


@dataclass(frozen=True, slots=True)
class AdaptReport:
    path: Path
    model: str  # e5kb:<key>
    trained: bool  # False: an adapter for this knowledge base already existed
    groups: int = 0
    twins: int = 0
    steps: int = 0
    seconds: float = 0.0


def _groups(kb: KnowledgeBase) -> list[tuple[str, ...]]:
    return [
        tuple(e.phrasings) for e in kb.entries if e.kind is EntryKind.FAQ and len(e.phrasings) >= 2
    ]


def adapter_key(kb: KnowledgeBase, recipe: Recipe = RECIPE) -> str:
    """Hex key of the adapter ``kb`` would train (recipe, base model, every training text)."""
    from retrieval.embedders import E5_MODEL

    digest = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode())
    digest.update(E5_MODEL.encode())
    for e in sorted(kb.entries, key=lambda e: e.id):
        if e.kind is EntryKind.FAQ:
            payload = [e.id, e.lang, list(e.phrasings), e.answer]
            digest.update(json.dumps(payload, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def ensure_adapter(
    kb: KnowledgeBase,
    index_dir: Path,
    *,
    recipe: Recipe = RECIPE,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
) -> AdaptReport:
    """The adapter for ``kb`` in ``index_dir``: reused when its key exists, else trained."""
    key = adapter_key(kb, recipe)
    path = adapter_path(index_dir, key)
    model = f"{ADAPTER_FAMILY}:{key}"
    if path.is_file():
        return AdaptReport(path, model, trained=False)
    _check_groups(kb)
    t0 = time.monotonic()
    weights, stats = _train(kb, recipe, progress, threads)
    save_adapter(path, weights, {"model": model, "recipe": asdict(recipe), **stats})
    log.info("adapter trained", extra={"model": model, **stats})
    return AdaptReport(path, model, trained=True, seconds=round(time.monotonic() - t0, 1), **stats)


def check_adaptable(kb: KnowledgeBase, base_name: str) -> None:
    """Raise :class:`AdaptError` unless ``kb`` can be adapted to from the embedder named
    ``base_name`` (e5, and at least :data:`MIN_GROUPS` phrasing groups)."""
    from retrieval.embedders import E5_MODEL

    if base_name != f"e5:{E5_MODEL}":
        raise AdaptError(
            f"adapting works on e5 only, but the configured embedder is {base_name!r}: set "
            "KLARTEXT_EMBEDDING_BACKEND=e5 (auto picks e5 for knowledge in other languages "
            "than English)"
        )
    _check_groups(kb)


def _check_groups(kb: KnowledgeBase) -> None:
    groups = len(_groups(kb))
    if groups < MIN_GROUPS:
        raise AdaptError(
            f"adapting needs at least {MIN_GROUPS} FAQ entries with two or more phrasings; "
            f"this knowledge base has {groups}"
        )


def adapted_embedder_for(
    kb: KnowledgeBase,
    index_dir: Path,
    base_name: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
) -> tuple[Embedder, AdaptReport]:
    """The adapted embedder to index ``kb`` with (training its adapter when it is new, on
    ``threads`` torch threads, default all cores). ``base_name``: the configured embedder's
    name, which must be e5's."""
    check_adaptable(kb, base_name)
    report = ensure_adapter(kb, index_dir, progress=progress, threads=threads)
    return AdaptedE5Embedder(report.path), report


def adapted_or_none(
    kb: KnowledgeBase,
    index_dir: Path,
    base_name: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
) -> Embedder | None:
    """For the ``adapt_embeddings`` setting: the adapted embedder, or ``None`` (logged) when
    this knowledge base or the configured embedder cannot be adapted."""
    try:
        return adapted_embedder_for(kb, index_dir, base_name, progress=progress, threads=threads)[0]
    except AdaptError as exc:
        log.warning("not adapting e5 to the knowledge base: %s", exc.message)
        return None


def _train(
    kb: KnowledgeBase,
    recipe: Recipe,
    progress: Callable[[int, int], None] | None,
    threads: int | None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import os

    import torch

    from retrieval.e5onnx._format import E5File
    from retrieval.e5onnx.encoder import default_model_path
    from retrieval.e5onnx.torch_model import TorchE5

    before = torch.get_num_threads()
    torch.set_num_threads(threads or os.cpu_count() or 1)
    try:
        torch.manual_seed(recipe.seed)
        f = E5File(default_model_path())
        e5 = TorchE5(f, _vocab(f, kb))
        anchors = _anchors(e5, kb)
        twins = _twins(e5, kb, recipe.twin_floor)
        rng = random.Random(recipe.seed)
        opt = torch.optim.AdamW(e5.trainable(), lr=recipe.lr, weight_decay=0.01)
        plan = [_batches(kb, rng, recipe.batch, twins) for _ in range(recipe.epochs * recipe.draws)]
        total = sum(len(p) for p in plan)
        done = 0
        if progress is not None:
            progress(0, total)
        e5.model.train()
        for batches in plan:
            for batch in batches:
                q = e5.forward([x for x, _ in batch], query=True, limit=_LIMIT)
                p = e5.forward([y for _, y in batch], query=False, limit=_LIMIT)
                logits = recipe.scale * q @ p.T
                target = torch.arange(len(q))
                ce = torch.nn.functional.cross_entropy
                loss = (ce(logits, target) + ce(logits.T, target)) / 2
                loss = loss + recipe.anchor * _anchor_loss(e5, anchors, rng, recipe.batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
                done += 1
                if progress is not None:
                    progress(done, total)
        stats = {"groups": len(_groups(kb)), "twins": len(twins), "steps": total}
        return e5.layer_weights(), stats
    finally:
        torch.set_num_threads(before)


def _vocab(f: Any, kb: KnowledgeBase) -> set[int]:
    from retrieval.e5onnx.tokenizer import Tokenizer

    tok = Tokenizer(f.tokenizer)
    texts = [t for e in kb.entries for t in (*e.phrasings, e.answer, *store.row_texts(e))]
    return {i for t in texts for p in ("query: ", "passage: ") for i in tok.content_ids(p + t)}


def _twins(e5: Any, kb: KnowledgeBase, floor: float) -> list[tuple[str, str]]:
    """Entry pairs in different languages whose answers are mutual nearest neighbours with
    cosine >= ``floor`` under the untrained model."""
    faq = [e for e in kb.entries if e.kind is EntryKind.FAQ]
    if len({e.lang for e in faq}) < 2:
        return []
    vecs = e5.embed([e.answer for e in faq], query=False)
    sims = vecs @ vecs.T
    out = []
    for i, a in enumerate(faq):
        other = [j for j, b in enumerate(faq) if b.lang != a.lang]
        j = max(other, key=lambda j: sims[i, j])
        back = max((k for k, c in enumerate(faq) if c.lang == a.lang), key=lambda k: sims[j, k])
        if back == i and sims[i, j] >= floor and a.lang < faq[j].lang:
            out.append((a.id, faq[j].id))
    return out


def _batches(
    kb: KnowledgeBase, rng: random.Random, size: int, twins: list[tuple[str, str]]
) -> list[list[tuple[str, str]]]:
    by_id = {e.id: e for e in kb.entries}
    pairs = [tuple(rng.sample(g, 2)) for g in _groups(kb)]
    rng.shuffle(pairs)
    cross = [(rng.choice(by_id[x].phrasings), rng.choice(by_id[y].phrasings)) for x, y in twins]
    cross = [p if rng.random() < 0.5 else (p[1], p[0]) for p in cross]
    rng.shuffle(cross)
    out = [b[i : i + size] for b in (pairs, cross) for i in range(0, len(b), size)]
    return [[(a, b) for a, b in batch] for batch in out if len(batch) >= 2]


Anchors = tuple[list[tuple[str, bool]], Any]


def _anchors(e5: Any, kb: KnowledgeBase) -> Anchors:
    """Every KB phrasing (as query and as passage) with its embedding before training."""
    import torch

    texts = [(t, qy) for e in kb.entries for t in e.phrasings for qy in (True, False)]
    vecs = np.zeros((len(texts), e5.model.config.hidden_size), dtype=np.float32)
    for qy in (True, False):
        idx = [i for i, (_, q) in enumerate(texts) if q == qy]
        vecs[idx] = e5.embed([texts[i][0] for i in idx], query=qy, limit=_LIMIT)
    return texts, torch.from_numpy(vecs)


def _anchor_loss(e5: Any, anchors: Anchors, rng: random.Random, n: int) -> Any:
    import torch

    texts, vecs = anchors
    pick = rng.sample(range(len(texts)), min(n, len(texts)))
    losses = []
    for qy in (True, False):
        idx = [i for i in pick if texts[i][1] == qy]
        if idx:
            now = e5.forward([texts[i][0] for i in idx], query=qy, limit=_LIMIT)
            losses.append((1 - (now * vecs[idx]).sum(1)).mean())
    return torch.stack(losses).mean()
