"""Retrieval evaluation: hit@1, hit@5, MRR and per-query latency over a labelled query set.

The knowledge (a folder or one FAQ file) is indexed into a temporary directory with
:func:`retrieval.reindex.reindex` and searched with :func:`retrieval.search.load_retriever`,
i.e. exactly the bot's retrieval path (FAQ-native dense rows, BM25, fusion, calibration).

The queries CSV has columns ``query,expected_id``; several correct ids are ``|``-separated.
An empty ``expected_id`` marks a query that should *not* be answered: those are counted
separately ("refusal correct" when the top hit's calibrated score is below the answer
threshold) and are not part of hit@k/MRR/``n``.
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from knowledge.loaders import load_path
from knowledge.schema import KnowledgeBase
from retrieval.errors import RetrievalError
from retrieval.types import Embedder

EvalFusion = Literal["rrf", "weighted", "dense", "lexical"]


@dataclass(frozen=True, slots=True)
class LabelledQuery:
    query: str
    expected: tuple[str, ...]  # empty: should not be answered
    row: int  # CSV row (1 = header)


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One evaluated query: ``rank`` is the 1-based rank of the first correct hit (or None)."""

    query: str
    expected: tuple[str, ...]
    rank: int | None
    top_id: str | None
    top_score: float
    ms: float

    @property
    def answerable(self) -> bool:
        return bool(self.expected)


@dataclass(frozen=True, slots=True)
class RetrievalEval:
    hit1: float
    hit5: float
    mrr: float
    n: int  # answerable queries
    p50_ms: float
    p95_ms: float
    refusal_n: int = 0  # queries that should not be answered
    refusal_correct: int = 0  # ... whose top score stayed below the answer threshold
    model: str = ""
    fusion: str = ""
    rows: list[QueryResult] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        """The headline numbers with the CLI's JSON keys."""
        return {
            "hit@1": round(self.hit1, 4),
            "hit@5": round(self.hit5, 4),
            "mrr": round(self.mrr, 4),
            "n": self.n,
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
        }


def read_queries(path: Path) -> list[LabelledQuery]:
    """Parse a ``query,expected_id`` CSV; errors name the file and row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"query", "expected_id"} - set(reader.fieldnames or ())
            if missing:
                raise RetrievalError(f"{path}:1: missing column(s) {sorted(missing)}")
            out: list[LabelledQuery] = []
            for row_no, row in enumerate(reader, start=2):
                query = (row.get("query") or "").strip()
                if not query:
                    raise RetrievalError(f"{path}:{row_no}: field 'query' is empty")
                ids = tuple(i.strip() for i in (row.get("expected_id") or "").split("|"))
                out.append(LabelledQuery(query, tuple(i for i in ids if i), row_no))
    except OSError as exc:
        raise RetrievalError(f"cannot read queries file {path}: {exc}") from exc
    return out


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def score_results(
    results: list[QueryResult], *, k: int, answer_threshold: float, **extra: Any
) -> RetrievalEval:
    """Aggregate per-query results (latency over all queries, quality over answerable)."""
    answerable = [r for r in results if r.answerable]
    refusals = [r for r in results if not r.answerable]
    n = len(answerable)
    ranks = [r.rank for r in answerable]
    latencies = [r.ms for r in results]
    return RetrievalEval(
        hit1=sum(1 for r in ranks if r == 1) / n if n else 0.0,
        hit5=sum(1 for r in ranks if r is not None and r <= 5) / n if n else 0.0,
        mrr=sum(1.0 / r for r in ranks if r is not None and r <= k) / n if n else 0.0,
        n=n,
        p50_ms=_percentile(latencies, 50),
        p95_ms=_percentile(latencies, 95),
        refusal_n=len(refusals),
        refusal_correct=sum(1 for r in refusals if r.top_score < answer_threshold),
        rows=results,
        **extra,
    )


def _check_ids(queries: list[LabelledQuery], kb: KnowledgeBase, path: Path) -> None:
    known = {e.id for e in kb.entries}
    for q in queries:
        unknown = [i for i in q.expected if i not in known]
        if unknown:
            msg = f"{path}:{q.row}: field 'expected_id': unknown entry id(s) {unknown}"
            raise RetrievalError(msg)


def evaluate_retrieval(
    kb_path: Path,
    queries_csv: Path,
    *,
    embedder: Embedder | Callable[[KnowledgeBase], Embedder],
    fusion: EvalFusion | None = None,
    weight: float | None = None,
    k: int = 5,
    answer_threshold: float = 0.5,
    skip_invalid: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RetrievalEval:
    """Index ``kb_path`` into a temporary directory and run every query through the bot's
    retriever. ``embedder`` may be a factory given the loaded knowledge base (so the
    ``auto`` backend can look at its languages); ``fusion=None`` keeps the retriever's
    default, i.e. what the bot uses; ``weight`` sets the dense weight of ``weighted``."""
    from retrieval.reindex import reindex
    from retrieval.search import load_retriever

    kb = load_path(kb_path, skip_invalid=skip_invalid)
    queries = read_queries(queries_csv)
    _check_ids(queries, kb, queries_csv)
    emb = embedder if isinstance(embedder, Embedder) else embedder(kb)
    depth = max(k, 5)
    with tempfile.TemporaryDirectory(prefix="klartext-eval-") as tmp:
        index_dir = Path(tmp) / "index"
        reindex(kb, index_dir, emb, full=True, progress=progress)
        if fusion is None:
            retriever = load_retriever(index_dir, embedder=emb)
        else:
            retriever = load_retriever(index_dir, embedder=emb, fusion=fusion)
        if weight is not None:
            retriever.weight = weight
        retriever.search(queries[0].query if queries else "warm-up", k=depth)  # load models
        results: list[QueryResult] = []
        for q in queries:
            t0 = time.perf_counter()
            hits = retriever.search(q.query, k=depth)
            ms = (time.perf_counter() - t0) * 1000.0
            ids = [h.entry_id for h in hits]
            rank = next((i + 1 for i, e in enumerate(ids) if e in q.expected), None)
            top = hits[0] if hits else None
            results.append(
                QueryResult(
                    q.query,
                    q.expected,
                    rank,
                    top.entry_id if top else None,
                    top.score if top else 0.0,
                    ms,
                )
            )
    return score_results(
        results,
        k=k,
        answer_threshold=answer_threshold,
        model=emb.name,
        fusion=retriever.fusion,
    )
