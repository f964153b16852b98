"""``retrieval.evaluate``: query CSV parsing, metric arithmetic, and a whole evaluation run
through the real index/search path on a tiny FAQ CSV (deterministic fake embedder)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from knowledge.schema import KnowledgeBase
from retrieval.errors import RetrievalError
from retrieval.evaluate import QueryResult, evaluate_retrieval, read_queries, score_results
from retrieval.types import Vectors

FAQ_CSV = """\
id,question,answer
ship,How long does delivery take?,Orders arrive in 1-3 working days.
pw,How can I reset my password?,"Click ""Forgot password"" on the login page."
pay,Which payment methods do you accept?,"Credit card, PayPal and invoice."
ret,How do I return an item?,Use the return label in your parcel within 30 days.
"""
QUERIES_CSV = """\
query,expected_id
how long does the delivery take,ship
reset my password,pw|ret
which payment methods are accepted,pay
return an item,ret
what is the capital of mongolia,
"""


class TrigramEmbedder:
    """Character-trigram hashing: lexically close texts are close vectors."""

    name = "fake:trigram"
    dim = 128

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f" {text.lower()} "
            for i in range(len(padded) - 2):
                out[row, zlib.crc32(padded[i : i + 3].encode()) % self.dim] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "kb").mkdir()
    faq, queries = tmp_path / "kb" / "faq.csv", tmp_path / "queries.csv"
    faq.write_text(FAQ_CSV, encoding="utf-8")
    queries.write_text(QUERIES_CSV, encoding="utf-8")
    return faq, queries


def test_read_queries_splits_ids_and_keeps_refusals(files: tuple[Path, Path]) -> None:
    queries = read_queries(files[1])
    assert [q.expected for q in queries] == [("ship",), ("pw", "ret"), ("pay",), ("ret",), ()]
    assert queries[0].row == 2


def test_read_queries_names_file_and_row(tmp_path: Path) -> None:
    bad = tmp_path / "q.csv"
    bad.write_text("query,expected_id\nfine,a\n,b\n", encoding="utf-8")
    with pytest.raises(RetrievalError, match=r"q\.csv:3: field 'query'"):
        read_queries(bad)
    bad.write_text("question,id\nx,y\n", encoding="utf-8")
    with pytest.raises(RetrievalError, match="missing column"):
        read_queries(bad)


def test_score_results_arithmetic() -> None:
    rows = [
        QueryResult("a", ("x",), 1, "x", 0.9, 10.0),
        QueryResult("b", ("x",), 2, "y", 0.8, 20.0),
        QueryResult("c", ("x",), None, "y", 0.7, 30.0),
        QueryResult("d", ("x",), 4, "y", 0.6, 40.0),
        QueryResult("e", (), None, "y", 0.2, 50.0),
        QueryResult("f", (), None, "y", 0.9, 60.0),
    ]
    result = score_results(rows, k=5, answer_threshold=0.5)
    assert result.n == 4
    assert result.hit1 == pytest.approx(0.25)
    assert result.hit5 == pytest.approx(0.75)
    assert result.mrr == pytest.approx((1 + 0.5 + 0.25) / 4)
    assert (result.refusal_n, result.refusal_correct) == (2, 1)
    assert result.p50_ms == pytest.approx(35.0)
    assert 50.0 <= result.p95_ms <= 60.0
    assert set(result.summary()) == {"hit@1", "hit@5", "mrr", "n", "p50_ms", "p95_ms"}


def test_mrr_only_counts_ranks_within_k() -> None:
    rows = [QueryResult("a", ("x",), 3, "y", 0.9, 1.0)]
    assert score_results(rows, k=2, answer_threshold=0.5).mrr == 0.0
    assert score_results(rows, k=3, answer_threshold=0.5).mrr == pytest.approx(1 / 3)


@pytest.mark.parametrize("fusion", ["rrf", "weighted", "dense", "lexical"])
def test_evaluate_runs_the_retrieval_path(files: tuple[Path, Path], fusion: str) -> None:
    faq, queries = files
    result = evaluate_retrieval(faq, queries, embedder=TrigramEmbedder(), fusion=fusion)  # type: ignore[arg-type]
    assert result.n == 4
    assert result.refusal_n == 1
    assert result.hit1 == 1.0  # every query shares most words with its question
    assert result.mrr == 1.0
    assert result.model == "fake:trigram"
    assert 0.0 < result.p50_ms <= result.p95_ms
    assert [r.top_id for r in result.rows[:4]] == ["ship", "pw", "pay", "ret"]


def test_evaluate_accepts_a_factory_and_a_folder(files: tuple[Path, Path]) -> None:
    faq, queries = files
    seen: list[set[str]] = []

    def factory(kb: KnowledgeBase) -> TrigramEmbedder:
        seen.append(kb.languages)
        return TrigramEmbedder()

    result = evaluate_retrieval(faq.parent, queries, embedder=factory)
    assert seen == [{"en"}]
    assert result.n == 4


def test_unknown_expected_id_is_an_error(files: tuple[Path, Path], tmp_path: Path) -> None:
    queries = tmp_path / "bad.csv"
    queries.write_text("query,expected_id\nreset my password,nope\n", encoding="utf-8")
    with pytest.raises(RetrievalError, match=r"bad\.csv:2: .*unknown entry id"):
        evaluate_retrieval(files[0], queries, embedder=TrigramEmbedder())


def test_weight_sets_the_dense_share_of_weighted_fusion(files: tuple[Path, Path]) -> None:
    faq, queries = files
    embedder = TrigramEmbedder()
    dense = evaluate_retrieval(faq, queries, embedder=embedder, fusion="dense")
    all_dense = evaluate_retrieval(faq, queries, embedder=embedder, fusion="weighted", weight=1.0)
    assert [r.top_id for r in all_dense.rows] == [r.top_id for r in dense.rows]
    assert all_dense.fusion == "weighted"
