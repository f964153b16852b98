"""Root of Klartext's exception tree and the knowledge layer's errors.

The root lives here because ``knowledge`` is the lowest layer: every other layer may
import it, and it imports nothing of ours. The whole tree is drawn in ``bot/errors.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from knowledge.schema import KnowledgeIssue


class KlartextError(Exception):
    """Base error: a stable ``code`` plus a user-safe ``message``."""

    code: ClassVar[str] = "KT000"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class KnowledgeError(KlartextError):
    """A knowledge folder (or file) could not be loaded; ``issues`` says where and why."""

    code = "KT200"

    def __init__(self, message: str, issues: Sequence[KnowledgeIssue] = ()) -> None:
        super().__init__(message)
        self.issues = list(issues)

    def __str__(self) -> str:
        return "\n".join([super().__str__(), *(f"  {i}" for i in self.issues)])
