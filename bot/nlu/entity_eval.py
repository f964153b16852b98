"""Scoring entity extraction against a labelled YAML file (``tests/data/entities.yaml``).

File format::

    ref_date: 2026-11-28
    cases:
      - text: "Where is NC-12345?"
        lang: en
        entities: [{label: ORDER_NUMBER, text: NC-12345, value: NC-12345}]

A predicted entity counts as correct when label, surface text and normalised value all match a
gold entity of the same case (each gold entity matches once). Texts are compared after
stripping whitespace.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from bot.nlu.entities import DEFAULT_ORDER_PATTERN, ProductName

Triple = tuple[str, str, str]  # label, text, value


@dataclass
class TypeScores:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class EntityReport:
    per_type: dict[str, TypeScores]
    n_cases: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    parse_s: float = 0.0  # time spent in the pipelines (excludes building them)

    def summary(self) -> dict[str, Any]:
        return {
            "n_cases": self.n_cases,
            "ms_per_message": round(self.parse_s / max(self.n_cases, 1) * 1000, 3),
            "per_type": {
                label: {
                    "precision": round(s.precision, 4),
                    "recall": round(s.recall, 4),
                    "f1": round(s.f1, 4),
                    "support": s.tp + s.fn,
                }
                for label, s in sorted(self.per_type.items())
            },
        }


def load_cases(path: Path) -> tuple[date, list[dict[str, Any]]]:
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    ref = data.get("ref_date")
    ref_date = ref if isinstance(ref, date) else date.fromisoformat(str(ref))
    return ref_date, list(data["cases"])


def score_cases(
    gold: Sequence[Sequence[Triple]], predicted: Sequence[Sequence[Triple]]
) -> dict[str, TypeScores]:
    per: dict[str, TypeScores] = defaultdict(TypeScores)
    for g_list, p_list in zip(gold, predicted, strict=True):
        remaining = [(lb, t.strip(), str(v)) for lb, t, v in g_list]
        for label, text, value in p_list:
            key = (label, text.strip(), value)
            if key in remaining:
                remaining.remove(key)
                per[label].tp += 1
            else:
                per[label].fp += 1
        for label, _, _ in remaining:
            per[label].fn += 1
    return dict(per)


def evaluate_entities(
    path: Path,
    *,
    products: Sequence[ProductName] = (),
    order_pattern: str = DEFAULT_ORDER_PATTERN,
    labels: Sequence[str] = ("ORDER_NUMBER", "EMAIL", "PHONE", "DATE", "MONEY", "PRODUCT"),
) -> EntityReport:
    """Run the spaCy entity pipeline (per case language) over the file and score it."""
    from bot.nlu.components import entity_component, make_pipeline

    ref_date, cases = load_cases(path)
    pipelines: dict[str, Any] = {}
    gold: list[list[Triple]] = []
    predicted: list[list[Triple]] = []
    errors: list[dict[str, Any]] = []
    parse_s = 0.0
    for case in cases:
        lang = str(case.get("lang", "en"))
        if lang not in pipelines:
            pipelines[lang] = make_pipeline(lang, products=products, order_pattern=order_pattern)
            entity_component(pipelines[lang]).ref_date = ref_date
        start = time.perf_counter()
        doc = pipelines[lang](case["text"])
        parse_s += time.perf_counter() - start
        pred = [(e.label_, e.text, str(e._.value)) for e in doc.ents if e.label_ in labels]
        g = [
            (str(e["label"]), str(e["text"]), str(e["value"]))
            for e in case.get("entities") or []
            if str(e["label"]) in labels
        ]
        gold.append(g)
        predicted.append(pred)
        if sorted(g) != sorted(pred):
            errors.append({"text": case["text"], "gold": g, "predicted": pred})
    return EntityReport(score_cases(gold, predicted), len(cases), errors, parse_s)
