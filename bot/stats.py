"""The stats report behind ``GET /api/v1/stats`` and ``klartext stats``: daily rates from
:mod:`bot.store.stats` plus the **knowledge gaps** — the user messages the bot could not
answer, grouped by meaning.

Gaps: identical messages (case/whitespace-insensitive) are counted once, the most frequent
:data:`MAX_GAP_TEXTS` distinct ones are embedded (``kind="query"``) and clustered greedily by
cosine similarity to each cluster's running centroid, most frequent text first. A cluster
reports its total count, its representative (the member nearest the centroid) and a few
examples. Email addresses are replaced by ``<email>`` in everything reported.

The embedder is the runtime's (the index's model); without one (no index, or a unit test),
:class:`HashingEmbedder` — word and character-trigram hashing, deterministic — groups by
wording instead of meaning.

**Suggestion picks** (:func:`count_picks`): the bot did not answer a message but offered
knowledge suggestions, and the user clicked one. Each (message, entry) pair is a candidate
alternative phrasing for that entry: added to the FAQ, the next user who asks it that way gets
the answer directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.stats import (
    DayStats,
    SuggestionPick,
    daily_stats,
    suggestion_picks,
    unanswered_questions,
)
from retrieval.types import Embedder, Vectors

MAX_GAP_TEXTS = 1000
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_WORDS = re.compile(r"\w+", re.UNICODE)
# thresholds are given on MiniLM's cosine scale; models that squeeze unrelated texts towards 1
# get their distances to 1 scaled down (the same mapping as the reindex's duplicate check)
_DISTANCE_SCALE = {"e5": 0.28}


@dataclass(frozen=True, slots=True)
class Gap:
    count: int
    representative: str
    examples: list[str]


@dataclass(frozen=True, slots=True)
class Pick:
    """How often users who were not answered then picked the suggested entry ``entry_id``
    (button text ``picked``) after asking ``asked`` (case/whitespace-insensitive, shown in
    its most frequent wording): a candidate alternative phrasing for that entry."""

    count: int
    asked: str
    entry_id: str
    picked: str


@dataclass(slots=True)
class StatsReport:
    start: datetime
    end: datetime
    days: list[DayStats]
    total: DayStats
    gaps: list[Gap] = field(default_factory=list)
    unanswered: int = 0  # fallback turns with a user message in the range
    embedder: str | None = None
    picks: list[Pick] = field(default_factory=list)


def redact(text: str) -> str:
    return _EMAIL.sub("<email>", text)


def cluster_cosine(threshold: float, model: str) -> float:
    """``threshold`` (MiniLM scale) for ``model`` (an embedder name like ``e5:…``)."""
    scale = _DISTANCE_SCALE.get(model.split(":", 1)[0], 1.0)
    return 1.0 - (1.0 - threshold) * scale


class HashingEmbedder:
    """Deterministic lexical vectors: hashed lower-cased words and character trigrams,
    L2-normalised. Implements :class:`retrieval.types.Embedder`."""

    name = "hashing:v1"

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim

    def _features(self, text: str) -> list[str]:
        words = _WORDS.findall(text.lower())
        grams = [f"#{w[i : i + 3]}" for w in words for i in range(max(1, len(w) - 2))]
        return words + grams

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "big")
                out[row, h % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)
        return out


def cluster_questions(
    texts: Sequence[str],
    embedder: Embedder,
    *,
    threshold: float,
    top: int = 10,
    examples: int = 3,
) -> list[Gap]:
    """Greedy cosine clustering of ``texts`` (see the module doc); the ``top`` biggest
    clusters, biggest first. ``threshold`` is on the embedder's own cosine scale."""
    counts: Counter[str] = Counter()
    wordings: dict[str, Counter[str]] = {}
    for t in texts:
        text = " ".join(redact(t).split())
        k = text.lower()
        if k:
            counts[k] += 1
            wordings.setdefault(k, Counter())[text] += 1
    # each distinct question is shown in its most frequent wording (ties: the first seen)
    shown = {k: w.most_common(1)[0][0] for k, w in wordings.items()}
    distinct = [k for k, _ in counts.most_common(MAX_GAP_TEXTS)]
    if not distinct:
        return []
    vectors = np.asarray(embedder.embed([shown[k] for k in distinct], kind="query"), np.float32)
    sums: list[np.ndarray] = []
    members: list[list[int]] = []
    for i, v in enumerate(vectors):
        if sums:
            centroids = np.stack(sums)
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            sims = centroids @ v
            best = int(np.argmax(sims))
            if float(sims[best]) >= threshold:
                sums[best] = sums[best] + v
                members[best].append(i)
                continue
        sums.append(v.copy())
        members.append([i])
    gaps: list[Gap] = []
    for total, idx in zip(sums, members, strict=True):
        centroid = total / max(float(np.linalg.norm(total)), 1e-12)
        rep = idx[int(np.argmax(vectors[idx] @ centroid))]
        by_count = sorted(idx, key=lambda j: -counts[distinct[j]])
        gaps.append(
            Gap(
                count=sum(counts[distinct[j]] for j in idx),
                representative=shown[distinct[rep]],
                examples=[shown[distinct[j]] for j in by_count[:examples]],
            )
        )
    gaps.sort(key=lambda g: (-g.count, g.representative))
    return gaps[:top]


def count_picks(picks: Sequence[SuggestionPick], *, top: int = 10) -> list[Pick]:
    """The ``top`` most frequent (asked, entry) pairs, most frequent first; emails redacted."""
    counts: Counter[tuple[str, str]] = Counter()
    wordings: dict[tuple[str, str], Counter[str]] = {}
    buttons: dict[str, str] = {}
    for p in picks:
        asked = " ".join(redact(p.asked).split())
        key = (asked.lower(), p.entry_id)
        counts[key] += 1
        wordings.setdefault(key, Counter())[asked] += 1
        buttons[p.entry_id] = p.picked
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [
        Pick(n, wordings[key].most_common(1)[0][0], key[1], buttons[key[1]]) for key, n in ranked
    ]


def _total(days: list[DayStats], start: date) -> DayStats:
    t = DayStats(start)
    weighted = 0.0
    weight = 0
    for d in days:
        t.conversations += d.conversations
        t.turns += d.turns
        t.answered += d.answered
        t.fallback += d.fallback
        t.handoffs += d.handoffs
        t.searched += d.searched
        t.feedback_up += d.feedback_up
        t.feedback_down += d.feedback_down
        t.resolved += d.resolved
        if d.avg_confidence is not None:
            weighted += d.avg_confidence * d.searched
            weight += d.searched
    t.avg_confidence = round(weighted / weight, 4) if weight else None
    return t


async def build_report(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    embedder: Embedder | None,
    threshold: float,
    top: int = 10,
) -> StatsReport:
    """Daily numbers, totals and the ``top`` knowledge gaps of ``[start, end)``.
    ``threshold`` is on MiniLM's cosine scale (mapped to the embedder's); the embedding and
    clustering run in a worker thread (bounded by :data:`MAX_GAP_TEXTS`)."""
    days = await daily_stats(session, start, end)
    questions = await unanswered_questions(session, start, end)
    picks = count_picks(await suggestion_picks(session, start, end), top=top)
    emb: Embedder = embedder or HashingEmbedder()
    cos = cluster_cosine(threshold, emb.name)
    gaps = await asyncio.to_thread(cluster_questions, questions, emb, threshold=cos, top=top)
    return StatsReport(
        start=start,
        end=end,
        days=days,
        total=_total(days, days[0].day if days else start.date()),
        gaps=gaps,
        unanswered=len(questions),
        embedder=emb.name,
        picks=picks,
    )
