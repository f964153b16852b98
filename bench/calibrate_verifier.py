"""Fit the answerability verifier (``retrieval.verifier.VERIFIERS``) on development data only,
with cross-validation, and print its constants.

    nice -n 10 .venv/bin/python bench/calibrate_verifier.py [--backend e5] [--cache DIR]

Data (never a test split; ``tests/data/answers_demo.yaml`` is not read): 5 folds of held-out
demo-KB phrasings (each fold indexed without its phrasings, real ``reindex`` with the entry
head), ``bench/data/retrieval_dev_demo.csv``, ``bench/data/retrieval_dev_demo_hard.csv`` and
150 BANKING77 *train* questions as out-of-domain negatives (see ``bench/calibrate_head.py``).

Per query it records the signals of every entry (cosine of the best phrasing, BM25, coverage,
head log-probability, whether the entry is in the retriever's candidate pool) once (~8 min;
``--cache`` keeps them), then replays the retriever's ranking and the engine's decision
(language preference, ``bot.decide.judge``'s rules) offline:

* **CV**: 5 folds (held-out fold k + every 5th paraphrase/negative); the verifier is fitted on
  four, the threshold chosen on those four and both applied to the fifth. ``--rule false``
  (default): the lowest fitted probability with false answers ≤ ``--max-false`` of all their
  queries; ``--rule match``: the highest one that still answers as many of them correctly as
  the current calibration (entry head) at 0.5. Reported per set next to that calibration, with
  the share of refused answerable questions whose right entry is among the near-miss
  suggestions, and the most right answers at 1/2/3/5 % false answers for both scores.
* **Final**: fitted on everything, threshold chosen the same way, bias shifted so that score 0.5
  is that threshold. The last line is one JSON object; ``weights``/``bias`` go into
  ``retrieval/verifier.py``. ``--sweep`` also prints hit@1 for other fusion / head weights.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate_head as ch

from knowledge.loaders import load_knowledge
from knowledge.schema import EntryKind
from retrieval.calibration import (
    HEAD_RANK_WEIGHTS,
    calibration_for,
    head_calibration_for,
)
from retrieval.embedders import make_embedder
from retrieval.lexical import tokenize
from retrieval.reindex import reindex
from retrieval.search import FUSION_WEIGHTS, HybridRetriever
from retrieval.verifier import FEATURES, candidate_features

SETS = ["dev", "dev_hard", "negative"] + [f"held_out{k}" for k in range(5)]
TOP_N = 5  # candidates per query the verifier is fitted on (in ranking order)
SET_WEIGHTS = {"held_out": 0.3}  # 1,520 held-out phrasings vs 320 paraphrases: balance them


# --- signals ------------------------------------------------------------------------------
def _dump(index_dir: Path, embedder: Any, queries: list[ch.Query], out: Path) -> None:
    retr = HybridRetriever(index_dir, embedder)
    snap = retr._state.snap
    n_ent = len(snap.entries)
    rows: dict[str, list[Any]] = {k: [] for k in ("cos", "bm25", "cov", "logp", "pool")}
    for text, _expected, _lang in queries:
        qvec = embedder.embed([text], kind="query")[0]
        logp = snap.head.log_probs(qvec) if snap.head is not None else np.zeros(n_ent, np.float32)
        retr.candidates = 10**6
        full = retr._candidates(snap, text, qvec, "weighted", logp)
        retr.candidates = 50
        pool = {c.entry for c in retr._candidates(snap, text, qvec, "weighted", logp)}
        arrays = np.full(n_ent, -1.0), np.zeros(n_ent), np.zeros(n_ent)
        for c in full:
            arrays[0][c.entry], arrays[1][c.entry], arrays[2][c.entry] = (
                c.cosine,
                c.bm25,
                c.coverage,
            )
        for key, arr in zip(("cos", "bm25", "cov"), arrays, strict=True):
            rows[key].append(arr.astype(np.float32))
        rows["logp"].append(np.asarray(logp, np.float32))
        rows["pool"].append(np.isin(np.arange(n_ent), list(pool)))
    meta = {
        "entries": [e.id for e in snap.entries],
        "lang": [e.lang for e in snap.entries],
        "queries": [q for q, _, _ in queries],
        "expected": [sorted(x) for _, x, _ in queries],
        "qlang": [lg for _, _, lg in queries],
        "ntok": [len(tokenize(q)) for q, _, _ in queries],
        "model": embedder.name,
    }
    stacked: dict[str, Any] = {k: np.stack(v) for k, v in rows.items()}
    np.savez_compressed(out.with_suffix(".npz"), **stacked)
    out.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False))


def collect(out: Path, backend: str, folds: int) -> None:
    kb = load_knowledge(ch.REPO / "knowledge" / "demo")
    embedder = make_embedder(backend, None, ["en", "de"])
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="kt-verifier-") as tmp:
        reindex(kb, Path(tmp) / "full", embedder, hnsw_threshold=10**9)
        dev, hard, neg = ch._dev_queries()
        for tag, qs in (("dev", dev), ("dev_hard", hard), ("negative", neg)):
            _dump(Path(tmp) / "full", embedder, qs, out / tag)
            print(f"# {tag}: {len(qs)} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
        for k, (fold_kb, queries) in enumerate(ch._folds(kb, folds)):
            reindex(fold_kb, Path(tmp) / f"fold{k}", embedder, hnsw_threshold=10**9)
            _dump(Path(tmp) / f"fold{k}", embedder, queries, out / f"held_out{k}")
            print(f"# fold {k}: {len(queries)} ({time.time() - t0:.0f} s)", file=sys.stderr,
                  flush=True)  # fmt: skip


# --- offline replay -----------------------------------------------------------------------
def _same_section(kb_root: Path) -> dict[str, set[str]]:
    """FAQ id -> the help-page passages at the FAQ's own ``url`` (the page section it links
    to answers it too; the development CSVs list such passages as correct, e.g.
    ``en-ship-01|page-shipping#delivery-times``)."""
    kb = load_knowledge(kb_root)
    by_url: dict[str, set[str]] = {}
    for e in kb.entries:
        if e.url and e.kind is not EntryKind.FAQ:
            by_url.setdefault(e.url, set()).add(e.id)
    return {e.id: by_url.get(e.url, set()) for e in kb.entries if e.url}


