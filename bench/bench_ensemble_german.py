"""German score ensembles on ``../shared/data/covid_faq_de`` (dev half; the test half does not
exist here) and the demo KB's German development queries: e5 + USE, and e5 answer rows.

    nice -n 10 .venv/bin/python bench/bench_ensemble_german.py [--cache /tmp/h3s4/ger]

COVID: every entry is indexed by its question (the bot's FAQ rows; one row per entry, so no
entry head) and ranked like the bot (``weighted`` fusion, dense weight 0.95 for e5), with the
dense part replaced by ``(cos_e5(q, question) + β·cos_use(q, question)) / (1 + β)``, optionally
mixed with the answer text's cosine: ``(1 − a)·cos(q, question) + a·cos(q, answer)`` per
model. β and a are chosen on one half of the dev queries (even/odd rows) and reported on the
other (2-fold), and also in-sample over all 130. Demo German rows (``retrieval_dev_demo*.csv``,
``lang=de``, with the entry head as in ``bench/bench_ensemble.py``) get the same β grid.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ensemble as be
import calibrate_head as ch

from knowledge.loaders import load_knowledge
from retrieval import store
from retrieval.lexical import LexicalIndex
from retrieval.search import FUSION_WEIGHTS

BETAS = (0.0, 0.25, 0.5, 1.0, 2.0)
ANSWER_MIX = (0.0, 0.25, 0.5)


def _covid(cache: Path) -> dict[str, Any]:
    data = ch._shared() / "covid_faq_de"
    folder = cache / "covid" / "de"  # the de/ folder marks the entries German
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(data / "faq.csv", folder / "faq.csv")
    kb = load_knowledge(folder.parent)
    with (data / "queries_dev.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = [e.id for e in kb.entries]
    qs = [r["query"] for r in rows]
    gold = np.array([[i in r["expected_id"].split("|") for i in ids] for r in rows])
    vec: dict[str, Any] = {}
    for m in ("e5", "use"):
        for what, texts, kind in (("q", [e.question for e in kb.entries], "passage"),
                                  ("a", [e.answer for e in kb.entries], "passage"),
                                  ("query", qs, "query")):  # fmt: skip
            vec[m, what] = be.cached(cache, f"covid_{what}", m, texts, kind, be.MPNET)
    lex = LexicalIndex.build([store.lexical_text(e) for e in kb.entries])
    bm = np.stack([lex.score(q)[0] for q in qs]).astype(np.float64)
    return {"vec": vec, "bm25": bm, "gold": gold}


def _dense(d: dict[str, Any], beta: float, mix: float) -> Any:
    def cos(m: str) -> Any:
        q = d["vec"][m, "query"]
        return (1 - mix) * (q @ d["vec"][m, "q"].T) + mix * (q @ d["vec"][m, "a"].T)

    return (cos("e5") + beta * cos("use")) / (1 + beta)


def _metrics(scores: Any, gold: Any) -> dict[str, float]:
    best_gold = np.where(gold, scores, -np.inf).max(1)
    rank = (scores > best_gold[:, None]).sum(1)
    return {"hit@1": round(float((rank == 0).mean()), 3),
            "hit@5": round(float((rank < 5).mean()), 3),
            "mrr": round(float(np.where(rank < 5, 1 / (rank + 1), 0).mean()), 3)}  # fmt: skip


def covid_study(cache: Path) -> dict[str, Any]:
    d = _covid(cache)
    w = FUSION_WEIGHTS["e5"]
    bm = d["bm25"] / np.maximum(d["bm25"].max(1, keepdims=True), 1e-9)
    grid = {}
    for beta in BETAS:
        for mix in ANSWER_MIX:
            dense = _dense(d, beta, mix)
            grid[beta, mix] = {"dense": dense, "hybrid": w * dense + (1 - w) * bm}
    out: dict[str, Any] = {}
    n = len(d["gold"])
    halves = [np.arange(n) % 2 == 0, np.arange(n) % 2 == 1]
    for mode in ("dense", "hybrid"):
        table = {f"beta={b} answer={a}": _metrics(v[mode], d["gold"]) for (b, a), v in grid.items()}
        out[f"{mode} in-sample"] = table
        for name, keys in (("use only", [k for k in grid if k[1] == 0.0]),
                           ("answer only", [k for k in grid if k[0] == 0.0]),
                           ("both", list(grid))):  # fmt: skip
            hits = np.zeros(n, bool)
            chosen = []
            for pick, report in ((halves[0], halves[1]), (halves[1], halves[0])):

                def h1(k: tuple[float, float], sel: Any = pick, mode: str = mode) -> float:
                    s = grid[k][mode][sel]
                    g = d["gold"][sel]
                    return float(g[np.arange(len(g)), s.argmax(1)].mean())

                best = max(keys, key=h1)
                chosen.append(best)
                s = grid[best][mode][report]
                hits[report] = d["gold"][report][np.arange(len(s)), s.argmax(1)]
            out[f"{mode} 2-fold {name}"] = {"hit@1": round(float(hits.mean()), 3),
                                             "chosen": [list(c) for c in chosen]}  # fmt: skip
    return out


def _first(c: dict[str, Any]) -> int:
    return be.cv.decide(c, be.shipped(c), 0.5)[0]


def demo_german(cache: Path) -> dict[str, Any]:
    qs, meta = be.build(cache.parent / "ens", be.MPNET, 5)
    out = {}
    for beta in BETAS:
        cs = be.candidates(qs, meta["starts"], {"de": {"use": beta}}, FUSION_WEIGHTS["e5"],
                           be.HEAD_RANK_WEIGHTS["e5"])  # fmt: skip
        res = {}
        for tag in ("dev", "dev_hard", "held_out"):
            sel = [c for c in cs if c["set"] == tag and not be._is_en(c) and c["answerable"]]
            res[tag] = {
                "n": len(sel),
                "hit@1": round(sum(bool(c["label"][_first(c)]) for c in sel) / len(sel), 3),
            }
        out[f"beta={beta}"] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/h3s4/ger"))
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    report = {"covid": covid_study(args.cache)}
    for key, val in report["covid"].items():
        if "in-sample" in key:
            for k, m in val.items():
                print(f"covid {key:18} {k:22} {m}")
        else:
            print(f"covid {key:30} {val}")
    report["demo_de"] = demo_german(args.cache)
    for key, val in report["demo_de"].items():
        print(f"demo German (hit@1, first hit) {key}: {val}")
    print(json.dumps({"seconds": round(time.time() - t0), **report}))


if __name__ == "__main__":
    main()
