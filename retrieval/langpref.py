"""The language preference of a search, as pure list operations (used by
:mod:`retrieval.search` and :mod:`retrieval.ensemble`).

* :func:`prefer_lang`: the user's language first; another language's item only where it beats
  the best same-language score by a margin.
* :func:`language_firsts` / :func:`keep_last`: the overall favourite and every language's first
  candidate stay in the returned hits even when the preference pushed them down (the engine
  suggests the favourite, and answers content that exists only in another language).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def prefer_lang(
    items: list[T], lang: str, key: Callable[[T], tuple[str, float]], margin: float
) -> list[T]:
    """Stable partition: ``lang`` items, and others scoring ``margin`` above the best ``lang``
    one, first."""
    keyed = [(item, *key(item)) for item in items]
    best_same = max((score for _, lg, score in keyed if lg == lang), default=0.0)
    bar = best_same + margin
    first = [item for item, lg, score in keyed if lg == lang or score >= bar]
    rest = [item for item, lg, score in keyed if not (lg == lang or score >= bar)]
    return first + rest


def language_firsts(items: Iterable[T], lang_of: Callable[[T], str]) -> dict[str, T]:
    """The first item of each language, in the given (fused) order."""
    firsts: dict[str, T] = {}
    for item in items:
        firsts.setdefault(lang_of(item), item)
    return firsts


def keep_last(items: list[T], keep: Iterable[T | None], k: int) -> list[T]:
    """``items`` cut to ``k`` with every item of ``keep`` in it (by identity): the missing
    ones take the last places. Unchanged when they would fill all ``k`` places."""
    top = {id(c) for c in items[:k]}
    missing: list[T] = []
    for c in keep:
        if c is not None and id(c) not in top:
            top.add(id(c))
            missing.append(c)
    if not missing or k <= len(missing):
        return items
    return [*items[: k - len(missing)], *missing]
