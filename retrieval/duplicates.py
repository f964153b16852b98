"""Duplicate FAQ phrasings for the reindex report (:mod:`retrieval.reindex`).

Exact duplicates come from :func:`knowledge.changes.find_exact_duplicates`; on an incremental
reindex only those touching changed entries are looked for (:func:`exact_touching`). Near
duplicates are FAQ phrasings of different entries, same language, whose vectors reach a cosine
threshold (:func:`near_duplicates`, threshold per model from :func:`duplicate_cosine`). Pairs
carried over from the previous manifest are merged in (:func:`merge_duplicates`), and the report
is stored in the manifest as plain dicts (:func:`pair_dict`).
"""

from __future__ import annotations

import operator
import re
from dataclasses import fields, replace
from typing import Any

from knowledge.changes import DuplicatePair, find_exact_duplicates
from knowledge.schema import Entry, EntryKind, KnowledgeBase
from retrieval import store
from retrieval.types import Vectors

_NEIGHBOURS = 8

# ``duplicate_threshold`` is on MiniLM's cosine scale. Other models squeeze unrelated texts
# closer to 1 (e5: ~0.75 vs MiniLM ~0.1), so their distances to 1 are scaled down: e5's
# threshold for the default 0.92 is 1 - 0.08 * 0.28 = 0.978 (checked on the demo KB).
DUPLICATE_DISTANCE_SCALE = {"e5": 0.28}


def duplicate_cosine(threshold: float, model: str) -> float:
    """The cosine at or above which two phrasings count as near-duplicates for ``model``."""
    scale = DUPLICATE_DISTANCE_SCALE.get(model.split(":", 1)[0], 1.0)
    return 1.0 - (1.0 - threshold) * scale


_PUNCT_KEEP_NUL = re.compile(r"[^\w\0]+")


def exact_touching(kb: KnowledgeBase, ids: list[str]) -> list[DuplicatePair]:
    """Exact duplicates involving ``ids`` (pairs among the other entries are carried over
    from the manifest): a cheap regex key preselects the entries to check precisely, and a
    substring test (the longest word of each wanted key) skips most entries before that."""
    touched = set(ids)

    def keys(entry: Entry) -> set[str]:
        # one regex call per entry: phrasings joined by NUL, which _PUNCT_KEEP_NUL keeps
        joined = "\0".join(entry.phrasings).casefold().replace("_", " ")
        return {k.strip() for k in _PUNCT_KEEP_NUL.sub(" ", joined).split("\0")}

    wanted = set().union(*(keys(e) for e in kb.entries if e.id in touched))
    probes = {max(k.split(), key=len) for k in wanted if k}
    subset = []
    for e in kb.entries:
        if e.id in touched:
            subset.append(e)
            continue
        text = "\0".join(e.phrasings).casefold()
        if any(probe in text for probe in probes) and keys(e) & wanted:
            subset.append(e)
    return find_exact_duplicates(subset)


def near_duplicates(
    index: Any,
    vectors: Vectors,
    rows: store.RowMap,
    by_id: dict[str, Entry],
    *,
    start: int,
    threshold: float,
) -> list[DuplicatePair]:
    """FAQ phrasings from row ``start`` on whose nearest rows of *other* FAQ entries reach
    ``threshold`` cosine."""
    faq = EntryKind.FAQ
    queries = [i for i in range(start, len(rows)) if by_id[rows.entry_ids[i]].kind is faq]
    if not queries or index.size < 2:
        return []
    pos_of = {rid: i for i, rid in enumerate(rows.row_ids)}
    scores, ids = index.search(vectors[queries], _NEIGHBOURS)
    found: list[DuplicatePair] = []
    for qi, r in enumerate(queries):
        a = by_id[rows.entry_ids[r]]
        for s, rid in zip(scores[qi], ids[qi], strict=True):
            pos = pos_of.get(int(rid))
            if pos is None:
                continue
            s = float(vectors[pos] @ vectors[r])  # exact (the flat index scores in fp16)
            if s < threshold:
                continue
            b = by_id[rows.entry_ids[pos]]
            if b.id == a.id or b.kind is not faq or b.lang != a.lang:  # translations aren't dups
                continue
            a_text = store.matched_text(a, rows.phrase[r])
            b_text = store.matched_text(b, rows.phrase[pos])
            found.append(
                DuplicatePair(
                    a_id=a.id,
                    a_location=a.location,
                    b_id=b.id,
                    b_location=b.location,
                    text=a_text if a_text == b_text else f"{a_text} ≈ {b_text}",
                    similarity=round(float(s), 4),
                )
            )
    return found


def merge_duplicates(
    pairs: list[DuplicatePair], carried: list[dict[str, Any]], kb: KnowledgeBase
) -> list[DuplicatePair]:
    """Deduplicate pairs (either order), refresh locations, most similar first."""
    by_id = kb.by_id()
    best: dict[frozenset[str], DuplicatePair] = {}
    for pair in [*pairs, *(DuplicatePair(**d) for d in carried)]:
        if pair.a_id not in by_id or pair.b_id not in by_id:
            continue
        key = frozenset((pair.a_id, pair.b_id))
        if key not in best or pair.similarity > best[key].similarity:
            best[key] = pair
    out = []
    for p in best.values():
        a_loc, b_loc = by_id[p.a_id].location, by_id[p.b_id].location
        moved = p.a_location != a_loc or p.b_location != b_loc
        out.append(replace(p, a_location=a_loc, b_location=b_loc) if moved else p)
    return sorted(out, key=lambda p: (-p.similarity, p.a_location, p.b_location))


_PAIR_FIELDS = tuple(f.name for f in fields(DuplicatePair))
_pair_values = operator.attrgetter(*_PAIR_FIELDS)


def pair_dict(pair: DuplicatePair) -> dict[str, Any]:
    return dict(zip(_PAIR_FIELDS, _pair_values(pair), strict=True))
