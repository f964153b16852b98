"""Settings: every field is documented in the README table; env and TOML sources work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def _documented() -> set[str]:
    rows = re.findall(r"^\|\s*`KLARTEXT_([A-Z0-9_]+)`\s*\|", README.read_text(), flags=re.M)
    return {r.lower() for r in rows}


def test_every_setting_is_documented_in_readme() -> None:
    missing = set(Settings.model_fields) - _documented()
    assert not missing, f"settings missing from the README configuration table: {sorted(missing)}"


def test_readme_documents_no_unknown_setting() -> None:
    unknown = _documented() - set(Settings.model_fields)
    assert not unknown, f"README documents settings that do not exist: {sorted(unknown)}"


def test_env_overrides_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLARTEXT_ANSWER_THRESHOLD", "0.7")
    monkeypatch.setenv("KLARTEXT_LANGUAGES", '["de"]')
    s = Settings()
    assert s.answer_threshold == 0.7
    assert s.languages == ["de"]


def test_toml_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "klartext.toml"
    cfg.write_text('port = 9123\nllm_provider = "openai"\n')
    monkeypatch.setenv("KLARTEXT_CONFIG", str(cfg))
    s = Settings()
    assert s.port == 9123
    assert s.llm_provider == "openai"


def test_env_wins_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "klartext.toml"
    cfg.write_text("port = 9123\n")
    monkeypatch.setenv("KLARTEXT_CONFIG", str(cfg))
    monkeypatch.setenv("KLARTEXT_PORT", "9124")
    assert Settings().port == 9124


def test_invalid_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLARTEXT_LLM_PROVIDER", "gpt5-magic")
    with pytest.raises(ValueError, match="llm_provider"):
        Settings()


def test_derived_paths(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.index_dir == tmp_path / "index"
    assert s.effective_database_url.startswith("sqlite+aiosqlite:///")
