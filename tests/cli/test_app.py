"""The `klartext` command tree: every command has help, imports stay light, docs match --help."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from bot.cli import app

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "sentence_transformers", "faiss", "spacy", "langchain_core", "transformers")


def _command_paths() -> list[str]:
    root = typer.main.get_command(app)
    paths: list[str] = []

    def walk(cmd: object, prefix: str) -> None:
        subcommands = getattr(cmd, "commands", None)
        if isinstance(subcommands, dict):
            for name, sub in subcommands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            paths.append(prefix)

    walk(root, "")
    return sorted(paths)


def test_command_tree_has_the_documented_commands() -> None:
    paths = set(_command_paths())
    expected = {
        "reindex", "search", "ask", "serve", "kb stats", "nlu train", "nlu parse",
        "eval retrieval", "eval intents", "eval answers", "db upgrade",
    }  # fmt: skip
    assert expected <= paths, f"missing commands: {sorted(expected - paths)}"


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for path in _command_paths():
        result = runner.invoke(app, [*path.split(), "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_every_command_is_documented_in_docs_cli() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    documented = set(re.findall(r"^### `klartext ([a-z -]+?)`", doc, flags=re.M))
    missing = set(_command_paths()) - documented
    assert not missing, f"commands missing from docs/cli.md: {sorted(missing)}"


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bot.cli import app\n"
        "CliRunner().invoke(app, ['--help'])\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]", out.stdout