def load_queries(
    out: Path, family: str, w: float | None = None, lam: float | None = None
) -> list[dict[str, Any]]:
    """Each query's candidate pool in ranking order (fusion weight ``w``, head weight ``lam``;
    default: the shipped ones), with features and labels."""
    also = _same_section(ch.REPO / "knowledge" / "demo")
    base = calibration_for(family)
    w = FUSION_WEIGHTS.get(family, 0.9) if w is None else w
    lam = HEAD_RANK_WEIGHTS.get(family, 0.08) if lam is None else lam
    result = []
    for tag in SETS:
        a = dict(np.load(out / f"{tag}.npz"))
        m = json.loads((out / f"{tag}.json").read_text())
        ids, langs = np.array(m["entries"]), np.array(m["lang"])
        for i in range(len(m["queries"])):
            idx = np.flatnonzero(a["pool"][i])
            cos, bm, cov, lp = (a[k][i][idx].astype(np.float64)
                                for k in ("cos", "bm25", "cov", "logp"))  # fmt: skip
            fused = w * cos + (1 - w) * bm / (bm.max() or 1.0) + lam * lp
            order = np.lexsort((idx, -cos, -fused))
            idx = idx[order]
            cos, bm, cov, lp, fused = (x[order] for x in (cos, bm, cov, lp, fused))
            same = langs[idx] == m["qlang"][i]
            groups = np.unique(langs[idx], return_inverse=True)[1].astype(np.int64)
            feats = candidate_features(cosine=cos, coverage=cov, bm25=bm, fused=fused,
                                       head_logp=lp, same_lang=same, groups=groups,
                                       n_tokens=m["ntok"][i], base=base)  # fmt: skip
            expected = set(m["expected"][i])
            if tag.startswith("held_out"):
                expected |= {p for e in expected for p in also.get(e, ())}
            fold = int(tag[-1]) if tag.startswith("held_out") else i % 5
            result.append({
                "set": "held_out" if tag.startswith("held_out") else tag, "fold": fold,
                "same": same, "feats": feats, "lp": lp,
                "label": np.array([e in expected for e in ids[idx]]), "ids": ids[idx],
                "text": m["queries"][i],
                "answerable": bool(expected),
            })  # fmt: skip
    return result


