"""`klartext reindex --adapt` and the ``adapt_embeddings`` setting, with the real e5."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from test_adapt import GROUPS, _faq
from typer.testing import CliRunner

import bot.cli.index_cmds as cmds
from bot.cli._apps import app
from bot.config import get_settings
from retrieval import store

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "kb"
    root.mkdir()
    (root / "faq.yaml").write_text(_faq(GROUPS))
    monkeypatch.setenv("KLARTEXT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KLARTEXT_KNOWLEDGE_DIR", str(root))
    monkeypatch.setenv("KLARTEXT_EMBEDDING_BACKEND", "e5")
    monkeypatch.setattr(cmds, "console", Console(width=200))
    monkeypatch.setattr(cmds, "err_console", Console(width=200, stderr=True))
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()


def _model() -> str:
    return store.read_manifest(store.current_build(get_settings().index_dir)).model


def test_reindex_adapt_trains_once_serves_search_and_can_be_undone(folder: Path) -> None:
    result = runner.invoke(app, ["reindex", "--adapt"])
    assert result.exit_code == 0, result.output
    assert "Adapted e5 to the knowledge base: 10 phrasing groups" in result.output
    model = _model()
    assert model.startswith("e5kb:")
    assert (get_settings().index_dir / "adapters" / f"e5kb-{model[5:]}.npz").is_file()

    result = runner.invoke(app, ["search", "my parcel is late, when does it arrive?", "-k", "1"])
    assert result.exit_code == 0, result.output
    assert "ship" in result.output

    again = runner.invoke(app, ["reindex", "--adapt"])
    assert again.exit_code == 0, again.output
    assert "Adapter up to date" in again.output and "nothing written" in again.output
    dry = runner.invoke(app, ["reindex", "--adapt", "--dry-run"])
    assert dry.exit_code == 0 and model in dry.output

    plain = runner.invoke(app, ["reindex"])  # the setting is off: back to plain e5
    assert plain.exit_code == 0, plain.output
    assert _model() == "e5:multilingual-e5-small-q4"


def test_adapt_refuses_a_small_faq_but_the_setting_falls_back(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "faq.yaml").write_text(_faq(GROUPS[:3]))
    result = runner.invoke(app, ["reindex", "--adapt"])
    assert result.exit_code == 1
    assert "at least 8 FAQ entries" in result.output
    assert not get_settings().index_dir.exists()

    monkeypatch.setenv("KLARTEXT_ADAPT_EMBEDDINGS", "true")
    get_settings.cache_clear()
    result = runner.invoke(app, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "not adapting" in result.output
    assert _model() == "e5:multilingual-e5-small-q4"
