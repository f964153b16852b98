"""The hand-labelled tests/data/entities.yaml, scored through the spaCy entity pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.entities import ProductName
from bot.nlu.entity_eval import EntityReport, evaluate_entities, load_cases, score_cases
from knowledge.botfiles import load_catalog

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "tests" / "data" / "entities.yaml"
RULE_TYPES = ("ORDER_NUMBER", "EMAIL", "PHONE", "DATE", "MONEY", "PRODUCT")


def test_file_has_enough_bilingual_cases() -> None:
    _, cases = load_cases(FILE)
    langs = [c["lang"] for c in cases]
    assert len(cases) >= 150
    assert langs.count("en") >= 50 and langs.count("de") >= 50


@pytest.fixture(scope="module")
def report() -> EntityReport:
    catalog = load_catalog(ROOT / "knowledge" / "demo" / "catalog.yaml")
    products = [ProductName(p.name, tuple(p.aliases)) for p in catalog]
    return evaluate_entities(FILE, products=products)


@pytest.mark.parametrize("label", RULE_TYPES)
def test_f1_per_rule_type_at_least_095(report: EntityReport, label: str) -> None:
    scores = report.per_type[label]
    assert scores.tp + scores.fn >= 10, f"too few {label} examples"
    assert scores.f1 >= 0.95, (label, scores, report.errors[:5])


def test_score_cases_counts_label_text_and_value() -> None:
    gold = [[("DATE", "tomorrow", "2026-11-29")], [("MONEY", "5 €", "5.00 EUR")]]
    pred = [
        [("DATE", "tomorrow", "2026-11-30")],
        [("MONEY", "5 €", "5.00 EUR"), ("PHONE", "1", "1")],
    ]
    scores = score_cases(gold, pred)
    assert (scores["DATE"].tp, scores["DATE"].fp, scores["DATE"].fn) == (0, 1, 1)
    assert scores["MONEY"].f1 == 1.0
    assert scores["PHONE"].precision == 0.0
