"""Convert StackFAQ (``../shared/data/stackfaq``) to Klartext's FAQ CSV and a queries CSV.

Thread level: each of the 125 threads becomes one FAQ entry (its question and its first
answer); the human rephrasings become queries (``query,expected_id``) and are never indexed.

    python bench/stackfaq_to_csv.py [--out DIR] [--data DIR]

Writes ``DIR/faq.csv`` and ``DIR/queries.csv`` (default DIR: a fresh temporary directory) and
prints the two paths. The converted data is not committed (see the data's licence notes).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """``$KLARTEXT_SHARED_DATA`` or ``../shared/data`` next to the repository."""
    env = os.environ.get("KLARTEXT_SHARED_DATA")
    return Path(env) if env else _REPO.parent / "shared" / "data"


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def convert(data_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write ``faq.csv`` and ``queries.csv`` into ``out_dir``; return their paths."""
    raw = json.loads((data_dir / "stackExchange-FAQ.json").read_text(encoding="utf-8"))
    pairs = raw["root"]["qapair"]
    out_dir.mkdir(parents=True, exist_ok=True)
    faq_path, queries_path = out_dir / "faq.csv", out_dir / "queries.csv"
    with (
        faq_path.open("w", newline="", encoding="utf-8") as faq_f,
        queries_path.open("w", newline="", encoding="utf-8") as q_f,
    ):
        faq_w, q_w = csv.writer(faq_f), csv.writer(q_f)
        faq_w.writerow(["id", "question", "answer"])
        q_w.writerow(["query", "expected_id"])
        for i, pair in enumerate(pairs):
            entry_id = f"sf{i:03d}"
            answers = _as_list(pair.get("answer"))
            faq_w.writerow([entry_id, str(pair["question"]).strip(), answers[0].strip()])
            for rephrasing in _as_list(pair.get("rephr")):
                text = " ".join(rephrasing.split())
                if text and text != "*":
                    q_w.writerow([text, entry_id])
    return faq_path, queries_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "stackfaq")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="stackfaq-"))
    faq, queries = convert(args.data, out)
    print(faq)
    print(queries)


if __name__ == "__main__":
    main()
