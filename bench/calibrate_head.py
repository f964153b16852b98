"""Measure the entry head (``retrieval.head``) and fit its confidence constants
(``retrieval.calibration.HEAD_CALIBRATIONS``) on development data only.

    nice -n 10 .venv/bin/python bench/calibrate_head.py [--backend e5] [--folds 5]

Data (never a test split; ``tests/data/answers_demo.yaml`` is not read):
* held-out phrasings of the demo KB (``knowledge/demo``): the FAQ phrasings are split into
  ``--folds`` folds; for each fold the KB is indexed without them (real ``reindex``, head
  included) and each held-out phrasing is a query whose answer is its own entry;
* ``bench/data/retrieval_dev_demo.csv`` (development paraphrases; empty id = out of scope) and
  ``bench/data/retrieval_dev_demo_hard.csv`` (scenario-style paraphrases in other words than
  the FAQ's, plus shop-plausible questions the KB cannot answer; written without looking at
  the answer test set);
* out-of-domain negatives: 150 BANKING77 *train* questions (seed 0) against the demo KB.

For every query the top hit (language preferred as the bot does) gives the embedding-only
calibration logit ``z``, the head's ``log P(entry)`` and the label "top hit is a correct
entry". A logistic regression on ``(z, logp)`` gives the head calibration; its bias is shifted
so that score 0.5 sits at fitted probability 0.7. Prints hit@1 with and without the head, the
answered-correct / false-answer rates at 0.5 for both scores, and one JSON object last.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from knowledge.loaders import load_knowledge  # noqa: E402
from knowledge.schema import Entry, EntryKind, KnowledgeBase  # noqa: E402
from retrieval.calibration import HEAD_RANK_WEIGHTS, calibration_for  # noqa: E402
from retrieval.embedders import make_embedder  # noqa: E402
from retrieval.head import aligned_head  # noqa: E402
from retrieval.reindex import reindex  # noqa: E402
from retrieval.search import HybridRetriever  # noqa: E402
from retrieval.store import current_build  # noqa: E402

Query = tuple[str, set[str], str]  # text, expected ids (empty = refuse), lang


def _shared() -> Path:
    env = os.environ.get("KLARTEXT_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _without(entry: Entry, drop: set[int]) -> Entry:
    kept = [p for i, p in enumerate(entry.phrasings) if i not in drop]
    return replace(entry, question=kept[0], alt_questions=tuple(kept[1:]))


def _folds(kb: KnowledgeBase, n: int) -> list[tuple[KnowledgeBase, list[Query]]]:
    rng = random.Random(0)
    slots = [
        (e.id, i)
        for e in kb.entries
        if e.kind is EntryKind.FAQ and len(e.phrasings) >= 2
        for i in range(len(e.phrasings))
    ]
    rng.shuffle(slots)
    out = []
    for k in range(n):
        held = slots[k::n]
        drop: dict[str, set[int]] = {}
        for eid, i in held:
            drop.setdefault(eid, set()).add(i)
        by_id = kb.by_id()
        for eid, idx in drop.items():  # every entry keeps at least one phrasing
            if len(idx) >= len(by_id[eid].phrasings):
                idx.discard(min(idx))
        entries = [_without(e, drop[e.id]) if e.id in drop else e for e in kb.entries]
        queries = [(by_id[eid].phrasings[i], {eid}, by_id[eid].lang)
                   for eid, idx in drop.items() for i in idx]  # fmt: skip
        out.append((KnowledgeBase(root=kb.root, entries=entries), queries))
    return out


def _read(name: str) -> list[Query]:
    with (REPO / "bench" / "data" / name).open(encoding="utf-8") as fh:
        return [(r["query"], {i for i in r["expected_id"].split("|") if i}, r["lang"] or "en")
                for r in csv.DictReader(fh)]  # fmt: skip


def _dev_queries() -> tuple[list[Query], list[Query], list[Query]]:
    dev, hard = _read("retrieval_dev_demo.csv"), _read("retrieval_dev_demo_hard.csv")
    neg: list[Query] = []
    train = _shared() / "banking77" / "train.csv"
    if train.is_file():
        with train.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        neg = [(r["text"], set(), "en") for r in random.Random(0).sample(rows, 150)]
    return dev, hard, neg


def _rows(index_dir: Path, embedder: Any, queries: list[Query], tag: str) -> list[dict[str, Any]]:
    build = current_build(index_dir)
    retr = {h: HybridRetriever(index_dir, embedder, use_head=h) for h in (True, False)}
    ids = list(retr[True].entries)
    head = aligned_head(build, ids)
    cal = calibration_for(embedder.name)
    out = []
    for text, expected, lang in queries:
        row: dict[str, Any] = {"tag": tag, "answerable": bool(expected)}
        for use, r in retr.items():
            hits = r.search(text, k=5, lang=lang)
            same = [h for h in hits if h.lang == lang] or hits
            top = same[0]
            z = cal.logit(top.dense_score or 0.0, r.coverage(text, top.entry_id))
            logp = -30.0
            if head is not None:
                qvec = embedder.embed([text], kind="query")[0]
                logp = float(head.log_probs(qvec)[ids.index(top.entry_id)])
            key = "head" if use else "plain"
            row[key] = {"z": z, "logp": logp, "correct": top.entry_id in expected}
        out.append(row)
    return out


def _rates(rows: list[dict[str, Any]], key: str, score: Any) -> dict[str, float]:
    answerable = [r for r in rows if r["answerable"]]
    answered = [r for r in rows if score(r[key]) >= 0.5]
    good = sum(r[key]["correct"] for r in answered)
    return {
        "hit@1": round(sum(r[key]["correct"] for r in answerable) / max(1, len(answerable)), 3),
        "correct_answered": round(good / max(1, len(answerable)), 3),
        "false_answer": round((len(answered) - good) / max(1, len(rows)), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="e5")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--rank-weight",
        type=float,
        default=None,
        help="override HEAD_RANK_WEIGHTS for the backend (for a sweep)",
    )
    args = ap.parse_args()
    if args.rank_weight is not None:
        HEAD_RANK_WEIGHTS[args.backend] = args.rank_weight
    from sklearn.linear_model import LogisticRegression

    kb = load_knowledge(REPO / "knowledge" / "demo")
    embedder = make_embedder(args.backend, None, ["en", "de"])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (fold_kb, queries) in enumerate(_folds(kb, args.folds)):
            reindex(fold_kb, Path(tmp) / f"fold{k}", embedder, hnsw_threshold=10**9)
            rows += _rows(Path(tmp) / f"fold{k}", embedder, queries, "held_out")
            print(f"fold {k}: {len(queries)} held-out phrasings", file=sys.stderr)
        reindex(kb, Path(tmp) / "full", embedder, hnsw_threshold=10**9)
        dev, hard, neg = _dev_queries()
        rows += _rows(Path(tmp) / "full", embedder, dev, "dev")
        rows += _rows(Path(tmp) / "full", embedder, hard, "dev_hard")
        rows += _rows(Path(tmp) / "full", embedder, neg, "negative")
    x = np.array([[r["head"]["z"], r["head"]["logp"]] for r in rows])
    y = np.array([int(r["head"]["correct"]) for r in rows])
    fit = LogisticRegression(max_iter=1000).fit(x, y)
    zw, lw = (float(v) for v in fit.coef_[0])
    bias = float(fit.intercept_[0]) - math.log(0.7 / 0.3)

    def plain(f: dict[str, Any]) -> float:
        return 1 / (1 + math.exp(-f["z"]))

    def with_head(f: dict[str, Any]) -> float:
        if plain(f) < 0.15:
            return plain(f)
        return 1 / (1 + math.exp(-(zw * f["z"] + lw * f["logp"] + bias)))

    report: dict[str, Any] = {
        "backend": embedder.name, "n": len(rows), "rank_weight": HEAD_RANK_WEIGHTS.get(args.backend)
    }  # fmt: skip
    for tag in ("held_out", "dev", "dev_hard", "negative"):
        sub = [r for r in rows if r["tag"] == tag]
        report[tag] = {
            "n": len(sub),
            "plain": _rates(sub, "plain", plain),
            "head": _rates(sub, "head", with_head),
        }
        print(tag, json.dumps(report[tag]))
    report["head_calibration"] = {
        "z_weight": round(zw, 3), "logp_weight": round(lw, 3), "bias": round(bias, 3)
    }  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
