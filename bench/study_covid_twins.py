"""Study (session 5): how much of the ``covid_faq_de`` hit@1 gap is label ambiguity?

    nice -n 10 .venv/bin/python bench/study_covid_twins.py [--backend e5]

Indexes ``../shared/data/covid_faq_de/faq.csv`` with the bot's retrieval path (real
``reindex``, weighted fusion), runs the dev queries and counts a miss as a "twin" hit when the
top entry is near-identical by text to a labelled one (question or first 600 characters of
the answer, normalised, ``difflib`` ratio >= 0.85 — a model-free criterion). Prints the twin
pairs and one JSON object: strict hit@1, twin-aware hit@1, n.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import itertools
import json
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from knowledge.loaders import load_knowledge  # noqa: E402
from retrieval.embedders import make_embedder  # noqa: E402
from retrieval.reindex import reindex  # noqa: E402
from retrieval.search import load_retriever  # noqa: E402

RATIO = 0.85


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\wäöüß ]", " ", text.lower()).split())


def _twins(rows: list[dict[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for a, b in itertools.combinations(rows, 2):
        rq = difflib.SequenceMatcher(None, _norm(a["question"]), _norm(b["question"])).ratio()
        ra = difflib.SequenceMatcher(
            None, _norm(a["answer"])[:600], _norm(b["answer"])[:600]
        ).ratio()
        if rq >= RATIO or ra >= RATIO:
            out.setdefault(a["id"], set()).add(b["id"])
            out.setdefault(b["id"], set()).add(a["id"])
            print(f"twin {a['id']} {b['id']} question {rq:.2f} answer {ra:.2f}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="e5")
    args = ap.parse_args()
    env = os.environ.get("KLARTEXT_SHARED_DATA")
    data = (Path(env) if env else REPO.parent / "shared" / "data") / "covid_faq_de"
    with (data / "faq.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    twins = _twins(rows)
    strict = aware = n = 0
    with tempfile.TemporaryDirectory() as tmp:
        kb_dir = Path(tmp) / "kb"
        kb_dir.mkdir()
        with (kb_dir / "faq.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "question", "answer", "lang"])
            w.writerows([r["id"], r["question"], r["answer"], "de"] for r in rows)
        embedder = make_embedder(args.backend, None, ["de"])
        reindex(load_knowledge(kb_dir), Path(tmp) / "idx", embedder)
        retriever = load_retriever(Path(tmp) / "idx", embedder=embedder, auto_reload_s=None)
        with (data / "queries_dev.csv").open(encoding="utf-8") as fh:
            for q in csv.DictReader(fh):
                expected = set(q["expected_id"].split("|"))
                hits = retriever.search(q["query"], k=1, lang="de")
                top = hits[0].entry_id if hits else ""
                n += 1
                strict += top in expected
                aware += top in expected or any(top in twins.get(e, ()) for e in expected)
    pairs = sum(map(len, twins.values())) // 2
    result = {"backend": embedder.name, "n": n, "hit@1": round(strict / n, 3),
              "hit@1_twins": round(aware / n, 3), "twin_pairs": pairs}  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
