"""`klartext reindex`, `klartext search`, `klartext kb stats` on a small knowledge folder."""

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
    alt_questions: [When will my parcel arrive?]
    answer: Orders arrive in 1-3 working days.
  - id: pw
    question: How can I reset my password?
    answer: Click "Forgot password" on the login page.
  - id: pw-dup
    question: How can I reset my password?
    answer: Use the login page.
"""
FAQ_DE = """\
lang: de
entries:
  - id: versand
    question: Wie lange dauert der Versand?
    answer: Die Lieferung dauert 1-3 Werktage.
"""

runner = CliRunner()


@pytest.fixture
def kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "kb"
    root.mkdir()
    (root / "faq.yaml").write_text(FAQ)
    (root / "faq.de.yaml").write_text(FAQ_DE)
    monkeypatch.setenv("KLARTEXT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KLARTEXT_KNOWLEDGE_DIR", str(root))
    created: list[FakeEmbedder] = []

    def fake(settings: object, languages: object) -> FakeEmbedder:
        created.append(FakeEmbedder())
        return created[-1]

    monkeypatch.setattr(cmds, "make_embedder", fake)
    monkeypatch.setattr(cmds, "console", Console(width=200))
    monkeypatch.setattr(cmds, "err_console", Console(width=200, stderr=True))
    monkeypatch.setattr(cmds, "_configured_name", lambda settings, languages: "fake:trigram")
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()


def test_reindex_then_search_and_stats(kb: Path) -> None:
    result = runner.invoke(app, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "added" in result.output and "4" in result.output
    assert "faq.yaml:7" in result.output and "faq.yaml:10" in result.output  # duplicate pair
    result = runner.invoke(app, ["search", "when will my parcel arrive", "-k", "2"])
    assert result.exit_code == 0, result.output
    assert "ship" in result.output and "When will my parcel arrive?" in result.output
    result = runner.invoke(app, ["kb", "stats"])
    assert result.exit_code == 0, result.output
    assert "fake:trigram" in result.output
    assert "faq.de.yaml" in result.output and "up to date" in result.output
    assert "main language" not in result.output  # no translation floor for this model


def test_stats_counts_main_language_entries_without_translation(
    kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrieval import translations

    monkeypatch.setitem(translations.TRANSLATION_FLOORS, "fake", 0.9)
    same = FAQ_DE.replace(
        "Die Lieferung dauert 1-3 Werktage.", "Orders arrive in 1-3 working days."
    )
    (kb / "faq.de.yaml").write_text(same)
    assert runner.invoke(app, ["reindex"]).exit_code == 0
    result = runner.invoke(app, ["kb", "stats"])
    assert result.exit_code == 0, result.output
    # "ship" has the same answer in German; the two password entries have none
    assert "main language: en; 2 of 3 en entries have no translation" in result.output


def test_second_reindex_is_a_no_op_without_model(kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["reindex"]).exit_code == 0

    def no_model(settings: object, languages: object) -> FakeEmbedder:
        raise AssertionError("model loaded for a no-change reindex")

    monkeypatch.setattr(cmds, "make_embedder", no_model)
    result = runner.invoke(app, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "nothing written" in result.output


def test_dry_run_writes_nothing(kb: Path) -> None:
    result = runner.invoke(app, ["reindex", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output
    assert not get_settings().index_dir.exists()


def test_invalid_knowledge_strict_fails_lenient_continues(kb: Path) -> None:
    (kb / "bad.yaml").write_text("entries:\n  - id: x\n    answer: no question here\n")
    result = runner.invoke(app, ["reindex"])
    assert result.exit_code == 1
    assert "bad.yaml:2" in result.output and "question" in result.output
    result = runner.invoke(app, ["reindex", "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output


def test_search_and_stats_without_index_explain(kb: Path) -> None:
    for args in (["search", "anything"], ["kb", "stats"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert "klartext reindex" in result.output


def test_search_fusion_option(kb: Path) -> None:
    assert runner.invoke(app, ["reindex"]).exit_code == 0
    result = runner.invoke(app, ["search", "password", "--fusion", "lexical", "-k", "1"])
    assert result.exit_code == 0, result.output
    assert "pw" in result.output
    result = runner.invoke(app, ["search", "password", "--fusion", "magic"])
    assert result.exit_code == 1
    assert "rrf" in result.output


def test_duplicate_listing_is_capped(kb: Path) -> None:
    result = runner.invoke(app, ["reindex", "--show-duplicates", "0"])
    assert result.exit_code == 0, result.output
    assert "duplicates" in result.output and "faq.yaml:10" not in result.output
