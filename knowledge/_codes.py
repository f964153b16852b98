"""Stable issue codes for :class:`knowledge.schema.KnowledgeIssue` (see docs/knowledge.md).

==== =====================================================================
KB001 file cannot be read or parsed (not UTF-8, YAML/JSON/CSV/front-matter syntax)
KB002 wrong file structure (no ``entries`` list, missing CSV columns, empty file)
KB003 an entry is not a mapping
KB004 a required field (question, answer) is missing or empty
KB005 a field has the wrong type or an invalid value
KB006 invalid language code (must be two lowercase letters, e.g. ``en``, ``de``)
KB007 unknown or repeated field
KB008 duplicate id (both locations are named)
KB009 a help page yields no text
KB010 unsupported file type
KB011 invalid id (empty, contains whitespace or ``#``)
==== =====================================================================
"""

from __future__ import annotations

SYNTAX = "KB001"
STRUCTURE = "KB002"
NOT_MAPPING = "KB003"
MISSING = "KB004"
WRONG_TYPE = "KB005"
BAD_LANG = "KB006"
UNKNOWN_FIELD = "KB007"
DUPLICATE_ID = "KB008"
EMPTY_PAGE = "KB009"
UNSUPPORTED = "KB010"
BAD_ID = "KB011"
