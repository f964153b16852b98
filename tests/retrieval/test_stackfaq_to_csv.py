"""``bench/stackfaq_to_csv.py`` on a tiny StackFAQ-shaped JSON (no shared data needed)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "stackfaq_to_csv.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stackfaq_to_csv", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_thread_level_faq_and_queries(tmp_path: Path) -> None:
    data = {
        "root": {
            "qapair": [
                {
                    "rephr": ["Cross out text on github?", "*", "  strike   through ", None],
                    "question": "Strikethrough with GitHub Markdown",
                    "answer": ["Use ~~tildes~~.", "Or <del>."],
                },
                {"rephr": "Oldest commit?", "question": "First commit", "answer": "git log"},
            ]
        }
    }
    src = tmp_path / "src"
    src.mkdir()
    (src / "stackExchange-FAQ.json").write_text(json.dumps(data), encoding="utf-8")
    faq, queries = _module().convert(src, tmp_path / "out")
    with faq.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows == [
        {
            "id": "sf000",
            "question": "Strikethrough with GitHub Markdown",
            "answer": "Use ~~tildes~~.",
        },
        {"id": "sf001", "question": "First commit", "answer": "git log"},
    ]
    with queries.open(encoding="utf-8") as f:
        pairs = [(r["query"], r["expected_id"]) for r in csv.DictReader(f)]
    assert pairs == [
        ("Cross out text on github?", "sf000"),
        ("strike through", "sf000"),
        ("Oldest commit?", "sf001"),
    ]
