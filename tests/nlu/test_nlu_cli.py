"""``klartext eval intents`` / ``nlu train`` / ``nlu parse`` with the fake embedder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from nlu_fakes import FakeEmbedder, toy_examples
from typer.testing import CliRunner

import bot.cli.nlu_cmds as nlu_cmds
from bot.cli._apps import app
from bot.config import get_settings


@pytest.fixture(autouse=True)
def _fake_embedder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    emb = FakeEmbedder()
    monkeypatch.setattr(nlu_cmds, "_embedder", lambda spec: (emb, None))
    monkeypatch.setattr("bot.nlu.embedding.default_embedder", lambda *a, **k: emb)
    monkeypatch.setenv("KLARTEXT_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()


def _write(path: Path, rows: list[tuple[str, str]], label: str = "intent") -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", label])
        w.writerows(rows)
    return path


def test_eval_intents_json_summary(tmp_path: Path) -> None:
    examples = toy_examples()
    train = _write(tmp_path / "train.csv", [(t, i) for t, i, _ in examples])
    test_rows = [(t, i) for t, i, _ in examples[3::4]] + [
        ("xq zzv plorkt", "oos"),
        ("qwrtzp vbnm yxcv", "oos"),
    ]
    test = _write(tmp_path / "test.csv", test_rows, label="category")
    result = CliRunner().invoke(
        app, ["eval", "intents", "--train", str(train), "--test", str(test), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {
        "accuracy",
        "macro_f1",
        "oos_recall",
        "oos_precision",
        "n",
        "train_s",
        "docs_per_s",
    }
    assert summary["n"] == len(test_rows)
    assert summary["accuracy"] >= 0.9
    assert summary["oos_recall"] == 1.0
    assert summary["docs_per_s"] > 0


def test_eval_intents_rejects_bad_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("question,label\nhi,greeting\n")
    result = CliRunner().invoke(app, ["eval", "intents", "--train", str(bad), "--test", str(bad)])
    assert result.exit_code == 1
    assert "text,intent" in " ".join(result.output.split())


def test_train_then_parse(knowledge_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "nlu"
    runner = CliRunner()
    trained = runner.invoke(app, ["nlu", "train", str(knowledge_dir), "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert "3 intents" in trained.output
    parsed = runner.invoke(
        app,
        ["nlu", "parse", "Wo ist meine Bestellung NC-12345?", "--model-dir", str(out), "--json"],
    )
    assert parsed.exit_code == 0, parsed.output
    msg = json.loads(parsed.stdout)
    assert (msg["lang"], msg["intent"]) == ("de", "order_status")
    assert msg["entities"][0]["value"] == "NC-12345"
    table = runner.invoke(app, ["nlu", "parse", "is the fjell tent nice", "--model-dir", str(out)])
    assert table.exit_code == 0
    assert "Fjell 2 Tent" in table.output


def test_parse_without_model_says_how_to_train(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["nlu", "parse", "hi", "--model-dir", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "klartext nlu train" in " ".join(result.output.split())
