"""Entity extraction P/R/F1 per type on the hand-labelled tests/data/entities.yaml.

Runs the spaCy entity pipeline of each case's language with the demo shop's catalog
(knowledge/demo/catalog.yaml) and the file's ``ref_date``.

    nice -n 10 .venv/bin/python bench/bench_nlu_entities.py [--errors]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", type=Path, default=ROOT / "tests" / "data" / "entities.yaml")
    ap.add_argument("--catalog", type=Path, default=ROOT / "knowledge" / "demo" / "catalog.yaml")
    ap.add_argument("--errors", action="store_true", help="print mismatching cases")
    args = ap.parse_args()

    from bot.nlu.entities import ProductName
    from bot.nlu.entity_eval import evaluate_entities
    from knowledge.botfiles import load_catalog

    products = [ProductName(p.name, tuple(p.aliases)) for p in load_catalog(args.catalog)]
    evaluate_entities(args.file, products=products)  # warm-up (imports, lazy metadata)
    report = evaluate_entities(args.file, products=products)
    if args.errors:
        for err in report.errors:
            print(json.dumps(err, ensure_ascii=False))
    summary = report.summary()
    for label, s in summary["per_type"].items():
        prf = f"P={s['precision']:.3f} R={s['recall']:.3f} F1={s['f1']:.3f}"
        print(f"{label:13s} {prf} n={s['support']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
