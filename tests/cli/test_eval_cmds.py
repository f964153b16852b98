"""``klartext eval retrieval`` on a tiny FAQ CSV + queries CSV."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import bot.cli.eval_cmds  # noqa: F401  (registers the command)
import retrieval.embedders
from bot.cli._apps import app
from retrieval.types import Embedder, Vectors

FAQ_CSV = """\
id,question,answer
ship,How long does delivery take?,Orders arrive in 1-3 working days.
pw,How can I reset my password?,"Click ""Forgot password"" on the login page."
pay,Which payment methods do you accept?,"Credit card, PayPal and invoice."
ret,How do I return an item?,Use the return label in your parcel within 30 days.
"""
QUERIES_CSV = """\
query,expected_id
When will my parcel arrive?,ship
I forgot my password,pw
Can I pay with PayPal?,pay|ret
How do I send something back?,ret
what is the capital of mongolia,
"""
KEYS = {"hit@1", "hit@5", "mrr", "n", "p50_ms", "p95_ms"}
runner = CliRunner()


class _Trigram:
    name = "fake:trigram"
    dim = 64

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for i in range(len(text) - 2):
                out[row, zlib.crc32(text[i : i + 3].lower().encode()) % self.dim] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    faq, queries = tmp_path / "faq.csv", tmp_path / "queries.csv"
    faq.write_text(FAQ_CSV, encoding="utf-8")
    queries.write_text(QUERIES_CSV, encoding="utf-8")
    return faq, queries


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, set[str]]]:
    calls: list[tuple[str, set[str]]] = []

    def make(backend: str, model: str | None, languages: Iterable[str]) -> Embedder:
        calls.append((backend, set(languages)))
        return _Trigram()

    monkeypatch.setattr(retrieval.embedders, "make_embedder", make)
    return calls


def _last_json(output: str) -> dict[str, float]:
    last = output.strip().splitlines()[-1]
    data: dict[str, float] = json.loads(last)
    return data


def test_json_last_line_has_exact_keys(
    files: tuple[Path, Path], fake_embedder: list[tuple[str, set[str]]]
) -> None:
    faq, queries = files
    args = ["eval", "retrieval", "--kb", str(faq), "--queries", str(queries), "--json"]
    result = runner.invoke(app, [*args, "--fusion", "weighted", "--backend", "e5"])
    assert result.exit_code == 0, result.output
    data = _last_json(result.stdout)
    assert set(data) == KEYS
    assert data["n"] == 4  # the empty-expected query is not counted
    assert 0.0 <= data["hit@1"] <= data["hit@5"] <= 1.0
    assert 0.0 <= data["mrr"] <= 1.0
    assert 0.0 < data["p50_ms"] <= data["p95_ms"]
    assert fake_embedder == [("e5", {"en"})]


@pytest.mark.parametrize("backend", retrieval.embedders.BACKENDS)
def test_every_embedding_backend_is_accepted(
    files: tuple[Path, Path], fake_embedder: list[tuple[str, set[str]]], backend: str
) -> None:
    faq, queries = files
    args = ["eval", "retrieval", "--kb", str(faq), "--queries", str(queries), "--json"]
    result = runner.invoke(app, [*args, "--backend", backend])
    assert result.exit_code == 0, result.output
    assert fake_embedder == [(backend, {"en"})]


def test_table_output_and_misses(
    files: tuple[Path, Path], fake_embedder: list[tuple[str, set[str]]]
) -> None:
    faq, queries = files
    args = ["eval", "retrieval", "--kb", str(faq), "--queries", str(queries), "--misses", "5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for label in ("hit@1", "hit@5", "MRR@5", "p50 ms", "fake:trigram", "should-not-answer"):
        assert label in result.stdout


def test_bad_inputs_fail_cleanly(
    files: tuple[Path, Path], fake_embedder: list[tuple[str, set[str]]], tmp_path: Path
) -> None:
    faq, queries = files
    base = ["eval", "retrieval", "--kb", str(faq), "--queries", str(queries)]
    assert runner.invoke(app, [*base, "--fusion", "magic"]).exit_code == 1
    assert runner.invoke(app, [*base, "--backend", "word2vec"]).exit_code == 1
    missing = ["eval", "retrieval", "--kb", str(tmp_path / "nope"), "--queries", str(queries)]
    assert runner.invoke(app, missing).exit_code == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("query,expected_id\nhello,unknown-id\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "retrieval", "--kb", str(faq), "--queries", str(bad)])
    assert result.exit_code == 1
    assert "unknown entry id" in result.output


def test_real_minilm_end_to_end(files: tuple[Path, Path]) -> None:
    """The real default model finds every paraphrase of this tiny FAQ."""
    faq, queries = files
    args = ["eval", "retrieval", "--kb", str(faq), "--queries", str(queries), "--json"]
    result = runner.invoke(app, [*args, "--backend", "minilm"])
    assert result.exit_code == 0, result.output
    data = _last_json(result.stdout)
    assert set(data) == KEYS
    assert data["n"] == 4
    assert data["hit@1"] == 1.0
    assert data["mrr"] == 1.0
