"""`klartext reindex` retrains the NLU when the folder's intents.yaml changed, and only then."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import FakeEmbedder
from rich.console import Console
from typer.testing import CliRunner

import bot.cli.index_cmds as cmds
from bot.cli._apps import app
from bot.config import get_settings

FAQ = """\
lang: en
entries:
  - id: ship
    question: How long does delivery take?
    answer: Orders arrive in 1-3 working days.
"""


def _intents(extra: str = "") -> str:
    def block(name: str, en: list[str], de: list[str]) -> str:
        return f"  {name}:\n    en: {en}\n    de: {de}\n"

    return (
        "intents:\n"
        + "".join(
            [
                block(
                    "greeting", ["hi", "hello", "good morning", "hey there"], ["hallo", "servus"]
                ),
                block("thanks", ["thanks", "thank you", "cheers", "much appreciated"], ["danke"]),
                block(
                    "order_status",
                    ["where is my order", "order status", "has my parcel shipped", "track order"],
                    ["wo ist meine bestellung", "bestellstatus"],
                ),
            ]
        )
        + extra
    )


runner = CliRunner()


@pytest.fixture
def kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "kb"
    root.mkdir()
    (root / "faq.yaml").write_text(FAQ)
    (root / "intents.yaml").write_text(_intents())
    monkeypatch.setenv("KLARTEXT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KLARTEXT_KNOWLEDGE_DIR", str(root))
    monkeypatch.setattr(cmds, "make_embedder", lambda settings, languages: FakeEmbedder())
    monkeypatch.setattr(cmds, "console", Console(width=200))
    monkeypatch.setattr(cmds, "_configured_name", lambda settings, languages: "fake:trigram")
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()


def test_reindex_trains_nlu_then_skips_when_unchanged(kb: Path, tmp_path: Path) -> None:
    first = runner.invoke(app, ["reindex", str(kb)])
    assert first.exit_code == 0, first.output
    assert "NLU retrained." in first.output
    nlu_dir = tmp_path / "var" / "nlu"
    assert any(nlu_dir.iterdir()), "no NLU model written"

    second = runner.invoke(app, ["reindex", str(kb)])
    assert second.exit_code == 0, second.output
    assert "NLU up to date." in second.output


def test_changed_intents_retrain(kb: Path) -> None:
    assert runner.invoke(app, ["reindex", str(kb)]).exit_code == 0
    (kb / "intents.yaml").write_text(
        _intents('  goodbye:\n    en: ["bye", "see you", "goodbye"]\n    de: ["tschüss"]\n')
    )
    again = runner.invoke(app, ["reindex", str(kb)])
    assert again.exit_code == 0, again.output
    assert "NLU retrained." in again.output


def test_dry_run_trains_nothing(kb: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["reindex", str(kb), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "NLU" not in result.output
    assert not (tmp_path / "var" / "nlu").exists()
