"""Retrieval-layer errors (see ``bot/errors.py`` for the whole tree)."""

from __future__ import annotations

from knowledge.errors import KlartextError


class RetrievalError(KlartextError):
    code = "KT300"


class IndexMissing(RetrievalError):
    """No index at the configured directory: run ``klartext reindex``."""

    code = "KT302"


class IndexModelMismatch(RetrievalError):
    """The index was built with another embedding model than the one configured."""

    code = "KT301"


class IndexCorrupt(RetrievalError):
    code = "KT303"


class AdaptError(RetrievalError):
    """The knowledge base cannot be adapted to, or its adapter file is missing/unreadable."""

    code = "KT304"
