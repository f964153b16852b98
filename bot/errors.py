"""Klartext's exception tree. Every error carries a stable ``code`` (used in HTTP error
bodies, websocket ``error`` frames and logs) and a user-safe ``message``.

::

    KlartextError                      KT000  (knowledge.errors — the lowest layer owns the root)
    ├── KnowledgeError                 KT200  knowledge invalid; .issues = [file:line field]
    ├── RetrievalError                 KT300  (retrieval.errors)
    │   ├── IndexModelMismatch         KT301  index built with another embedding model
    │   ├── IndexMissing               KT302  no index yet: run `klartext reindex`
    │   ├── IndexCorrupt               KT303  manifest/files unreadable
    │   └── AdaptError                 KT304  too few phrasings to adapt; adapter file missing
    ├── ConfigError                    KT100  bad or inconsistent settings
    ├── NLUError                       KT400  NLU model missing / training failed
    ├── LLMError                       KT500  provider failed (timeout, 5xx, refused, malformed)
    │   └── LLMUnavailable             KT501  circuit open / not configured
    ├── ActionError                    KT600  backend action failed
    │   └── ActionNotFound             KT604  e.g. unknown order number
    ├── ProtocolError                  KT700  bad client frame (codes in docs/protocol.md)
    └── StoreError                     KT800  database unavailable / not migrated
"""

from __future__ import annotations

from knowledge.errors import KlartextError, KnowledgeError
from retrieval.errors import IndexCorrupt, IndexMissing, IndexModelMismatch, RetrievalError

__all__ = [
    "ActionError",
    "ActionNotFound",
    "ConfigError",
    "IndexCorrupt",
    "IndexMissing",
    "IndexModelMismatch",
    "KlartextError",
    "KnowledgeError",
    "LLMError",
    "LLMUnavailable",
    "NLUError",
    "ProtocolError",
    "RetrievalError",
    "StoreError",
]


class ConfigError(KlartextError):
    code = "KT100"


class NLUError(KlartextError):
    code = "KT400"


class LLMError(KlartextError):
    code = "KT500"


class LLMUnavailable(LLMError):
    code = "KT501"


class ActionError(KlartextError):
    code = "KT600"


class ActionNotFound(ActionError):
    code = "KT604"


class ProtocolError(KlartextError):
    code = "KT700"


class StoreError(KlartextError):
    code = "KT800"
