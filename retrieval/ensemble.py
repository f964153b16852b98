"""A second, stronger encoder consulted when the first one is unsure ("second opinion").

e5 (the multilingual default) ranks the demo shop's English paraphrases well but its cosine
separates right from wrong top hits poorly (AUC 0.72 on the English development queries, vs
0.95 for all-mpnet-base-v2's cosine; docs/benchmarks.md, "Ensembles (session 4)"). mpnet costs
~30–45 ms of CPU per query, three to four times e5, so it runs only for queries in
:attr:`SecondOpinion.languages` whose calibrated top score lies in :attr:`SecondOpinion.band`
(~30 % of English development queries at (0.2, 0.8)); confident answers and clear refusals keep
e5's decision.

When it runs, each candidate entry's cosine becomes the **row-level** ensemble
``max over the entry's rows of (cos_e5 + β·cos_2) / (1 + β)`` (what one inner product over
concatenated vectors ``[e5; mpnet]`` with query ``[e5(q); β·mpnet(q)]`` computes), the fused
ranking score is recomputed with it, and the candidate's score comes from
:class:`~retrieval.ensemble_pairs.EnsembleCalibration`
(``sigmoid(w_c·cos_ens + w_v·coverage + w_h·log P_head + b)``), fitted by
``bench/bench_ensemble.py`` on development data only (the constants per encoder pair:
:mod:`retrieval.ensemble_pairs`).

The second encoder's row vectors are computed once per build (bulk, all threads) and stored
next to it as ``second-<family>.npy`` with the row texts' digest; vectors of texts this process
or another build of the index (the previous one survives a reindex) already embedded are
reused, so an incremental reindex embeds only new rows.
Opt-in: ``HybridRetriever(..., second_opinion=SecondOpinion(...))``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from retrieval import store
from retrieval.agreement import AgreementRule
from retrieval.ensemble_pairs import (
    AGREEMENT_PAIRS,
    ENSEMBLE_CALIBRATIONS,
    PAIRS,
    EnsembleCalibration,
)
from retrieval.snapshot import Snapshot
from retrieval.types import Embedder, Vectors

if TYPE_CHECKING:
    from retrieval.candidates import Candidate, SearchState
    from retrieval.search import HybridRetriever

log = logging.getLogger(__name__)
EXTRA_ROWS = 20  # the second encoder's best rows whose entries join the candidates
Floats = npt.NDArray[np.float64]
Signal = npt.NDArray[np.floating[Any]]
Ints = npt.NDArray[np.int64]
_LOGGED: set[str] = set()


def _mpnet() -> Embedder:
    """The second encoder the bot uses (raises ``MpnetPackageMissing`` without the wheels)."""
    from retrieval.mpnet import MpnetEmbedder
    from retrieval.mpnet_package import find_parts

    find_parts()
    return MpnetEmbedder()


def _log_once(message: str) -> None:
    if message not in _LOGGED:
        _LOGGED.add(message)
        log.warning(message)


def second_opinion_for(first_model: str, rule: str = "cascade") -> SecondOpinion | None:
    """The bot's opt-in second opinion (setting ``second_opinion``) for an index built with
    ``first_model`` (a manifest model name): mpnet with the pair's fitted constants for
    ``rule`` (``"cascade"``: :data:`~retrieval.ensemble_pairs.PAIRS`, ``"agree"``:
    :data:`~retrieval.ensemble_pairs.AGREEMENT_PAIRS`), or None — logged once — when the pair
    has none or the mpnet wheels are not installed."""
    from retrieval.errors import RetrievalError

    family = first_model.split(":", 1)[0]
    pairs = AGREEMENT_PAIRS if rule == "agree" else PAIRS
    opts = pairs.get(f"{family}+mpnet")
    if opts is None:
        fitted = ", ".join(k.split("+")[0] for k in pairs)
        _log_once(
            f"second_opinion: no {rule!r} constants for a {family!r} index (fitted: {fitted}); off"
        )
        return None
    try:
        second = _mpnet()
    except RetrievalError as exc:
        _log_once(f"second_opinion: off ({exc})")
        return None
    return SecondOpinion(second, first_family=family, beta=opts.beta, band=opts.band,
                         margin=opts.margin, calibration=opts.calibration,
                         keep_first_scores=opts.calibration is None and opts.agreement is None,
                         agreement=opts.agreement)  # fmt: skip


def warm_up(retriever: HybridRetriever) -> None:
    """Load the second encoder and embed (or load) the served build's row vectors now, so that
    the first unsure query does not wait for them (the demo KB: ~2 min of CPU the first time,
    then read from ``second-<family>.npy``)."""
    so = retriever.second_opinion
    if so is not None:
        so.embedder.embed(["warm-up"], kind="query")
        so.row_vectors(retriever.index_dir, retriever._state.snap)


def _digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def row_texts(snap: Snapshot) -> list[str]:
    """The text behind every vector row of ``snap`` (in row order)."""
    return [
        store.row_texts(snap.entries[int(e)])[int(p)]
        for e, p in zip(snap.row_entry, snap.row_phrase, strict=True)
    ]


def top_score(scores: Sequence[float], same: Sequence[bool], threshold: float = 0.5) -> float:
    """The score the engine decides on among the first hits (``scores`` in hit order): the
    best same-language hit when it reaches ``threshold``, else the best hit overall."""
    same_scores = [s for s, ok in zip(scores, same, strict=True) if ok]
    if same_scores and max(same_scores) >= threshold:
        return max(same_scores)
    return max(scores, default=0.0)


class SecondOpinion:
    """Re-rank and re-score uncertain queries with a second encoder (see the module doc)."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        first_family: str = "e5",
        beta: float = 1.0,
        band: tuple[float, float] = (0.2, 0.8),
        margin: float | None = None,
        languages: Sequence[str] = ("en",),
        calibration: EnsembleCalibration | None = None,
        keep_first_scores: bool = False,
        agreement: AgreementRule | None = None,
    ) -> None:
        key = f"{first_family}+{embedder.name.split(':', 1)[0]}"
        cal = calibration or ENSEMBLE_CALIBRATIONS.get(key)
        self.agreement = agreement  # when set, scores by agreement (retrieval/agreement.py)
        if cal is None and not keep_first_scores and agreement is None:
            raise ValueError(f"no ensemble calibration for {key!r}: fit one (bench_ensemble)")
        self.embedder = embedder
        self.beta = beta
        self.band = band
        self.margin = margin  # when set, the trigger: fused top-1 − top-2 below it
        self.languages = tuple(languages)
        # None: first encoder's scores (or the agreement rule's)
        self.calibration = None if keep_first_scores or agreement is not None else cal
        self.first_family = first_family
        self._lock = threading.Lock()
        self._vectors: dict[str, Vectors] = {}  # build name -> row vectors
        self._by_text: dict[str, npt.NDArray[np.float32]] = {}  # reuse across builds
        self.runs = 0  # queries that consulted the second encoder (for benchmarks)

    @property
    def family(self) -> str:
        return self.embedder.name.split(":", 1)[0]

    def applies(self, lang: str | None, score: float, margin: float = float("inf")) -> bool:
        """Consult for this query? ``score``: the first encoder's calibrated top score;
        ``margin``: its fused top-1 − top-2 gap (the trigger when :attr:`margin` is set)."""
        if lang not in self.languages:
            return False
        if self.margin is not None:
            return margin < self.margin
        return self.band[0] <= score <= self.band[1]

    def _file(self, index_dir: Path, snap: Snapshot) -> Path:
        return store.builds_dir(index_dir) / snap.build / f"second-{self.family}.npy"

    def row_vectors(self, index_dir: Path, snap: Snapshot) -> Vectors:
        """The second encoder's vector of every row of ``snap`` (computed once per build)."""
        got = self._vectors.get(snap.build)
        if got is not None:
            return got
        with self._lock:
            got = self._vectors.get(snap.build)
            if got is None:
                got = self._load_or_embed(index_dir, snap)
                self._vectors = {snap.build: got}  # keep only the current build
            return got

    def _load_or_embed(self, index_dir: Path, snap: Snapshot) -> Vectors:
        texts = row_texts(snap)
        digest = _digest([self.embedder.name, *texts])
        path = self._file(index_dir, snap)
        stamp = path.with_suffix(".json")
        try:
            if stamp.read_text(encoding="utf-8").strip() == digest:
                vectors: Vectors = np.load(path, allow_pickle=False)
                if vectors.shape[0] == len(texts):
                    self._remember(texts, vectors)
                    return vectors
        except (OSError, ValueError):
            pass
        missing = sorted({t for t in texts if t not in self._by_text})
        if missing:
            self._seed(index_dir, snap.build)
            missing = [t for t in missing if t not in self._by_text]
        if missing:
            log.info("second opinion: embedding %d rows with %s", len(missing), self.embedder.name)
            fresh = self.embedder.embed(missing, kind="passage")
            self._by_text.update(zip(missing, fresh, strict=True))
        vectors = np.ascontiguousarray(np.stack([self._by_text[t] for t in texts]), np.float32)
        self._by_text = {t: self._by_text[t] for t in texts}  # forget rows no longer indexed
        self._save(path, stamp, vectors, digest)
        return vectors

    def _seed(self, index_dir: Path, current: str) -> None:
        """Vectors stored with the index's other builds (the previous one survives a
        reindex), so a new process embeds only the rows that changed."""
        for build in sorted(store.builds_dir(index_dir).iterdir()):
            path = build / f"second-{self.family}.npy"
            if build.name == current or not path.is_file():
                continue
            try:
                entries = {e.id: e for e in store.read_entries(build)}
                rows = store.read_rows(build)
                texts = [store.row_texts(entries[e])[p]
                         for e, p in zip(rows.entry_ids, rows.phrase, strict=True)]  # fmt: skip
                stamp = path.with_suffix(".json").read_text(encoding="utf-8").strip()
                if stamp != _digest([self.embedder.name, *texts]):
                    continue
                vectors = np.load(path, allow_pickle=False)
            except (OSError, ValueError, KeyError, IndexError):
                continue
            if vectors.shape[0] == len(texts):
                self._by_text.update(zip(texts, vectors, strict=True))

    def _remember(self, texts: list[str], vectors: Vectors) -> None:
        self._by_text = dict(zip(texts, vectors, strict=True))

    @staticmethod
    def _save(path: Path, stamp: Path, vectors: Vectors, digest: str) -> None:
        """Best effort (a read-only index only costs the embedding per start)."""
        try:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                np.save(fh, vectors, allow_pickle=False)
            os.replace(tmp, path)
            stamp.write_text(digest, encoding="utf-8")
        except OSError as exc:
            log.warning("second opinion: cannot store %s (%s)", path, exc)

    def ensemble_cosines(
        self, snap: Snapshot, rows2: Vectors, entries: Ints, qvec: Vectors, qvec2: Vectors
    ) -> Floats:
        """Per entry of ``entries``: the best row's ``(cos_1 + β·cos_2) / (1 + β)``."""
        starts, counts = snap.entry_row_ptr[entries], snap.entry_row_count[entries]
        offsets = np.cumsum(counts) - counts
        idx = np.arange(int(counts.sum())) - np.repeat(offsets, counts) + np.repeat(starts, counts)
        rows = snap.entry_rows[idx]
        sims = np.asarray(snap.vectors[rows], dtype=np.float64) @ qvec.astype(np.float64)
        sims += self.beta * (rows2[rows].astype(np.float64) @ qvec2.astype(np.float64))
        sims /= 1.0 + self.beta
        out: Floats = np.maximum.reduceat(sims, offsets) if len(sims) else np.zeros(0)
        return out

    def rescore(
        self,
        index_dir: Path,
        snap: Snapshot,
        query: str,
        qvec: Vectors,
        entries: Ints,
        signals: tuple[Signal, Signal, Signal],
        *,
        weight: float,
        head_weight: float,
    ) -> Rescored:
        """Ensemble cosine, fused score and calibrated score of ``entries`` plus the entries of
        the second encoder's ``EXTRA_ROWS`` best rows (appended). ``signals``: BM25, coverage
        and head log P of *every* entry."""
        bm25, coverage, logp = signals
        qvec2 = self.embedder.embed([query], kind="query")[0]
        rows2 = self.row_vectors(index_dir, snap)
        self.runs += 1
        sims2 = rows2 @ qvec2
        n = min(EXTRA_ROWS, len(sims2))
        best = np.argpartition(-sims2, n - 1)[:n] if n else np.zeros(0, np.int64)
        values = np.concatenate([entries, snap.row_entry[best]]).astype(np.int64)
        _, first = np.unique(values, return_index=True)
        ents = values[np.sort(first)]
        cos = self.ensemble_cosines(snap, rows2, ents, qvec, qvec2)
        top = float(bm25.max()) if len(bm25) and bm25.max() > 0 else 1.0
        lp = logp[ents].astype(np.float64)
        fused = weight * cos + (1 - weight) * bm25[ents] / top + head_weight * lp
        if self.calibration is None:  # the caller keeps the first encoder's scores
            return Rescored(ents, fused, np.full(len(ents), np.nan), cos)
        scores = self.calibration(cos, coverage[ents].astype(np.float64), lp)
        return Rescored(ents, fused, scores, cos)


