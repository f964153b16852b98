"""The ``klartext`` command. Subcommand modules register on the Typer apps in ``_apps``;
heavy imports (torch, sentence-transformers, spaCy, FAISS, LangChain) happen inside commands
only, so ``klartext --help`` stays fast."""

from __future__ import annotations

from bot.cli import ask_cmds, eval_cmds, index_cmds, nlu_cmds, serve_cmds
from bot.cli._apps import app

__all__ = ["app", "ask_cmds", "eval_cmds", "index_cmds", "nlu_cmds", "serve_cmds"]
