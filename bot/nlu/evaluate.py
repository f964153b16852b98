"""Intent evaluation on ``text,intent`` CSVs (``klartext eval intents`` and the benchmarks).

Training goes through :func:`~bot.nlu.training.train_nlu` and prediction through
:meth:`NLU.parse_many` — exactly the bot's path. Test rows with intent ``oos`` are out of
scope. ``accuracy`` counts in-scope rows whose predicted intent is right (a row wrongly flagged
out of scope counts as wrong); ``macro_f1`` averages per-intent F1 over the test's in-scope
intents; ``oos_recall``/``oos_precision`` are None when the test has no ``oos`` rows.
"""

from __future__ import annotations

import csv
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import NLUError
from bot.nlu.classifier import ClassifierConfig
from bot.nlu.langid import LanguageDetector
from retrieval.types import Embedder

if TYPE_CHECKING:
    from bot.nlu.finetune import FinetuneConfig
    from bot.nlu.pipeline import NLU

OOS = "oos"


def read_intent_csv(path: Path) -> list[tuple[str, str]]:
    """Rows ``(text, intent)``; the label column may be called ``intent`` or ``category``."""
    with Path(path).open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        label = "intent" if "intent" in fields else "category" if "category" in fields else None
        if "text" not in fields or label is None:
            raise NLUError(f"{path}: need columns text,intent (or text,category), got {fields}")
        return [
            (row["text"].strip(), row[label].strip())
            for row in reader
            if row["text"] and row[label]
        ]


@dataclass(frozen=True)
class IntentScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvalResult:
    accuracy: float
    macro_f1: float
    oos_recall: float | None
    oos_precision: float | None
    n: int
    train_s: float
    docs_per_s: float
    per_intent: dict[str, IntentScores] = field(default_factory=dict)
    confusions: list[tuple[str, str, int]] = field(default_factory=list)  # gold, predicted, count
    predictions: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "oos_recall": None if self.oos_recall is None else round(self.oos_recall, 4),
            "oos_precision": None if self.oos_precision is None else round(self.oos_precision, 4),
            "n": self.n,
            "train_s": round(self.train_s, 2),
            "docs_per_s": round(self.docs_per_s, 1),
        }


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def score(gold: Sequence[str], predicted: Sequence[str]) -> EvalResult:
    """Metrics for aligned gold/predicted labels (``oos`` = out of scope)."""
    pairs = list(zip(gold, predicted, strict=True))
    in_scope = [(g, p) for g, p in pairs if g != OOS]
    intents = sorted({g for g, _ in in_scope})
    per: dict[str, IntentScores] = {}
    for intent in intents:
        tp = sum(1 for g, p in pairs if g == intent and p == intent)
        pred_n = sum(1 for _, p in pairs if p == intent)
        gold_n = sum(1 for g, _ in pairs if g == intent)
        prec, rec = _ratio(tp, pred_n), _ratio(tp, gold_n)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[intent] = IntentScores(prec, rec, f1, gold_n)
    oos_gold = sum(1 for g, _ in pairs if g == OOS)
    oos_pred = sum(1 for _, p in pairs if p == OOS)
    oos_tp = sum(1 for g, p in pairs if g == OOS and p == OOS)
    confusions = Counter((g, p) for g, p in pairs if g != p)
    return EvalResult(
        accuracy=_ratio(sum(1 for g, p in in_scope if g == p), len(in_scope)),
        macro_f1=sum(s.f1 for s in per.values()) / len(per) if per else 0.0,
        oos_recall=_ratio(oos_tp, oos_gold) if oos_gold else None,
        oos_precision=(_ratio(oos_tp, oos_pred) if oos_pred else 0.0) if oos_gold else None,
        n=len(pairs),
        train_s=0.0,
        docs_per_s=0.0,
        per_intent=per,
        confusions=[(g, p, c) for (g, p), c in confusions.most_common(10)],
        predictions=list(predicted),
    )


def train_for_eval(
    train: Sequence[tuple[str, str]],
    embedder: Embedder,
    out_dir: Path,
    *,
    config: ClassifierConfig | None = None,
    languages: Sequence[str] = ("en", "de"),
    lang: str | None = None,
    finetune: FinetuneConfig | None = None,
) -> tuple[NLU, float]:
    """Train like the bot on ``train`` (``oos`` rows ignored) into ``out_dir``; (nlu, seconds).
    ``finetune``: fine-tune the encoder first (:mod:`bot.nlu.finetune`)."""
    from bot.nlu.pipeline import load_nlu
    from bot.nlu.training import train_nlu

    detector = LanguageDetector(languages)
    start = time.perf_counter()
    examples = [
        (text, intent, lang or detector.detect(text).lang)
        for text, intent in train
        if intent != OOS
    ]
    train_nlu(
        examples,
        out_dir,
        embedder=embedder,
        config=config,
        languages=languages,
        finetune=finetune,
    )
    train_s = time.perf_counter() - start
    return load_nlu(out_dir, embedder=embedder), train_s


def predict_and_score(
    nlu: NLU, test: Sequence[tuple[str, str]], *, lang: str | None = None
) -> EvalResult:
    """Parse ``test`` in batches and score it (``docs_per_s`` = batch throughput)."""
    texts = [t for t, _ in test]
    start = time.perf_counter()
    parsed = nlu.parse_many(texts, lang=lang)
    elapsed = time.perf_counter() - start
    predicted = [OOS if m.out_of_scope or m.intent is None else m.intent for m in parsed]
    result = score([i for _, i in test], predicted)
    result.docs_per_s = len(texts) / elapsed if elapsed > 0 else 0.0
    return result


def evaluate_intents(
    train: Sequence[tuple[str, str]],
    test: Sequence[tuple[str, str]],
    embedder: Embedder,
    *,
    config: ClassifierConfig | None = None,
    languages: Sequence[str] = ("en", "de"),
    lang: str | None = None,
    finetune: FinetuneConfig | None = None,
) -> EvalResult:
    """Train like the bot on ``train`` (no ``oos`` rows used), predict ``test``, score."""
    with tempfile.TemporaryDirectory(prefix="klartext-eval-") as tmp:
        nlu, train_s = train_for_eval(
            train,
            embedder,
            Path(tmp) / "nlu",
            config=config,
            languages=languages,
            lang=lang,
            finetune=finetune,
        )
    result = predict_and_score(nlu, test, lang=lang)
    result.train_s = train_s
    return result
