"""Regenerate docs/cli.md from the live `--help` of every command (tests/cli checks it is complete).

.venv/bin/python scripts/gen_cli_docs.py > docs/cli.md
"""

from __future__ import annotations

import os

from typer.testing import CliRunner

from bot.cli import app
from tests.cli.test_app import _command_paths

os.environ["COLUMNS"] = "100"
os.environ["TERMINAL_WIDTH"] = "100"
runner = CliRunner()
print("# `klartext` command reference\n")
print("Generated from `--help` by `scripts/gen_cli_docs.py`; `tests/cli/test_app.py` fails when a")
print("command is missing here.\n")
for path in _command_paths():
    out = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "100"}).output
    body = "\n".join(line.rstrip() for line in out.strip().splitlines())
    print(f"### `klartext {path}`\n\n```text\n{body}\n```\n")
