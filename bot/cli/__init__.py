"""The ``klartext`` command. Subcommand modules register on the Typer apps in ``_apps``;
heavy imports (torch, sentence-transformers, spaCy, FAISS) happen inside commands only,
so ``klartext --help`` stays fast."""

from __future__ import annotations

from bot.cli._apps import app

__all__ = ["app"]