def head_scores(q: dict[str, Any], family: str) -> Any:
    """The current confidence (embedding calibration + entry head) of each candidate."""
    hc = head_calibration_for(family)
    z = q["feats"][:, 0]
    plain = 1 / (1 + np.exp(-z))
    if hc is None:
        return plain
    s = 1 / (1 + np.exp(-(hc.z_weight * z + hc.logp_weight * q["lp"] + hc.bias)))
    return np.where(plain < hc.floor, plain, s)


def decide(q: dict[str, Any], scores: Any, t: float) -> tuple[int, int, bool, list[int]]:
    """(first hit, answered hit, answered?, near-miss suggestions) as the retriever and
    ``bot.decide.judge`` do it (scores on the fitted scale; ``t`` maps to 0.5)."""
    same = q["same"]
    best_same = scores[same].max() if same.any() else 0.0
    first = same | (scores >= best_same + 0.1)  # HybridRetriever.cross_lang_margin
    order = np.concatenate([np.flatnonzero(first), np.flatnonzero(~first)])[:5]
    ranked = order[np.argsort(-scores[order], kind="stable")]
    best = int(ranked[0])
    same_ranked = [int(j) for j in ranked if same[j]]
    if same_ranked and scores[same_ranked[0]] >= t:
        best = same_ranked[0]
    answered = bool(scores[best] >= (t if same[best] else t + 0.15))
    shift = math.log(t / (1 - t))
    shifted = 1 / (1 + np.exp(-(np.log(scores / (1 - scores + 1e-12) + 1e-12) - shift)))
    pool = same_ranked or [int(j) for j in ranked]
    near = [j for j in pool if shifted[j] >= 0.35][:3]  # judge: within 0.15 below 0.5
    return int(order[0]), best, answered, near


def rates(qs: list[dict[str, Any]], scores: list[Any], t: float) -> dict[str, float]:
    n_ans = sum(q["answerable"] for q in qs) or 1
    hit1 = right = wrong = suggested = 0
    for q, s in zip(qs, scores, strict=True):
        first, best, answered, near = decide(q, s, t)
        hit1 += bool(q["answerable"] and q["label"][first])
        right += answered and bool(q["label"][best])
        wrong += answered and not q["label"][best]
        suggested += bool(q["answerable"] and not answered and q["label"][near].any())
    return {"hit@1": round(hit1 / n_ans, 3), "correct": round(right / n_ans, 3),
            "false": round(wrong / max(1, len(qs)), 3), "suggested": round(suggested / n_ans, 3),
            "n": len(qs)}  # fmt: skip


def fit(qs: list[dict[str, Any]], c: float = 1.0) -> tuple[Any, float]:
    from sklearn.linear_model import LogisticRegression

    xs = [q["feats"][:TOP_N] for q in qs]
    y = np.concatenate([q["label"][:TOP_N] for q in qs])
    sw = np.concatenate([np.full(len(x), SET_WEIGHTS.get(q["set"], 1.0))
                         for q, x in zip(qs, xs, strict=True)])  # fmt: skip
    x = np.concatenate(xs)
    mu, sd = x.mean(0), x.std(0) + 1e-9
    model = LogisticRegression(C=c, max_iter=5000).fit((x - mu) / sd, y, sample_weight=sw)
    weights = model.coef_[0] / sd
    return weights, float(model.intercept_[0] - (model.coef_[0] * mu / sd).sum())


def verifier_scores(q: dict[str, Any], weights: Any, bias: float, floor: float = 0.15) -> Any:
    p = 1 / (1 + np.exp(-np.clip(q["feats"] @ weights + bias, -60, 60)))
    plain = 1 / (1 + np.exp(-q["feats"][:, 0]))
    return np.where(plain < floor, plain, p)


def pick_threshold(
    qs: list[dict[str, Any]], scores: list[Any], max_false: float, match: float | None = None
) -> float:
    """``match`` None: the lowest threshold with false answers <= ``max_false`` of all queries.
    ``match`` = a rate of right answers: the highest threshold that still reaches it (as many
    right answers as the current score, as few false ones as that allows)."""
    grid = [round(float(t), 2) for t in np.arange(0.3, 0.99, 0.01)]
    if match is not None:
        ok = [t for t in grid if rates(qs, scores, t)["correct"] >= match]
        return ok[-1] if ok else grid[0]
    for t in grid:
        if rates(qs, scores, t)["false"] <= max_false:
            return t
    return 0.99


