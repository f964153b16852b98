"""Fit the calibration of ``Hit.score`` (``retrieval.search.CALIBRATIONS``) on development data.

    nice -n 10 .venv/bin/python bench/calibrate_retrieval.py --backend e5 [--backend minilm]
    nice -n 10 .venv/bin/python bench/calibrate_retrieval.py --backend mpnet [--english]

Data (development only, never a test split):
* the demo KB (``knowledge/demo``) with ``bench/data/retrieval_dev_demo.csv`` (paraphrases written
  for calibration, different from the answer test set in ``tests/data``; empty ``expected_id`` =
  out of scope);
* ``../shared/data/covid_faq_de``: ``faq.csv`` with ``queries_dev.csv`` (the dev split);
* cross-domain negatives: the COVID dev queries against the demo KB and the demo queries
  against the COVID KB (nothing there answers them).

For each query the top hit (hybrid, RRF) gives two features, its best-phrasing cosine and its
IDF-weighted query-term coverage, and a label: is the top hit a correct entry? A logistic
regression on those gives ``Calibration(cosine_mid, cosine_weight, coverage_weight)``, so the
score estimates P(top hit correct). The COVID in-domain rows are reported but not fitted on:
with e5 its top-1 is right for only ~22 % of the dev queries and right and wrong top hits
have the same cosine and coverage (means 0.893/0.46 vs 0.886/0.45), so they carry no signal
and would only drag every score towards "never confident".

English-only backends (``mpnet``, always; any backend with ``--english``) are fitted on English
development data instead, the data they are meant for: the demo KB's English entries with the
English demo queries, the StackFAQ development half (odd query rows, as in
``bench_retrieval_quality.py``; the even rows stay held out) against the StackFAQ KB, and the
cross-domain negatives between those two (demo → StackFAQ, StackFAQ → demo).
Prints per-dataset rows and, on the last line, one JSON object with the fitted constants and
the answer precision / recall at score 0.5 before and after.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from knowledge.loaders import load_knowledge  # noqa: E402
from knowledge.schema import KnowledgeBase  # noqa: E402
from retrieval.calibration import Calibration, calibration_for  # noqa: E402
from retrieval.reindex import reindex  # noqa: E402
from retrieval.search import HybridRetriever  # noqa: E402

ENGLISH_ONLY = ("mpnet",)  # backends always calibrated on the English data set


def shared_data() -> Path:
    env = os.environ.get("KLARTEXT_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def read_queries(path: Path, lang: str | None = None) -> list[tuple[str, set[str], str | None]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            (r["query"], {i for i in (r["expected_id"] or "").split("|") if i},
             r.get("lang") or lang)
            for r in csv.DictReader(fh)
        ]  # fmt: skip


def covid_kb(work: Path) -> KnowledgeBase:
    root = work / "covid"
    root.mkdir(exist_ok=True)
    text = (shared_data() / "covid_faq_de" / "faq.csv").read_text(encoding="utf-8")
    (root / "faq.de.csv").write_text(text, encoding="utf-8")
    return load_knowledge(root)


def collect(
    retriever: HybridRetriever, queries: list[tuple[str, set[str], str | None]], negative: bool
) -> list[tuple[float, float, int]]:
    rows = []
    for query, expected, lang in queries:
        hits = retriever.search(query, k=1, lang=lang)
        if not hits:
            continue
        top = hits[0]
        label = 0 if negative or not expected else int(top.entry_id in expected)
        rows.append((top.dense_score, retriever.coverage(query, top.entry_id), label))
    return rows


def english_kb(work: Path) -> KnowledgeBase:
    """The demo KB's English entries."""
    demo = load_knowledge(REPO / "knowledge" / "demo")
    return KnowledgeBase(demo.root, [e for e in demo.entries if e.lang == "en"])


def stackfaq(work: Path) -> tuple[KnowledgeBase, list[tuple[str, set[str], str | None]]]:
    """The StackFAQ KB and its development queries (odd rows; the even rows are held out)."""
    sys.path.insert(0, str(REPO / "bench"))
    from stackfaq_to_csv import convert

    faq, queries = convert(shared_data() / "stackfaq", work / "stackfaq")
    (work / "stackfaq" / "kb").mkdir()
    faq.rename(work / "stackfaq" / "kb" / "faq.en.csv")
    return load_knowledge(work / "stackfaq" / "kb"), read_queries(queries, "en")[1::2]


