"""MiniLM first, mpnet second opinion, on StackFAQ through the real retrieval path.

    nice -n 10 .venv/bin/python bench/bench_ensemble_minilm.py [--cache /tmp/h4s4]

``retrieval.reindex.reindex`` of the 125 StackFAQ threads into ``<cache>/sfaq-index`` with
MiniLM, then ``load_retriever(..., second_opinion=SecondOpinion(MpnetEmbedder(),
first_family="minilm", ...))`` and ``HybridRetriever.search(q, k=5, lang="en")`` for every
query: once without the second opinion (recording the calibrated top score and the weighted
fusion's top-1 − top-2 margin), and once per β with the second opinion forced on (band 0–1).
A cascade's result is then the second pass's ranking where its trigger fires, else the first
pass's: exactly what the retriever returns with that band (the first pass is the same code
path). Triggers: calibrated top score in ``[lo, hi]`` (``SecondOpinion.band``), or fused margin
below ``m``. Trigger and β are chosen on the DEV half (odd rows) only — most hit@1, then
fewest consultations — and the held-out half (even rows) is reported. mpnet query vectors are
cached in ``<cache>`` (``mpnet_q.npy`` + ``.json``). Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(_REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_retrieval_quality import MemoEmbedder  # noqa: E402
from stackfaq_to_csv import convert, shared_data_dir  # noqa: E402

from knowledge.loaders import load_path  # noqa: E402
from retrieval.embedders import SentenceTransformerEmbedder  # noqa: E402
from retrieval.ensemble import SecondOpinion, top_score  # noqa: E402
from retrieval.evaluate import LabelledQuery, read_queries  # noqa: E402
from retrieval.mpnet import MpnetEmbedder  # noqa: E402
from retrieval.reindex import reindex  # noqa: E402
from retrieval.search import HybridRetriever, load_retriever  # noqa: E402
from retrieval.types import Embedder  # noqa: E402

BETAS = (0.5, 1.0, 2.0, 3.0, 4.0)
LOWS = (0.0, 0.1, 0.2, 0.3)
HIGHS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
MARGINS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 1e9)


class DiskMemo(MemoEmbedder):
    """:class:`MemoEmbedder` whose query vectors also live in ``<cache>/<stem>.npy`` (+ ``.json``
    texts) across runs."""

    def __init__(self, inner: Embedder, cache: Path, stem: str) -> None:
        super().__init__(inner)
        self._npy, self._json = cache / f"{stem}.npy", cache / f"{stem}.json"
        if self._npy.is_file() and self._json.is_file():
            texts = json.loads(self._json.read_text(encoding="utf-8"))
            vecs = np.load(self._npy, allow_pickle=False)
            self._queries = {t: vecs[i : i + 1] for i, t in enumerate(texts)}

    def save(self) -> None:
        texts = list(self._queries)
        if texts:
            np.save(self._npy, np.vstack([self._queries[t] for t in texts]), allow_pickle=False)
            self._json.write_text(json.dumps(texts), encoding="utf-8")


def fused_margin(r: HybridRetriever, query: str) -> float:
    """The weighted fusion's top-1 − top-2 fused score (the first pass of ``search``)."""
    snap = r._state.snap
    qvec = r.embedder.embed([query], kind="query")[0]
    logp = snap.head.log_probs(qvec) if snap.head is not None and r.use_head else None
    cands = r._candidates(snap, query, qvec, "weighted", logp)
    r._fuse(cands, "weighted")
    f = sorted((c.fused for c in cands), reverse=True)
    return f[0] - f[1] if len(f) > 1 else 1.0


def first_pass(r: HybridRetriever, qs: list[LabelledQuery]) -> list[dict[str, Any]]:
    out = []
    for q in qs:
        hits = r.search(q.query, k=5, lang="en")
        score = top_score([h.score for h in hits], [h.lang == "en" for h in hits])
        out.append({"ids": [h.entry_id for h in hits], "score": score,
                    "margin": fused_margin(r, q.query)})  # fmt: skip
    return out


def ranks(rows: list[list[str]], qs: list[LabelledQuery]) -> list[int | None]:
    return [
        next((i + 1 for i, e in enumerate(ids) if e in q.expected), None)
        for ids, q in zip(rows, qs, strict=True)
    ]


def metrics(rk: Sequence[int | None]) -> dict[str, float]:
    n = len(rk)
    return {
        "hit@1": round(sum(r == 1 for r in rk) / n, 4),
        "hit@5": round(sum(r is not None for r in rk) / n, 4),
        "mrr": round(sum(1 / r for r in rk if r) / n, 4),
        "n": n,
    }


def cascade(a: list[int | None], b: list[int | None], fire: list[bool]) -> list[int | None]:
    return [rb if f else ra for ra, rb, f in zip(a, b, fire, strict=True)]


