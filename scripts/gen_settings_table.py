"""Rewrite the README's configuration table from ``bot.config.Settings`` (run after adding a
setting; ``tests/test_settings.py`` fails while one is undocumented).

    PYTHONPATH=. .venv/bin/python scripts/gen_settings_table.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bot.config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
HEADER = "| env var | default | meaning |\n|---|---|---|\n"
SPECIAL_DEFAULTS = {"knowledge_dir": "knowledge/demo (bundled)"}


def _default(name: str, value: Any) -> str:
    if name in SPECIAL_DEFAULTS:
        return f"`{SPECIAL_DEFAULTS[name]}`"
    if value is None:
        return "—"
    if hasattr(value, "get_secret_value"):
        return "`(secret)`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value, separators=(',', ':'))}`"
    return f"`{value}`"


def table() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `KLARTEXT_{name.upper()}` | {_default(name, field.default)} | {meaning} |")
    return HEADER + "\n".join(rows) + "\n"


def main() -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(HEADER) + r"(?:\|.*\|\n)+")
    if not pattern.search(text):
        raise SystemExit("configuration table not found in README.md")
    README.write_text(pattern.sub(lambda _: table(), text, count=1), encoding="utf-8")


if __name__ == "__main__":
    main()
