"""The ``klartext`` command. Subcommand modules register on the Typer apps in ``_apps``;
heavy imports (torch, sentence-transformers, spaCy, FAISS, LangChain) happen inside commands
only, so ``klartext --help`` stays fast."""

from __future__ import annotations

from bot.cli import (
    apikey_cmds,
    ask_cmds,
    db_cmds,
    eval_cmds,
    index_cmds,
    nlu_cmds,
    serve_cmds,
    stats_cmds,
)
from bot.cli._apps import app

__all__ = [
    "apikey_cmds",
    "app",
    "ask_cmds",
    "db_cmds",
    "eval_cmds",
    "index_cmds",
    "nlu_cmds",
    "serve_cmds",
    "stats_cmds",
]
