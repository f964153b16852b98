"""Which entries exist in another language: the closest *answer* in another language.

A bilingual knowledge base (the demo: English and German) has entries that are translations
of each other and entries that exist in one language only (the demo's product, repair and
jobs pages are English only). The engine answers a German question from an English entry
only when that entry has no German counterpart (bot.decide, "content in another language") —
otherwise the German entry is the answer the user should get, and a weak German match means
"not sure", not "answer in English".

Build files (written by :mod:`retrieval.reindex` for knowledge bases with two or more
languages, with a model family that has a floor; absent otherwise):

::

    answers.npy    float32 (entries, dim): each entry's answer embedded as a passage
    answers.json   the entry ids of those rows

Unchanged entries reuse the previous build's answer vectors, so an incremental reindex embeds
only the answers that changed. An entry "has a translation" when its answer's cosine to the
closest answer in another language reaches the embedder family's floor
(:data:`TRANSLATION_FLOORS`, fitted on the demo: see docs/retrieval.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from knowledge.schema import Entry
from retrieval.errors import IndexCorrupt
from retrieval.types import Embedder, Vectors

ANSWERS = "answers.npy"
ANSWER_IDS = "answers.json"
FILES = (ANSWERS, ANSWER_IDS)

# Cosine of two answers above which they are translations of each other, per embedder family.
# e5: the twin floor of retrieval.adapt (an answer this close to one in another language is its
# translation); e5kb: the floor that reproduces e5's verdicts best on the demo (174/201).
TRANSLATION_FLOORS = {"e5": 0.9, "e5kb": 0.86}

# How much an other-language entry's cosine must beat the best same-language entry's before
# the engine answers from it (bot.decide), per embedder family: swept 0.0-0.08 through the
# engine on the development files only (docs/benchmarks.md, session 7).
FOREIGN_MARGINS = {"e5": 0.02, "e5kb": 0.01}

Flags = npt.NDArray[np.bool_]


def foreign_margin(model: str) -> float | None:
    """The margin for ``model`` (``family:name``), None where none was fitted (never)."""
    return FOREIGN_MARGINS.get(model.split(":", 1)[0])


def translation_floor(model: str) -> float | None:
    """The floor for ``model`` (``family:name``), None where none was fitted."""
    return TRANSLATION_FLOORS.get(model.split(":", 1)[0])


def main_language(entries: Sequence[Entry]) -> str | None:
    """The language with the most entries (ties: alphabetical, so the choice is stable): in a
    multilingual knowledge base usually the complete one, which the others translate in part."""
    counts = Counter(e.lang for e in entries)
    return min(counts, key=lambda lang: (-counts[lang], lang)) if counts else None


def wanted(entries: Sequence[Entry], model: str) -> bool:
    """Whether a build of ``entries`` with ``model`` stores answer vectors: two or more
    languages, and a floor for the model's family."""
    return len({e.lang for e in entries}) > 1 and translation_floor(model) is not None


def embed_answers(
    entries: Sequence[Entry],
    embedder: Embedder,
    previous: Path | None,
    unchanged: set[str],
    embed: Callable[[Embedder, list[str]], Vectors],
) -> tuple[list[str], Vectors]:
    """Answer vectors of ``entries`` (in order), reusing ``previous`` build's rows for the
    ``unchanged`` entries (same content there; the reindex's diff says which)."""
    old = _reusable(previous, unchanged)
    todo = [e for e in entries if e.id not in old]
    fresh = embed(embedder, [e.answer for e in todo]) if todo else None
    rows: dict[str, Vectors] = dict(old)
    if fresh is not None:
        rows.update({e.id: fresh[i] for i, e in enumerate(todo)})
    ids = [e.id for e in entries]
    vectors = np.stack([rows[i] for i in ids]).astype(np.float32, copy=False)
    return ids, vectors


def _reusable(previous: Path | None, unchanged: set[str]) -> dict[str, Vectors]:
    if previous is None or not unchanged:
        return {}
    try:
        loaded = load(previous)
    except IndexCorrupt:  # damaged: embed everything again
        return {}
    if loaded is None:
        return {}
    ids, vectors = loaded
    return {i: vectors[n] for n, i in enumerate(ids) if i in unchanged}


def save(build: Path, ids: list[str], vectors: Vectors) -> None:
    np.save(build / ANSWERS, vectors, allow_pickle=False)
    (build / ANSWER_IDS).write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")


def load(build: Path) -> tuple[list[str], Vectors] | None:
    """The stored answer vectors, or None when the build has none (one language, or a build
    made before answers were stored)."""
    if not (build / ANSWERS).is_file():
        return None
    try:
        vectors = np.load(build / ANSWERS, allow_pickle=False)
        ids = json.loads((build / ANSWER_IDS).read_text(encoding="utf-8"))
    except (OSError, ValueError, EOFError) as exc:  # JSONDecodeError is a ValueError
        raise IndexCorrupt(f"build {build}: cannot read the answer vectors ({exc})") from None
    if not isinstance(ids, list) or len(ids) != len(vectors) or vectors.ndim != 2:
        raise IndexCorrupt(f"build {build}: {ANSWER_IDS} does not match {ANSWERS}")
    return [str(i) for i in ids], vectors


def translated(build: Path, entries: Sequence[Entry], model: str) -> Flags | None:
    """Per entry (in ``entries`` order): whether an answer in another language is a
    translation of its answer. None when unknown (no answer vectors, or no floor for the
    model family)."""
    floor = translation_floor(model)
    loaded = load(build) if floor is not None else None
    if loaded is None or floor is None:
        return None
    ids, vectors = loaded
    pos = {i: n for n, i in enumerate(ids)}
    if any(e.id not in pos for e in entries):
        raise IndexCorrupt(f"build {build}: {ANSWER_IDS} does not list every entry")
    rows = vectors[[pos[e.id] for e in entries]]
    langs = np.array([e.lang for e in entries])
    best = np.full(len(entries), -1.0, dtype=np.float32)
    for lang in np.unique(langs):  # per language, in blocks: (block, n_other) at a time
        mine, other = np.flatnonzero(langs == lang), rows[langs != lang]
        for start in range(0, len(mine) if len(other) else 0, _BLOCK):
            part = mine[start : start + _BLOCK]
            best[part] = (rows[part] @ other.T).max(axis=1)
    flags: Flags = best >= floor
    return flags


_BLOCK = 1024  # rows per product: 1024 x 10k answers is 40 MB, not n x n