def negatives() -> list[str]:
    """150 BANKING77 *train* questions (seed 0): none is answered by a StackFAQ thread."""
    train = shared_data_dir() / "banking77" / "train.csv"
    with train.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in random.Random(0).sample(rows, 150)]


def decide(r: HybridRetriever, qs: list[str]) -> list[tuple[str | None, float]]:
    """Top hit id and score (``top_score``) per query, English."""
    out: list[tuple[str | None, float]] = []
    for q in qs:
        hits = r.search(q, k=5, lang="en")
        s = top_score([h.score for h in hits], [h.lang == "en" for h in hits])
        best = next((h for h in hits if h.score == s), None)
        out.append((best.entry_id if best else None, s))
    return out


def answered(dec: list[tuple[str | None, float]], qs: list[LabelledQuery]) -> dict[str, float]:
    """At the bot's 0.5 threshold: share answered right / answered wrong."""
    right = sum(s >= 0.5 and e in q.expected for (e, s), q in zip(dec, qs, strict=True))
    wrong = sum(s >= 0.5 and e not in q.expected for (e, s), q in zip(dec, qs, strict=True))
    return {"right": round(right / len(qs), 4), "wrong": round(wrong / len(qs), 4)}


def timing(index_dir: Path, qs: list[str], beta: float, margin: float) -> dict[str, Any]:
    """Per query, interleaved: MiniLM alone vs with the second opinion (fresh, un-memoised
    embedders; CPU = process time, wall = perf counter)."""
    minilm = SentenceTransformerEmbedder()
    so = SecondOpinion(MpnetEmbedder(), first_family="minilm", beta=beta, margin=margin,
                       keep_first_scores=True)  # fmt: skip
    plain = load_retriever(index_dir, embedder=minilm, auto_reload_s=None)
    cascade_r = load_retriever(index_dir, embedder=minilm, auto_reload_s=None, second_opinion=so)
    return interleave(plain, cascade_r, so, qs)