@dataclass(frozen=True, slots=True)
class Rescored:
    """:meth:`SecondOpinion.rescore`'s result, aligned arrays."""

    entries: Ints
    fused: Floats
    scores: Floats
    cosines: Floats  # the ensemble cosines


def consult(
    retriever: HybridRetriever,
    cands: list[Candidate],
    state: SearchState,
    query: str,
    qvec: Vectors,
    lang: str | None,
    head_logp: Signal | None,
) -> list[Candidate]:
    """``HybridRetriever.search``'s second-opinion step (weighted fusion, ``cands`` in fused
    order): re-rank and re-score with ``retriever.second_opinion`` when it applies to the
    first encoder's family and language and the first encoder is unsure. Without an entry
    head (e.g. one phrasing per entry) its log P counts as 0 — only for pairs whose constants
    do not use it (or that keep the first encoder's scores)."""
    from retrieval.calibration import head_rank_weight_for
    from retrieval.candidates import Candidate, candidate_score
    from retrieval.langpref import prefer_lang
    from retrieval.snapshot import best_rows

    so, snap = retriever.second_opinion, state.snap
    family = state.embedder.name.split(":", 1)[0]  # constants are per encoder pair
    if so is None or lang not in so.languages or not cands or family != so.first_family:
        return cands
    if head_logp is None and so.calibration is not None and so.calibration.logp_weight:
        return cands  # constants fitted with the head's log P: no head, no second opinion
    first = prefer_lang(
        cands,
        lang,
        lambda c: (snap.entries[c.entry].lang, candidate_score(c, state)),
        retriever.cross_lang_margin,
    )[:5]
    same = [snap.entries[c.entry].lang == lang for c in first]
    gap = first[0].fused - first[1].fused if len(first) > 1 else float("inf")
    if not so.applies(lang, top_score([candidate_score(c, state) for c in first], same), gap):
        return cands
    bm25, coverage = snap.lexical.score(query)
    logp = head_logp if head_logp is not None else np.zeros(len(snap.entries), np.float32)
    ents = np.array([c.entry for c in cands], dtype=np.int64)
    r = so.rescore(retriever.index_dir, snap, query, qvec, ents, (bm25, coverage, logp),
                   weight=retriever._weight(),
                   head_weight=head_rank_weight_for(state.embedder.name))  # fmt: skip
    scores = r.scores
    if so.agreement is not None:  # the entry both encoders put first, if they agree
        top2 = int(r.entries[int(np.argmax(r.fused))]) if len(r.entries) else -1
        agreed = (r.entries == first[0].entry) & (top2 == first[0].entry)
        agreed &= candidate_score(first[0], state) >= so.agreement.min_first_score
        scores = so.agreement.scores(r.cosines, coverage[r.entries].astype(np.float64), agreed)
    known = {c.entry: c for c in cands}
    new = np.array([e for e in r.entries.tolist() if e not in known], dtype=np.int64)
    cos, row = best_rows(snap, new, qvec)
    for e, c1, rw in zip(new.tolist(), cos.tolist(), row.tolist(), strict=True):
        known[e] = Candidate(e, c1, int(snap.row_phrase[rw]), float(bm25[e]), float(coverage[e]),
                             head_logp=None if head_logp is None else float(logp[e]))  # fmt: skip
    out = [known[e] for e in r.entries.tolist()]
    for c, fused, score in zip(out, r.fused.tolist(), scores.tolist(), strict=True):
        c.fused = fused
        if so.calibration is not None or so.agreement is not None:
            c.score = score  # else candidate_score gives the first encoder's calibrated score
    out.sort(key=lambda c: (-c.fused, -c.cosine, c.entry))
    return out