def by_set(qs: list[dict[str, Any]], scores: list[Any], t: float | list[float]) -> dict[str, Any]:
    ts = t if isinstance(t, list) else [t] * len(qs)
    out = {}
    for name in ("dev", "dev_hard", "held_out", "negative", "all"):
        pick = [i for i, q in enumerate(qs) if name in ("all", q["set"])]
        rows = [rates([qs[i]], [scores[i]], ts[i]) | {"a": qs[i]["answerable"]} for i in pick]
        n_ans = sum(r["a"] for r in rows) or 1
        out[name] = {"n": len(rows)} | {
            key: round(sum(r[key] for r in rows if r["a"]) / n_ans, 3)
            for key in ("hit@1", "correct", "suggested")
        }
        out[name]["false"] = round(sum(r["false"] for r in rows) / max(1, len(rows)), 3)
    return out


def curve(qs: list[dict[str, Any]], scores: list[Any]) -> dict[str, float]:
    """Most right answers at false answers <= 1/2/3/5 % (threshold swept on these scores:
    compares two scores at equal precision, not an operating point)."""
    points = [rates(qs, scores, float(t)) for t in np.arange(0.05, 0.99, 0.01)]
    return {
        f"{level:.0%}": max((p["correct"] for p in points if p["false"] <= level), default=0.0)
        for level in (0.01, 0.02, 0.03, 0.05)
    }


def _match(qs: list[dict[str, Any]], family: str, rule: str) -> float | None:
    if rule != "match":
        return None
    return rates(qs, [head_scores(q, family) for q in qs], 0.5)["correct"]


def _sweep(out: Path, family: str) -> None:
    """hit@1 (first hit, language preferred) per set for other fusion / head weights."""
    for w in (0.85, 0.9, 0.95):
        for lam in (0.02, 0.04, 0.06, 0.08):
            qs = load_queries(out, family, w, lam)
            res = by_set(qs, [head_scores(q, family) for q in qs], 0.5)
            hits = {k: v["hit@1"] for k, v in res.items() if k != "negative"}
            print(f"# sweep w={w} lambda={lam}: {hits}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="e5")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=None, help="keep/reuse the signals here")
    ap.add_argument("--max-false", type=float, default=0.02)
    ap.add_argument("--sweep", action="store_true", help="also print hit@1 over fusion weights")
    ap.add_argument(
        "--rule",
        choices=("false", "match"),
        default="false",
        help="operating point: 'false' = false answers <= --max-false of all queries; 'match' ="
        " as many right answers as the current calibration at 0.5, fewest false answers",
    )
    args = ap.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="kt-vsig-") as tmp:
        out = args.cache or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        if not (out / f"held_out{args.folds - 1}.npz").is_file():
            collect(out, args.backend, args.folds)
        family = json.loads((out / "dev.json").read_text())["model"].split(":", 1)[0]
        qs = load_queries(out, family)
        if args.sweep:
            _sweep(out, family)
    before = by_set(qs, [head_scores(q, family) for q in qs], 0.5)
    cv_scores: list[Any] = [None] * len(qs)
    cv_t: list[float] = [0.0] * len(qs)
    chosen = []
    for k in range(args.folds):
        train = [q for q in qs if q["fold"] != k]
        weights, bias = fit(train)
        t = pick_threshold(train, [verifier_scores(q, weights, bias) for q in train],
                           args.max_false, _match(train, family, args.rule))  # fmt: skip
        chosen.append(t)
        for i, q in enumerate(qs):
            if q["fold"] == k:
                cv_scores[i], cv_t[i] = verifier_scores(q, weights, bias), t
    after = by_set(qs, cv_scores, cv_t)
    weights, bias = fit(qs)
    t = pick_threshold(
        qs, [verifier_scores(q, weights, bias) for q in qs], args.max_false,
        _match(qs, family, args.rule),
    )  # fmt: skip
    shifted = bias - math.log(t / (1 - t))
    report = {
        "family": family,
        "features": list(FEATURES),
        "weights": [round(float(v), 4) for v in weights],
        "bias": round(shifted, 4),
        "rule": args.rule,
        "threshold_fitted_p": t,
        "cv_thresholds": chosen,
        "seconds": round(time.time() - started),
        "curve_before": curve(qs, [head_scores(q, family) for q in qs]),
        "curve_after_cv": curve(qs, cv_scores),
        "before_head_calibration_at_0.5": before,
        "after_verifier_cv": after,
    }
    for name in before:
        print(f"{name:9} before {before[name]}  after(CV) {after[name]}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