def interleave(
    plain: HybridRetriever, cascade: HybridRetriever, so: SecondOpinion, qs: Sequence[str]
) -> dict[str, Any]:
    """Time ``plain`` (a) and ``cascade`` (b) on every query, alternating, after 10 warm-up
    queries: CPU and wall p50/p90/p99 in ms, and the share of queries that consulted ``so``."""
    for q in qs[:10]:
        plain.search(q, k=5, lang="en")
        cascade.search(q, k=5, lang="en")
    so.runs = 0
    res: dict[str, list[float]] = {"a_cpu": [], "a_wall": [], "b_cpu": [], "b_wall": []}
    for q in qs:
        for tag, r in (("a", plain), ("b", cascade)):
            t, c = time.perf_counter(), time.process_time()
            r.search(q, k=5, lang="en")
            res[f"{tag}_cpu"].append(time.process_time() - c)
            res[f"{tag}_wall"].append(time.perf_counter() - t)
    out: dict[str, Any] = {"n": len(qs), "share": round(so.runs / len(qs), 3)}
    for key, xs in res.items():
        for p in (50, 90, 99):
            out[f"{key}_p{p}_ms"] = round(float(np.percentile(xs, p)) * 1e3, 2)
    out["load_avg"] = round(os.getloadavg()[0], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/h4s4"))
    parser.add_argument("--time", type=int, default=200, help="held-out queries timed (0: no)")
    args = parser.parse_args()
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    faq, queries_csv = convert(shared_data_dir() / "stackfaq", cache / "stackfaq")
    qs = read_queries(queries_csv)
    minilm = DiskMemo(SentenceTransformerEmbedder(), cache, "minilm_q")
    mpnet = DiskMemo(MpnetEmbedder(), cache, "mpnet_q")
    index_dir = cache / "sfaq-index"
    reindex(load_path(faq), index_dir, minilm)
    t0 = time.process_time()
    base = first_pass(load_retriever(index_dir, embedder=minilm, auto_reload_s=None), qs)
    minilm.save()
    a = ranks([x["ids"] for x in base], qs)
    second: dict[float, list[int | None]] = {}
    for beta in BETAS:  # ranking only: MiniLM's scores are kept
        so = SecondOpinion(mpnet, first_family="minilm", beta=beta, band=(0.0, 1.0),
                           keep_first_scores=True)  # fmt: skip
        r = load_retriever(index_dir, embedder=minilm, auto_reload_s=None, second_opinion=so)
        second[beta] = ranks([[h.entry_id for h in r.search(q.query, k=5, lang="en")]
                              for q in qs], qs)  # fmt: skip
        assert so.runs == len(qs), (so.runs, len(qs))
        mpnet.save()
    cpu_s = round(time.process_time() - t0, 1)
    dev, held = list(range(1, len(qs), 2)), list(range(0, len(qs), 2))

    def half(rk: list[int | None], idx: list[int]) -> list[int | None]:
        return [rk[i] for i in idx]

    triggers: dict[str, list[bool]] = {}
    for lo in LOWS:
        for hi in HIGHS:
            if lo < hi:
                triggers[f"score[{lo},{hi}]"] = [lo <= x["score"] <= hi for x in base]
    for m in MARGINS:
        triggers[f"margin<{m:g}"] = [x["margin"] < m for x in base]
    table: list[dict[str, Any]] = []
    for beta, b in second.items():
        for name, fire in triggers.items():
            c = cascade(a, b, fire)
            table.append({
                "beta": beta, "trigger": name,
                "dev": metrics(half(c, dev)), "heldout": metrics(half(c, held)),
                "share_dev": round(float(np.mean(half(fire, dev))), 3),  # type: ignore[arg-type]
                "share_heldout": round(float(np.mean(half(fire, held))), 3),  # type: ignore[arg-type]
            })  # fmt: skip

    def key(row: dict[str, Any]) -> tuple[float, float, float]:
        return (row["dev"]["hit@1"], row["dev"]["mrr"], -row["share_dev"])

    best_score = max((t for t in table if t["trigger"].startswith("score")), key=key)
    best_margin = max((t for t in table if t["trigger"].startswith("margin")), key=key)
    scores = np.array([x["score"] for x in base])
    out: dict[str, Any] = {
        "n": len(qs),
        "minilm_only": {"dev": metrics(half(a, dev)), "heldout": metrics(half(a, held))},
        "always_mpnet": {
            str(beta): {"dev": metrics(half(b, dev)), "heldout": metrics(half(b, held))}
            for beta, b in second.items()
        },
        "minilm_calibrated_top_score_quantiles": {
            str(p): round(float(np.percentile(scores, p)), 3) for p in (5, 10, 25, 50, 75, 90)
        },
        "wrong_top1_score_quantiles": {
            str(p): round(float(np.percentile(scores[[r != 1 for r in a]], p)), 3)
            for p in (10, 50, 90)
        },
        "best_score_band_on_dev": best_score,
        "best_margin_on_dev": best_margin,
        "cpu_s": cpu_s,
        "load_avg": round(os.getloadavg()[0], 1),
    }
    beta, margin = best_margin["beta"], float(best_margin["trigger"].split("<")[1])
    so = SecondOpinion(mpnet, first_family="minilm", beta=beta, margin=margin,
                       keep_first_scores=True)  # fmt: skip
    plain = load_retriever(index_dir, embedder=minilm, auto_reload_s=None)
    real = load_retriever(index_dir, embedder=minilm, auto_reload_s=None, second_opinion=so)
    dec_a = decide(plain, [q.query for q in qs])
    dec_b = decide(real, [q.query for q in qs])
    share = so.runs / len(qs)
    rk = ranks([[h.entry_id for h in real.search(q.query, k=5, lang="en")] for q in qs], qs)
    neg = negatives()
    neg_q = [LabelledQuery(t, (), 0) for t in neg]
    out["chosen_real_path"] = {
        "beta": beta, "margin": margin, "share_all": round(share, 3),
        "dev": metrics(half(rk, dev)), "heldout": metrics(half(rk, held)),
        "answered@0.5": {
            "minilm": {"dev": answered(half(dec_a, dev), half(qs, dev)),  # type: ignore[arg-type]
                       "heldout": answered(half(dec_a, held), half(qs, held)),  # type: ignore[arg-type]
                       "negatives_false": answered(decide(plain, neg), neg_q)["wrong"]},
            "cascade": {"dev": answered(half(dec_b, dev), half(qs, dev)),  # type: ignore[arg-type]
                        "heldout": answered(half(dec_b, held), half(qs, held)),  # type: ignore[arg-type]
                        "negatives_false": answered(decide(real, neg), neg_q)["wrong"]},
        },
        "negatives_n": len(neg),
    }  # fmt: skip
    fitted = SecondOpinion(mpnet, first_family="minilm", beta=beta, margin=margin)
    if fitted.calibration is not None:  # "minilm+mpnet" constants (bench_ensemble_minilm_fit)
        rf = load_retriever(index_dir, embedder=minilm, auto_reload_s=None, second_opinion=fitted)
        dec_c = decide(rf, [q.query for q in qs])
        out["chosen_real_path"]["answered@0.5"]["cascade_fitted"] = {
            "dev": answered(half(dec_c, dev), half(qs, dev)),  # type: ignore[arg-type]
            "heldout": answered(half(dec_c, held), half(qs, held)),  # type: ignore[arg-type]
            "negatives_false": answered(decide(rf, neg), neg_q)["wrong"],
        }
    mpnet.save()
    if args.time:
        out["timing_stackfaq"] = timing(index_dir, [qs[i].query for i in held][: args.time],
                                        beta, margin)  # fmt: skip
    (cache / "cascade_table.json").write_text(json.dumps(table, indent=1), encoding="utf-8")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