def english_rows(
    embedder: Any, work: Path, backend: str
) -> tuple[dict[str, list[tuple[float, float, int]]], tuple[str, ...]]:
    """(cosine, coverage, label) rows of the English data set and the names fitted on."""
    demo_q = [q for q in read_queries(REPO / "bench" / "data" / "retrieval_dev_demo.csv")
              if q[2] == "en"]  # fmt: skip
    stack_kb, stack_q = stackfaq(work / backend)
    retrievers = {
        "demo_en": _index(english_kb(work), work / backend / "demo_en", embedder),
        "stackfaq": _index(stack_kb, work / backend / "stackfaq_index", embedder),
    }
    rows = {
        "demo_en": collect(retrievers["demo_en"], demo_q, negative=False),
        "stackfaq_dev": collect(retrievers["stackfaq"], stack_q, negative=False),
        "stackfaq->demo_en": collect(retrievers["demo_en"], stack_q, negative=True),
        "demo_en->stackfaq": collect(retrievers["stackfaq"], demo_q, negative=True),
    }
    return rows, tuple(rows)


def _index(kb: KnowledgeBase, path: Path, embedder: Any) -> HybridRetriever:
    t = time.perf_counter()
    reindex(kb, path, embedder, hnsw_threshold=20_000, duplicate_threshold=0.92)
    print(f"# indexed {path.name} with {embedder.name} in {time.perf_counter() - t:.0f} s",
          file=sys.stderr, flush=True)  # fmt: skip
    return HybridRetriever(path, embedder)


def report(rows: list[tuple[float, float, int]], cal: Calibration) -> dict[str, float]:
    answered = [(label) for cos, cov, label in rows if cal(cos, cov) >= 0.5]
    positives = sum(label for *_, label in rows)
    correct = sum(answered)
    return {
        "answered": len(answered),
        "precision": round(correct / len(answered), 3) if answered else 0.0,
        "recall": round(correct / positives, 3) if positives else 0.0,
        "n": len(rows),
    }


def fit(rows: list[tuple[float, float, int]]) -> Calibration:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[cos, cov - 0.5] for cos, cov, _ in rows])
    y = np.array([label for *_, label in rows])
    model = LogisticRegression(C=1e4, max_iter=1000).fit(x, y)  # ~unregularised
    w_cos, w_cov = (float(w) for w in model.coef_[0])
    bias = float(model.intercept_[0])
    return Calibration(round(-bias / w_cos, 3), round(w_cos, 2), round(w_cov, 2))


def summary(
    rows: dict[str, list[tuple[float, float, int]]],
    fitted_on: tuple[str, ...],
    name: str,
    dump: str,
    backend: str,
) -> dict[str, Any]:
    """Fit on ``fitted_on``; precision/recall at 0.5 per data set before and after."""
    if dump:
        Path(f"{dump}.{backend}.json").write_text(json.dumps(rows))
    every = [r for key in fitted_on for r in rows[key]]
    before, after = calibration_for(name), fit(every)
    result = {
        "fitted": {"cosine_mid": after.cosine_mid, "cosine_weight": after.cosine_weight,
                   "coverage_weight": after.coverage_weight},
        "fitted_on": list(fitted_on),
        "before": {k: report(v, before) for k, v in rows.items()},
        "after": {k: report(v, after) for k, v in rows.items()},
    }  # fmt: skip
    print(json.dumps({name: result}), flush=True)
    return result


def main() -> None:
    from retrieval.embedders import make_embedder

    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--dump", default="", help="write the (cosine, coverage, label) rows here")
    parser.add_argument(
        "--english", action="store_true", help="every backend on the English data set"
    )
    args = parser.parse_args()
    demo_q = read_queries(REPO / "bench" / "data" / "retrieval_dev_demo.csv")
    covid_q = read_queries(shared_data() / "covid_faq_de" / "queries_dev.csv", "de")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kt-cal-") as tmp:
        work = Path(tmp)
        demo, covid = load_knowledge(REPO / "knowledge" / "demo"), covid_kb(work)
        for backend in args.backend or ["e5", "minilm"]:
            embedder = make_embedder(backend, None, ["en", "de"])
            if args.english or backend in ENGLISH_ONLY:
                rows, fitted_on = english_rows(embedder, work, backend)
                out[embedder.name] = summary(rows, fitted_on, embedder.name, args.dump, backend)
                continue
            retrievers = {
                name: _index(kb, work / backend / name, embedder)
                for name, kb in (("demo", demo), ("covid", covid))
            }
            rows = {
                "demo": collect(retrievers["demo"], demo_q, negative=False),
                "covid": collect(retrievers["covid"], covid_q, negative=False),
                "covid->demo": collect(retrievers["demo"], covid_q, negative=True),
                "demo->covid": collect(retrievers["covid"], demo_q, negative=True),
            }
            fitted_on = ("demo", "covid->demo", "demo->covid")
            out[embedder.name] = summary(rows, fitted_on, embedder.name, args.dump, backend)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
