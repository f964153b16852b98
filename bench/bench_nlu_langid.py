"""Language identification on short texts (1–8 words), EN vs DE.

Texts: word prefixes (1..8 words) of real messages — English from BANKING77 test.csv
(Casanueva et al. 2020, CC-BY-4.0), German from the COVID FAQ queries (deepset, Apache-2.0)
and FAQ questions. Compares raw lingua (restricted to EN/DE), py3langid (restricted to EN/DE)
and Klartext's LanguageDetector (lingua + noise stripping + one-word lexicon + default).

    nice -n 10 .venv/bin/python bench/bench_nlu_langid.py [--per-length 150]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(
    os.environ.get("KLARTEXT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def _texts() -> tuple[list[str], list[str]]:
    with (DATA / "banking77" / "test.csv").open(newline="") as f:
        en = [r["text"] for r in csv.DictReader(f)]
    de: list[str] = []
    with (DATA / "covid_faq_de" / "queries_dev.csv").open(newline="") as f:
        de += [r["query"] for r in csv.DictReader(f)]
    with (DATA / "covid_faq_de" / "faq.csv").open(newline="") as f:
        de += [r["question"] for r in csv.DictReader(f)]
    return en, de


def _prefixes(texts: list[str], per_length: int, rng: random.Random) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for k in range(1, 9):
        pool = [" ".join(t.split()[:k]) for t in texts if len(t.split()) >= k]
        out[k] = rng.sample(pool, min(per_length, len(pool)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-length", type=int, default=150)
    args = ap.parse_args()
    rng = random.Random(13)
    en, de = _texts()
    samples: list[tuple[str, str, int]] = []
    for lang, texts in (("en", en), ("de", de)):
        for k, items in _prefixes(texts, args.per_length, rng).items():
            samples += [(t, lang, k) for t in items]

    import py3langid
    from lingua import Language, LanguageDetectorBuilder

    from bot.nlu.langid import LanguageDetector

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    lingua = (
        LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.GERMAN)
        .with_preloaded_language_models()
        .build()
    )
    lingua_load = time.perf_counter() - t0
    lingua_rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    py3langid.langid.set_languages(["en", "de"])
    ident = py3langid.langid
    ours = LanguageDetector(("en", "de"), default="en")

    systems: dict[str, Callable[[str], str]] = {
        "lingua": lambda t: "de" if lingua.detect_language_of(t) == Language.GERMAN else "en",
        "py3langid": lambda t: str(ident.classify(t)[0]),
        "klartext": lambda t: ours.detect(t).lang,
    }
    results: dict[str, object] = {
        "n": len(samples),
        "lingua_load_s": round(lingua_load, 2),
        "lingua_rss_mb": round(lingua_rss, 1),
    }
    for name, fn in systems.items():
        fn("warm up")
        start = time.perf_counter()
        preds = [fn(t) for t, _, _ in samples]
        ms = (time.perf_counter() - start) / len(samples) * 1000
        by_len = {}
        for k in range(1, 9):
            rows = [(p, g) for p, (_, g, kk) in zip(preds, samples, strict=True) if kk == k]
            by_len[k] = round(sum(p == g for p, g in rows) / len(rows), 3)
        acc = sum(p == g for p, (_, g, _) in zip(preds, samples, strict=True)) / len(samples)
        results[name] = {"accuracy": round(acc, 4), "by_words": by_len, "ms_per_text": round(ms, 3)}
        print(f"{name:10s} acc={acc:.3f} ms/text={ms:.3f} by words={by_len}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
