"""Retrieval latency and reindex benchmarks (results: docs/benchmarks.md, *Retrieval*).

    nice -n 10 .venv/bin/python bench/bench_retrieval_latency.py [--only e2e,reindex,hnsw]
    nice -n 10 .venv/bin/python bench/bench_retrieval_latency.py --only e2e,demo --backend mpnet \
        --sizes 1000,10000 --real-max 1000 --demo-lang en

* ``e2e``: query p50/p99 (embed + hybrid search, k=5) at 1k/10k/100k synthetic shop FAQ entries
  (question + one alternative phrasing each) with the real default embedder. 1k and 10k are
  embedded for real (their full reindex gives entries/s); for 100k, rows past the first 10k
  reuse a real vector of a same-template entry plus small noise (embedding 200k texts would take
  ~10 min on 2 cores) — queries are still embedded by the real model.
* ``reindex``: incremental reindex of 1 changed entry in the 10k KB (seconds after the model is
  loaded, and cold wall time of the whole ``klartext reindex`` CLI process), a no-change CLI
  reindex, and full reindex throughput on the demo KB.
* ``demo``: only the demo KB's full reindex (``--demo-lang en``: its English entries only).
* ``--backend`` (default ``auto``, as the bot picks for English) chooses the embedding backend
  of every part (``mpnet``, ``minilm``, ...); the demo reindex keeps ``auto`` unless given.
* ``--second-opinion LO,HI`` or ``margin=M`` (e2e): English queries, mpnet consulted when the
  first encoder's calibrated top score is in [LO, HI] (``0,1``: always) or its fused top-1 −
  top-2 gap is below M; mpnet row vectors are stand-ins; reports the consulted share
  (``retrieval/ensemble.py``).
* ``hnsw``: FAISS HNSW alone on 1M 384-d clustered random unit vectors (a low-rank manifold per
  cluster, like real embeddings): build time, single-query p50/p99 and recall@10 vs exact search.

Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


from knowledge.loaders import load_knowledge  # noqa: E402
from knowledge.schema import Entry, EntryKind, KnowledgeBase, content_hash  # noqa: E402
from retrieval.reindex import reindex  # noqa: E402
from retrieval.search import HybridRetriever  # noqa: E402
from retrieval.types import Embedder, Vectors  # noqa: E402

TOPICS: list[tuple[str, str, str, str]] = [
    # (question, alt question, query paraphrase, answer) templates
    (
        "How long is the warranty on the {p}?",
        "What guarantee does the {p} have?",
        "warranty period {p}",
        "The {p} has a {n}-year warranty on materials and seams.",
    ),
    (
        "Is the {p} waterproof?",
        "Can I use the {p} in heavy rain?",
        "does the {p} keep water out",
        "The {p} is rated to {n}000 mm hydrostatic head.",
    ),
    (
        "How much does the {p} weigh?",
        "What is the weight of the {p}?",
        "{p} weight in grams",
        "The {p} weighs {n}40 g without packaging.",
    ),
    (
        "How do I clean the {p}?",
        "Can the {p} go in the washing machine?",
        "washing instructions for {p}",
        "Hand-wash the {p} at 30 °C with mild soap.",
    ),
    (
        "Are spare parts available for the {p}?",
        "Where can I buy replacement parts for the {p}?",
        "spare parts {p}",
        "Spare parts for the {p} are in our shop under Service, part {n}.",
    ),
    (
        "Which size of the {p} should I choose?",
        "Does the {p} run small?",
        "{p} sizing advice",
        "The {p} fits true to size; choose size {n} for 180 cm.",
    ),
    (
        "When will the {p} be back in stock?",
        "Is the {p} sold out?",
        "{p} availability restock",
        "The {p} is expected back within {n} weeks.",
    ),
    (
        "Can I return the {p} after using it outdoors?",
        "Is a used {p} returnable?",
        "return a used {p}",
        "Used items like the {p} can be returned within {n}0 days if intact.",
    ),
    (
        "Is the {p} compatible with other brands?",
        "Does the {p} fit third-party accessories?",
        "{p} works with other accessories",
        "The {p} uses the standard {n} mm connector.",
    ),
    (
        "How do I repair a tear in the {p}?",
        "What to do if the {p} is damaged?",
        "fix a hole in my {p}",
        "Use the repair kit shipped with the {p}, patch type {n}.",
    ),
]
KINDS = [
    "tent",
    "sleeping bag",
    "backpack",
    "jacket",
    "boots",
    "stove",
    "headlamp",
    "mat",
    "trekking poles",
    "water filter",
    "hammock",
    "gloves",
    "cooking set",
    "tarp",
]
SYL = ["fjell", "nord", "vik", "stor", "lys", "berg", "skog", "sol", "vind", "dal", "hav", "is"]


def _product(i: int) -> str:
    a, b = SYL[i % len(SYL)], SYL[(i // len(SYL)) % len(SYL)]
    return f"{a.title()}{b} {100 + i // (len(SYL) ** 2)} {KINDS[i % len(KINDS)]}"


def synthetic_rows(n: int) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        q, alt, _, ans = TOPICS[i % len(TOPICS)]
        p, num = _product(i // len(TOPICS)), str(1 + i % 9)
        rows.append(
            {
                "id": f"s{i:06d}",
                "question": q.format(p=p),
                "alt_questions": alt.format(p=p),
                "answer": ans.format(p=p, n=num),
            }
        )
    return rows


def query_for(i: int) -> str:
    return TOPICS[i % len(TOPICS)][2].format(p=_product(i // len(TOPICS)))


def write_kb(root: Path, rows: list[dict[str, str]], per_file: int = 1000) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(rows), per_file):
        with (root / f"faq_{start // per_file:03d}.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, ["id", "question", "alt_questions", "answer"])
            writer.writeheader()
            writer.writerows(rows[start : start + per_file])


def change_one(root: Path, tag: str) -> None:
    """Edit the answer of one entry in the middle file (through the csv module)."""
    files = sorted(root.glob("faq_*.csv"))
    path = files[len(files) // 2]
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[4]["answer"] += f" ({tag})"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def entries_of(rows: list[dict[str, str]]) -> KnowledgeBase:
    """Rows as a KnowledgeBase without files (for the 100k tier)."""
    entries = []
    for i, r in enumerate(rows):
        alts = (r["alt_questions"],)
        entries.append(
            Entry(
                id=r["id"],
                kind=EntryKind.FAQ,
                question=r["question"],
                answer=r["answer"],
                source=f"faq_{i // 1000:03d}.csv",
                line=i % 1000 + 2,
                alt_questions=alts,
                content_hash=content_hash("faq", r["question"], alts, r["answer"], "en", None, ()),
            )
        )
    return KnowledgeBase(root=Path("/nonexistent"), entries=entries)


class StandInEmbedder:
    """``--stand-in``: queries go to the real model, passages get cheap deterministic random
    unit vectors under the real model's name (bounds the bench on a busy machine: latency and
    incremental reindex cost do not depend on what the stored vectors mean; hit@1 does, so
    it is not reported for stand-in tiers)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if kind == "query":
            return self.inner.embed(texts, kind=kind)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            out[i] = rng.standard_normal(self.dim, dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


class PoolEmbedder:
    """Queries go to the real model; passages are looked up in ``pool`` (text -> vector)."""

    def __init__(self, inner: Embedder, pool: dict[str, Vectors]) -> None:
        self.inner, self.pool = inner, pool

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if kind == "query":
            return self.inner.embed(texts, kind=kind)
        return np.vstack([self.pool[t] for t in texts]).astype(np.float32)


def pooled_vectors(build: Path, rows: list[dict[str, str]], real: int) -> dict[str, Vectors]:
    """Text -> vector for every row: entry ``i`` reuses the real vectors of entry ``i % real``
    (same template) plus small noise."""
    vecs = np.load(build / "vectors.npy")
    rowmap = json.loads((build / "rows.json").read_text())
    real_vec = {
        (e, p): vecs[i]
        for i, (e, p) in enumerate(zip(rowmap["entry_ids"], rowmap["phrase"], strict=True))
    }
    rng = np.random.default_rng(0)
    pool: dict[str, Vectors] = {}
    for i, r in enumerate(rows):
        twin = f"s{i % real:06d}"
        for phrase, text in enumerate((r["question"], r["alt_questions"])):
            v = real_vec[(twin, phrase)] + rng.normal(0, 0.01, vecs.shape[1]).astype(np.float32)
            pool[text] = (v / np.linalg.norm(v)).astype(np.float32)
    return pool


def _ms(xs: list[float], p: float) -> float:
    return round(float(np.percentile(xs, p)) * 1e3, 2)


class _LastVector:
    """Returns the query vector computed just before (same name as the real embedder), so
    a second retriever on the same index measures the search part alone."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.vector = inner, np.zeros((1, inner.dim), np.float32)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        return self.vector


def latency(
    retriever: HybridRetriever, n_entries: int, n_queries: int, lang: str | None = None
) -> dict[str, float]:
    rng = random.Random(1)
    picks = [rng.randrange(n_entries) for _ in range(n_queries)]
    last = _LastVector(retriever.embedder)
    search_only = HybridRetriever(retriever.index_dir, last)
    for i in picks[:10]:
        retriever.search(query_for(i), k=5, lang=lang)
        search_only.search(query_for(i), k=5)
    if retriever.second_opinion is not None:
        retriever.second_opinion.runs = 0  # count the measured queries only
    total, cpu, embed_only, correct = [], [], [], 0
    search_wall, search_cpu = [], []
    for i in picks:
        q = query_for(i)
        t = time.perf_counter()
        last.vector = retriever.embedder.embed([q], kind="query")
        embed_only.append(time.perf_counter() - t)
        t, c = time.perf_counter(), time.thread_time()
        search_only.search(q, k=5)
        search_cpu.append(time.thread_time() - c)
        search_wall.append(time.perf_counter() - t)
        t, c = time.perf_counter(), time.process_time()
        hits = retriever.search(q, k=5, lang=lang)
        cpu.append(time.process_time() - c)
        total.append(time.perf_counter() - t)
        correct += bool(hits) and hits[0].entry_id == f"s{i:06d}"
    return {
        "p50_ms": _ms(total, 50),
        "p99_ms": _ms(total, 99),
        "cpu_p50_ms": _ms(cpu, 50),
        "cpu_p99_ms": _ms(cpu, 99),
        "embed_p50_ms": _ms(embed_only, 50),
        "search_p50_ms": _ms(search_wall, 50),
        "search_p99_ms": _ms(search_wall, 99),
        "search_cpu_p50_ms": _ms(search_cpu, 50),
        "hit@1": round(correct / len(picks), 3),
        "load_avg": round(os.getloadavg()[0], 1),
    }


def second_opinion(args: argparse.Namespace, first_model: str) -> Any:
    """``--second-opinion LO,HI``: mpnet consulted (queries in English) when the first
    encoder's calibrated top score is in [LO, HI]; ``--second-opinion margin=M``: when its fused
    top-1 − top-2 gap is below M. The row vectors are stand-ins (the cost of the rescoring does
    not depend on what they mean; ``hit@1`` is then not meaningful)."""
    from retrieval.ensemble import SecondOpinion
    from retrieval.ensemble_pairs import ENSEMBLE_CALIBRATIONS, PAIRS
    from retrieval.mpnet import MpnetEmbedder

    spec: str = args.second_opinion
    margin = float(spec.split("=", 1)[1]) if spec.startswith("margin=") else None
    lo, hi = (0.0, 1.0) if margin is not None else (float(x) for x in spec.split(","))
    family = first_model.split(":", 1)[0]
    pair = PAIRS.get(f"{family}+mpnet")
    keep = pair is not None and pair.calibration is None  # MiniLM: its own scores decide
    cal = (
        None
        if keep
        else ENSEMBLE_CALIBRATIONS.get(f"{family}+mpnet", PAIRS["e5+mpnet"].calibration)
    )
    mpnet = MpnetEmbedder()
    mpnet.embed(["warm up"], kind="query")
    return SecondOpinion(StandInEmbedder(mpnet), first_family=family, band=(lo, hi),
                         margin=margin, beta=args.so_beta, calibration=cal,
                         keep_first_scores=keep)  # fmt: skip


OPTS: dict[str, Any] = {"hnsw_threshold": 20_000, "duplicate_threshold": 0.92}


def bench_e2e(args: argparse.Namespace, out: dict[str, Any], work: Path) -> None:
    from retrieval.embedders import make_embedder

    t = time.perf_counter()
    embedder = make_embedder(args.backend, None, ["en"])
    embedder.embed(["warm up"], kind="query")
    out["model"], out["model_load_s"] = embedder.name, round(time.perf_counter() - t, 2)
    out["rss_mb_after_model_load"] = _rss_mb()
    e2e: dict[str, Any] = {}
    real_build: Path | None = None
    for n in args.sizes:
        rows = synthetic_rows(n)
        index_dir = work / f"var{n}" / "index"
        emb: Embedder = embedder
        if n <= args.real_max:
            write_kb(work / f"kb{n}", rows)
            kb = load_knowledge(work / f"kb{n}")
            if args.stand_in:
                emb = StandInEmbedder(embedder)
        else:
            kb = entries_of(rows)
            assert real_build is not None, "a real tier must come first"
            emb = PoolEmbedder(embedder, pooled_vectors(real_build, rows, args.real_max))
        t = time.perf_counter()
        report = reindex(kb, index_dir, emb, **OPTS)
        build_s = time.perf_counter() - t
        if n <= args.real_max:
            real_build = report.build
        retriever = HybridRetriever(index_dir, embedder)
        if args.second_opinion:
            retriever.second_opinion = second_opinion(args, embedder.name)
        res: dict[str, Any] = {
            "build_s": round(build_s, 1),
            "rows": report.rows,
            "layout": retriever.manifest.index_kind,
        }
        if n <= args.real_max and not args.stand_in:
            res["full_reindex_entries_per_s"] = round(n / build_s, 1)
        res.update(latency(retriever, n, args.queries, "en" if args.second_opinion else None))
        if retriever.second_opinion is not None:
            res["second_opinion_share"] = round(retriever.second_opinion.runs / args.queries, 3)
        res["rss_mb"] = _rss_mb()
        if args.stand_in or n > args.real_max:
            res["hit@1"] = None  # passages not embedded by the real model
        e2e[str(n)] = res
        print(json.dumps({"e2e": {str(n): res}}), flush=True)
    out["e2e"] = e2e
    if "reindex" in args.only and args.real_max in args.sizes:
        bench_incremental(out, work, args.real_max, embedder)
    if ("reindex" in args.only and not args.skip_demo) or "demo" in args.only.split(","):
        bench_demo(args, out, work)


def _rss_mb() -> float:
    """Peak resident set size of this process so far (MiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def bench_reindex_only(args: argparse.Namespace, out: dict[str, Any], work: Path) -> None:
    """Full reindex of the 10k synthetic KB (entries/s), then the incremental runs."""
    from retrieval.embedders import make_embedder

    n = args.real_max
    t = time.perf_counter()
    embedder = make_embedder(args.backend, None, ["en"])
    embedder.embed(["warm up"], kind="query")
    out["model"], out["model_load_s"] = embedder.name, round(time.perf_counter() - t, 2)
    write_kb(work / f"kb{n}", synthetic_rows(n))
    kb = load_knowledge(work / f"kb{n}")
    t = time.perf_counter()
    build_emb: Embedder = StandInEmbedder(embedder) if args.stand_in else embedder
    reindex(kb, work / f"var{n}" / "index", build_emb, **OPTS)
    if not args.stand_in:
        rate = round(n / (time.perf_counter() - t), 1)
        out["full_reindex"] = {"entries": n, "entries_per_s": rate}
    print(json.dumps(out), flush=True)
    bench_incremental(out, work, n, embedder)
    if not args.skip_demo:
        bench_demo(args, out, work)


def _cli(args: list[str], data_dir: Path) -> tuple[float, str]:
    env = {**os.environ, "KLARTEXT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    code = "import bot.cli.index_cmds; from bot.cli._apps import app; app()"
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return time.perf_counter() - t, proc.stdout


def bench_incremental(out: dict[str, Any], work: Path, n: int, embedder: Embedder) -> None:
    """Incremental reindex of 1 changed entry (the real model embeds its rows), 3 runs."""
    root, index_dir = work / f"kb{n}", work / f"var{n}" / "index"
    walls, cpus, loads = [], [], []
    for run in range(3):
        change_one(root, f"edit 1.{run}")
        t = time.perf_counter()
        kb = load_knowledge(root)
        load_s = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        report = reindex(kb, index_dir, embedder, **OPTS)
        walls.append(round(time.perf_counter() - t, 3))
        cpus.append(round(time.process_time() - c, 3))
        loads.append(round(os.getloadavg()[0], 1))
    inc: dict[str, Any] = {
        "entries": n,
        "changed": report.changed,
        "embedded_rows": report.embedded,
        "reindex_s_after_model_load": walls,
        "reindex_cpu_s": cpus,
        "load_avg": loads,
        "knowledge_load_s": round(load_s, 3),
    }
    change_one(root, "edit 2")
    inc["cli_cold_wall_s"], _ = _cli(["reindex", str(root)], work / f"var{n}")
    inc["cli_cold_wall_s"] = round(inc["cli_cold_wall_s"], 2)
    wall, _ = _cli(["reindex", str(root)], work / f"var{n}")
    inc["cli_no_change_wall_s"] = round(wall, 2)
    wall, _ = _cli(["kb", "stats"], work / f"var{n}")
    inc["cli_kb_stats_wall_s"] = round(wall, 2)
    out["incremental"] = inc
    print(json.dumps({"incremental": inc}), flush=True)


def bench_demo(args: argparse.Namespace, out: dict[str, Any], work: Path) -> None:
    """Full reindex of the demo KB (``--demo-lang``: only entries in that language)."""
    from retrieval.embedders import make_embedder

    demo = load_knowledge(REPO / "knowledge" / "demo")
    if args.demo_lang:
        demo = KnowledgeBase(demo.root, [e for e in demo.entries if e.lang == args.demo_lang])
    demo_emb = make_embedder(args.backend, None, sorted(demo.languages))
    demo_emb.embed(["warm up"], kind="query")
    t = time.perf_counter()
    rep = reindex(demo, work / "demo" / "index", demo_emb, full=True, **OPTS)
    s = time.perf_counter() - t
    out["demo_full_reindex"] = {
        "model": demo_emb.name,
        "entries": rep.entries,
        "rows": rep.rows,
        "seconds": round(s, 2),
        "entries_per_s": round(rep.entries / s, 1),
        "languages": sorted(demo.languages),
        "load_avg": round(os.getloadavg()[0], 1),
        "rss_mb": _rss_mb(),
    }
    print(json.dumps({"demo_full_reindex": out["demo_full_reindex"]}), flush=True)


def clustered(
    n: int, dim: int, seed: int, clusters: int = 10_000, rank: int = 12, noise: float = 0.02
) -> Vectors:
    """Unit vectors around ``clusters`` random centres, each cluster spread over a
    ``rank``-dimensional subspace (one of 64 shared bases) plus small isotropic noise: a
    stand-in for sentence embeddings, whose local intrinsic dimension is low."""
    base = np.random.default_rng(42)
    centers = base.standard_normal((clusters, dim)).astype(np.float32)
    bases = base.standard_normal((64, rank, dim)).astype(np.float32) / np.sqrt(rank)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        c = rng.integers(0, clusters, m)
        z = rng.standard_normal((m, rank)).astype(np.float32)
        x = centers[c]
        for b in range(64):  # one matmul per shared basis
            sel = (c % 64) == b
            x[sel] += z[sel] @ bases[b]
        x += rng.normal(0, noise, x.shape).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def bench_hnsw(args: argparse.Namespace, out: dict[str, Any]) -> None:
    from retrieval.index import FaissIndex

    dim, n = 384, args.hnsw_n
    x = clustered(n, dim, seed=1, clusters=args.hnsw_clusters)
    q = clustered(300, dim, seed=2, clusters=args.hnsw_clusters)
    cache = Path(args.hnsw_cache) if args.hnsw_cache else None
    t = time.perf_counter()
    built = cache is None or not cache.exists()
    if not built:
        index = FaissIndex.load(cache)  # type: ignore[arg-type]
        print(json.dumps({"hnsw_loaded_from": str(cache)}), flush=True)
    else:
        index = FaissIndex(dim, "hnsw", m=args.hnsw_m, ef_construction=args.hnsw_efc)
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            index.add(np.arange(start, stop, dtype=np.int64), x[start:stop])
            progress = {"hnsw_added": stop, "s": round(time.perf_counter() - t, 1)}
            print(json.dumps(progress), flush=True)
        if cache is not None:
            index.save(cache)
    build_s = time.perf_counter() - t
    exact = np.empty((len(q), 10), dtype=np.int64)
    for i in range(0, len(q), 50):  # exact top-10 by brute force (chunked matmul)
        sims = q[i : i + 50] @ x.T
        top = np.argpartition(-sims, 10, axis=1)[:, :10]
        exact[i : i + 50] = top
    res: dict[str, Any] = {
        "n": n,
        "dim": dim,
        "M": args.hnsw_m,
        "efConstruction": args.hnsw_efc,
        "clusters": args.hnsw_clusters,
        "build_s": round(build_s, 1) if built else None,  # None: loaded from --hnsw-cache
    }
    for ef in args.hnsw_ef:
        index.ef_search = ef
        lat, cpu, rec = [], [], []
        for i in range(len(q)):
            t, c = time.perf_counter(), time.thread_time()
            _, ids = index.search(q[i : i + 1], 10)
            cpu.append(time.thread_time() - c)
            lat.append(time.perf_counter() - t)
            rec.append(len(set(ids[0].tolist()) & set(exact[i].tolist())) / 10)
        res[f"ef{ef}"] = {
            "p50_ms": _ms(lat, 50),
            "p99_ms": _ms(lat, 99),
            "cpu_p50_ms": _ms(cpu, 50),
            "cpu_p99_ms": _ms(cpu, 99),
            "recall@10": round(float(np.mean(rec)), 4),
        }
        print(json.dumps({"hnsw": {f"ef{ef}": res[f"ef{ef}"]}}), flush=True)
    out["hnsw_1m"] = res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="e2e,reindex,hnsw")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--real-max", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--stand-in", action="store_true", help="passages get random vectors (see StandInEmbedder)"
    )
    parser.add_argument("--skip-demo", action="store_true", help="no demo KB full reindex")
    parser.add_argument("--backend", default="auto", help="embedding backend (make_embedder)")
    parser.add_argument("--demo-lang", default="", help="demo reindex: only this language")
    parser.add_argument(
        "--second-opinion", default="", help="e2e: mpnet second opinion, LO,HI or margin=M"
    )
    parser.add_argument("--so-beta", type=float, default=1.0, help="the second opinion's beta")
    parser.add_argument("--hnsw-n", type=int, default=1_000_000)
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--hnsw-efc", type=int, default=40)
    parser.add_argument(
        "--hnsw-clusters", type=int, default=10_000, help="clusters of the synthetic data"
    )
    parser.add_argument("--hnsw-cache", default="", help="save/reuse the built index here")
    parser.add_argument("--hnsw-ef", default="32,64,128,256", help="efSearch values to measure")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.hnsw_ef = [int(s) for s in args.hnsw_ef.split(",")]
    out: dict[str, Any] = {"load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="kt-bench-") as tmp:
        work = Path(tmp)
        parts = args.only.split(",")
        if "e2e" in parts:
            bench_e2e(args, out, work)
        elif "reindex" in parts:
            bench_reindex_only(args, out, work)
        elif "demo" in parts:
            bench_demo(args, out, work)
        if "hnsw" in parts:
            bench_hnsw(args, out)
    out["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
