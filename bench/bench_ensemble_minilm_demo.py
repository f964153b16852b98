"""MiniLM + mpnet second opinion on the demo shop's English knowledge (a KB with an entry
head, unlike StackFAQ): does the StackFAQ-chosen trigger (fused gap < 0.12, β 4) consult a
sensible share, and does the decision stay as safe?

    nice -n 10 .venv/bin/python bench/bench_ensemble_minilm_demo.py [--cache /tmp/h4s4]

English-only index (``knowledge/demo/faq.en.yaml`` + the English help pages) built with
MiniLM; queries: the English rows of ``bench/data/retrieval_dev_demo.csv`` and
``retrieval_dev_demo_hard.csv`` (development data) and 150 BANKING77 *train* questions
(seed 0) as negatives. Reports hit@1/hit@5/MRR, answered right / wrong at 0.5 and the
consulted share, MiniLM alone vs with the second opinion (keeping MiniLM's scores, and with
the fitted "minilm+mpnet" constants). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(_REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_ensemble_minilm import DiskMemo, answered, decide, metrics, negatives, ranks  # noqa: E402

from knowledge.loaders import load_knowledge  # noqa: E402
from retrieval.embedders import SentenceTransformerEmbedder  # noqa: E402
from retrieval.ensemble import SecondOpinion  # noqa: E402
from retrieval.ensemble_pairs import PAIRS  # noqa: E402
from retrieval.evaluate import LabelledQuery  # noqa: E402
from retrieval.mpnet import MpnetEmbedder  # noqa: E402
from retrieval.reindex import reindex  # noqa: E402
from retrieval.search import load_retriever  # noqa: E402

DEMO = _REPO / "knowledge" / "demo"


def _queries(name: str) -> list[LabelledQuery]:
    with (_REPO / "bench" / "data" / name).open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["lang"] == "en"]
    return [LabelledQuery(r["query"], tuple(r["expected_id"].split("|")), i + 2)
            for i, r in enumerate(rows)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/h4s4"))
    args = parser.parse_args()
    kb_dir = args.cache / "demo-en" / "kb"
    if not kb_dir.is_dir():
        (kb_dir / "pages").mkdir(parents=True)
        shutil.copy(DEMO / "faq.en.yaml", kb_dir / "faq.en.yaml")
        for page in (DEMO / "pages").glob("*.md"):
            if not page.name.endswith(".de.md"):
                shutil.copy(page, kb_dir / "pages" / page.name)
    minilm = DiskMemo(SentenceTransformerEmbedder(), args.cache, "demo_minilm_q")
    mpnet = DiskMemo(MpnetEmbedder(), args.cache, "demo_mpnet_q")
    index_dir = args.cache / "demo-en" / "index"
    reindex(load_knowledge(kb_dir), index_dir, minilm)
    opts = PAIRS["minilm+mpnet"]
    so = SecondOpinion(mpnet, first_family="minilm", beta=opts.beta, margin=opts.margin,
                       keep_first_scores=True)  # fmt: skip
    fitted_so = SecondOpinion(mpnet, first_family="minilm", beta=opts.beta, margin=opts.margin,
                              calibration=opts.calibration)  # fmt: skip
    plain = load_retriever(index_dir, embedder=minilm, auto_reload_s=None)
    cascade = load_retriever(index_dir, embedder=minilm, auto_reload_s=None, second_opinion=so)
    fitted = load_retriever(
        index_dir, embedder=minilm, auto_reload_s=None, second_opinion=fitted_so
    )
    has_head = plain._state.snap.head is not None
    neg = [LabelledQuery(t, (), 0) for t in negatives()]
    out: dict[str, Any] = {"head": has_head, "beta": opts.beta, "margin": opts.margin}
    for name in ("retrieval_dev_demo.csv", "retrieval_dev_demo_hard.csv"):
        qs = _queries(name)
        res: dict[str, Any] = {}
        for tag, r in (("minilm", plain), ("cascade", cascade)):
            so.runs = 0
            rk = ranks([[h.entry_id for h in r.search(q.query, k=5, lang="en")] for q in qs], qs)
            res["share"] = round(so.runs / len(qs), 3)
            res[tag] = metrics(rk) | answered(decide(r, [q.query for q in qs]), qs)
        res["cascade_fitted"] = answered(decide(fitted, [q.query for q in qs]), qs)
        out[name] = res
    so.runs = 0
    out["negatives"] = {
        "minilm_false": answered(decide(plain, [q.query for q in neg]), neg)["wrong"],
        "cascade_false": answered(decide(cascade, [q.query for q in neg]), neg)["wrong"],
        "fitted_false": answered(decide(fitted, [q.query for q in neg]), neg)["wrong"],
        "share": round(so.runs / len(neg), 3),
        "n": len(neg),
    }
    minilm.save()
    mpnet.save()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
