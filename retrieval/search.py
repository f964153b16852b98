"""Hybrid retrieval: dense FAQ-phrasing search + BM25, fused, with calibrated scores.

* **Dense**: every FAQ phrasing (question and each alternative question) is its own vector
  row; passages are one row (heading + text). The top rows are collapsed to entries by
  their best phrasing, whose exact cosine is then computed from the stored vectors.
* **Lexical**: BM25 over entries (phrasings + answer + tags), see :mod:`retrieval.lexical`.
* **Fusion** orders the candidates: ``"weighted"`` (default:
  ``weight·cosine + (1-weight)·bm25/max_bm25``, weight per embedder family, see
  :data:`FUSION_WEIGHTS`), ``"rrf"`` (reciprocal rank fusion, k=60), or
  ``"dense"``/``"lexical"`` alone (for evaluation). RRF gives BM25 an equal vote and loses
  11 points of hit@1 on StackFAQ, hence the weighted default (docs/benchmarks.md).
* **Calibrated score** (``Hit.score``, in [0, 1]) is independent of the fusion order, see
  :mod:`retrieval.calibration`.
* **Language**: with ``lang``, entries in that language come first; another language's hit
  still ranks among them when its score beats the best same-language score by
  ``cross_lang_margin``; the overall favourite and each other language's first candidate
  come back after them (:mod:`retrieval.langpref`). ``Hit.translated`` says whether an entry
  exists in another language too (:mod:`retrieval.translations`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from knowledge.schema import Entry
from retrieval import store
from retrieval.calibration import (
    Calibration,
    calibration_for,
    head_calibration_for,
    head_rank_weight_for,
)
from retrieval.candidates import Candidate, SearchState, candidate_score
from retrieval.langpref import keep_last, language_firsts, prefer_lang
from retrieval.snapshot import Snapshot, best_rows, first_occurrences, load_snapshot
from retrieval.types import Embedder, Hit, Reranker, Vectors
from retrieval.verifier import verifier_for, verify_candidates

if TYPE_CHECKING:
    from retrieval.ensemble import SecondOpinion

log = logging.getLogger(__name__)
Fusion = Literal["rrf", "weighted", "dense", "lexical"]

# Dense weight of the "weighted" fusion per embedder family, chosen on development queries
# only (StackFAQ dev half for MiniLM, covid_faq_de dev for e5 and USE; bench_retrieval_quality).
FUSION_WEIGHTS = {"minilm": 0.9, "sentence-transformers": 0.9, "e5": 0.95, "use": 0.8}


def fusion_weight_for(model: str) -> float:
    return FUSION_WEIGHTS.get(model.split(":", 1)[0], 0.9)


RRF_K = 60
HEAD_CANDIDATES = 5


Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


class HybridRetriever:
    """The :class:`retrieval.types.Retriever` used by the bot, the CLI and the evaluation.

    Hot reload: :meth:`reload_if_changed` swaps in a newly published build; with
    ``auto_reload_s`` set, :meth:`search` checks ``CURRENT`` at most that often and reloads in a
    background thread, so a running server follows ``klartext reindex`` without a restart or
    a slow request. ``follow_model`` (set by :func:`load_retriever` when it chose the embedder
    from the manifest) lets a reload switch to a build made with another model;
    ``embedder_for(name)`` (implies following) builds that model's embedder, e.g. wrapped in a
    cache (a knowledge base re-adapted after an FAQ change is a new model, ``e5kb:<key>``).
    ``use_verifier=True`` scores hits with the answerability verifier
    (:mod:`retrieval.verifier`) where it is fitted; off by default (docs/retrieval.md).
    """

    def __init__(
        self,
        index_dir: Path,
        embedder: Embedder,
        *,
        fusion: Fusion = "weighted",
        weight: float | None = None,
        reranker: Reranker | None = None,
        calibration: Calibration | None = None,
        candidates: int = 50,
        cross_lang_margin: float = 0.1,
        auto_reload_s: float | None = None,
        follow_model: bool = False,
        embedder_for: Callable[[str], Embedder] | None = None,
        use_head: bool = True,
        use_verifier: bool = False,
        second_opinion: SecondOpinion | None = None,
        _snapshot: Snapshot | None = None,
    ) -> None:
        self.index_dir = index_dir
        self.second_opinion = second_opinion  # opt-in, retrieval/ensemble.py
        self.fusion: Fusion = fusion
        self.weight = weight
        self.reranker = reranker
        self.candidates = candidates
        self.cross_lang_margin = cross_lang_margin
        self.auto_reload_s = auto_reload_s
        self.follow_model = follow_model or embedder_for is not None
        self.embedder_for = embedder_for
        self._fixed_calibration = calibration
        self._lock = threading.Lock()
        self._last_check = time.monotonic()
        self._reloading: threading.Thread | None = None
        snap = _snapshot if _snapshot is not None else load_snapshot(index_dir)
        store.check_model(snap.manifest, embedder.name)
        self.use_head = use_head
        self.use_verifier = use_verifier
        self._state = self._new_state(snap, embedder, calibration)

    # --- state ------------------------------------------------------------------------
    def _new_state(
        self, snap: Snapshot, embedder: Embedder, fixed: Calibration | None
    ) -> SearchState:
        """A fixed calibration (fitting, evaluation) means embedding-only scores."""
        head_cal = None if fixed is not None else head_calibration_for(embedder.name)
        verifier = None if fixed is not None else verifier_for(embedder.name)
        cal = fixed or calibration_for(embedder.name)
        return SearchState(snap, embedder, cal, head_cal, verifier)

    @property
    def _snap(self) -> Snapshot:
        return self._state.snap

    @property
    def embedder(self) -> Embedder:
        return self._state.embedder

    @property
    def main_language(self) -> str | None:
        """The language most entries are in: a multilingual knowledge base's complete one,
        the others usually translate part of it (the engine answers from it when the user's
        language has nothing, bot.decide)."""
        return self._snap.main_lang

    @property
    def calibration(self) -> Calibration:
        return self._state.calibration

    @property
    def entries(self) -> Mapping[str, Entry]:
        return self._snap.by_id

    @property
    def manifest(self) -> store.Manifest:
        return self._snap.manifest

    @property
    def build(self) -> str:
        return self._snap.build

    def reload_if_changed(self) -> bool:
        """Swap in the build named by ``CURRENT`` if it changed; searches in flight keep
        the state they started with. A build made with another model raises
        ``IndexModelMismatch`` (the old build keeps serving) unless ``follow_model``."""
        name = store.current_name(self.index_dir)
        if name is None or name == self._snap.build:
            return False
        with self._lock:
            state = self._state
            if name == state.snap.build:
                return False
            snap = load_snapshot(self.index_dir, name)
            embedder = state.embedder
            if self.follow_model and snap.manifest.model != embedder.name:
                from retrieval.embedders import embedder_from_name

                make = self.embedder_for or (lambda n: embedder_from_name(n, self.index_dir))
                embedder = make(snap.manifest.model)
                embedder.embed(["warm-up"], kind="query")  # load the model before swapping
            store.check_model(snap.manifest, embedder.name)
            self._state = self._new_state(snap, embedder, self._fixed_calibration)
        log.info("retrieval index reloaded: build %s", name)
        return True

    def _maybe_reload(self) -> None:
        if self.auto_reload_s is None:
            return
        now = time.monotonic()
        if now - self._last_check < self.auto_reload_s:
            return
        self._last_check = now
        if store.current_name(self.index_dir) == self._snap.build:
            return
        if self._reloading is None or not self._reloading.is_alive():
            self._reloading = threading.Thread(
                target=self._reload_logged, name="klartext-index-reload", daemon=True
            )
            self._reloading.start()

    def _reload_logged(self) -> None:
        try:
            self.reload_if_changed()
        except Exception:  # the old build keeps serving
            log.exception("retrieval index reload failed; still serving %s", self._snap.build)

    def coverage(self, query: str, entry_id: str) -> float:
        """IDF-weighted share of the query's terms found in the entry (a calibration input)."""
        snap = self._snap
        pos = next((i for i, e in enumerate(snap.entries) if e.id == entry_id), None)
        return 0.0 if pos is None else float(snap.lexical.score(query)[1][pos])

    # --- search -----------------------------------------------------------------------
    def search(
        self, query: str, *, k: int = 5, lang: str | None = None, fusion: Fusion | None = None
    ) -> list[Hit]:
        self._maybe_reload()
        state = self._state
        snap = state.snap
        if not snap.entries or not query.strip():
            return []
        mode: Fusion = fusion or self.fusion
        qvec = state.embedder.embed([query], kind="query")[0]
        head_logp = (
            snap.head.log_probs(qvec)
            if snap.head is not None and self.use_head and mode != "lexical"
            else None
        )
        cands = self._candidates(snap, query, qvec, mode, head_logp)
        self._fuse(cands, mode)
        cands.sort(key=lambda c: (-c.fused, -c.cosine, c.entry))
        # the verifier was fitted on the weighted fusion with the head's signals
        if self.use_verifier and mode == "weighted" and head_logp is not None:
            verify_candidates(cands, state, query, lang)
        elif self.second_opinion is not None and mode == "weighted":
            from retrieval.ensemble import consult

            cands = consult(self, cands, state, query, qvec, lang, head_logp)
        if self.reranker is not None:
            hits = [self._hit(snap, c, state) for c in cands[: max(k * 3, 20)]]
            hits = self.reranker.rerank(query, hits)
            if lang:
                hits = prefer_lang(hits, lang, lambda h: (h.lang, h.score), self.cross_lang_margin)
        else:
            first = cands[0] if cands else None
            firsts = language_firsts(cands, lambda c: snap.entries[c.entry].lang)
            if lang:
                cands = prefer_lang(
                    cands,
                    lang,
                    lambda c: (snap.entries[c.entry].lang, candidate_score(c, state)),
                    self.cross_lang_margin,
                )
                cands = keep_last(cands, [first, *firsts.values()], k)
            hits = [self._hit(snap, c, state, i + 1) for i, c in enumerate(cands[:k])]
            leaders = {id(c) for c in firsts.values()}
            return [replace(h, overall_first=c is first, lang_first=id(c) in leaders)
                    if c is first or id(c) in leaders else h
                    for h, c in zip(hits, cands, strict=False)]  # fmt: skip
        return [replace(h, rank=i + 1) for i, h in enumerate(hits[:k])]

    def _candidates(
        self, snap: Snapshot, query: str, qvec: Vectors, mode: Fusion, head_logp: Floats | None
    ) -> list[Candidate]:
        """Dense top rows' entries, then BM25's, then the head's favourites (first occurrence
        order), with their signals gathered in one vectorised pass."""
        n = self.candidates
        parts: list[Ints] = []
        if mode != "lexical":
            _, ids = snap.index.search(qvec[None, :], n)
            ids = ids[0][ids[0] >= 0]
            where = np.searchsorted(snap.row_ids_sorted, ids)
            rows = snap.row_pos_sorted[np.minimum(where, len(snap.row_pos_sorted) - 1)]
            parts.append(snap.row_entry[rows])
        bm25, coverage = snap.lexical.score(query)
        if mode != "dense":
            top = np.argsort(-bm25)[:n] if len(bm25) <= n else np.argpartition(-bm25, n)[:n]
            parts.append(top[bm25[top] > 0])
        if head_logp is not None:  # the head's favourites, which dense search may rank low
            top = np.argpartition(-head_logp, min(HEAD_CANDIDATES, len(head_logp) - 1))
            parts.append(top[:HEAD_CANDIDATES])
        ents = first_occurrences(parts)
        best_cos, best_row = best_rows(snap, ents, qvec)
        columns = [
            ents.tolist(),
            best_cos.tolist(),
            snap.row_phrase[best_row].tolist(),
            bm25[ents].tolist(),
            coverage[ents].tolist(),
        ]
        logps = head_logp[ents].tolist() if head_logp is not None else None
        cands = [
            Candidate(e, cos, phrase, b, cov, head_logp=logps[i] if logps is not None else None)
            for i, (e, cos, phrase, b, cov) in enumerate(zip(*columns, strict=True))
        ]
        if mode == "rrf":  # the ranks only feed reciprocal rank fusion
            for rank, c in enumerate(sorted(cands, key=lambda c: -c.cosine), 1):
                c.dense_rank = rank
            for rank, c in enumerate(sorted(cands, key=lambda c: -c.bm25), 1):
                c.lexical_rank = rank if c.bm25 > 0 else 0
        return cands

    def _weight(self) -> float:
        return self.weight if self.weight is not None else fusion_weight_for(self.embedder.name)

    def _fuse(self, cands: list[Candidate], mode: Fusion) -> None:
        weight = self._weight()
        head_weight = head_rank_weight_for(self.embedder.name)
        top_bm25 = max((c.bm25 for c in cands), default=0.0) or 1.0
        for c in cands:
            head = head_weight * c.head_logp if c.head_logp is not None else 0.0
            if mode == "dense":
                c.fused = c.cosine + head
            elif mode == "lexical":
                c.fused = c.bm25
            elif mode == "weighted":
                c.fused = weight * c.cosine + (1 - weight) * c.bm25 / top_bm25 + head
            else:
                c.fused = 1.0 / (RRF_K + c.dense_rank) + (
                    1.0 / (RRF_K + c.lexical_rank) if c.lexical_rank else 0.0
                )

    def _hit(self, snap: Snapshot, c: Candidate, state: SearchState, rank: int = 0) -> Hit:
        entry = snap.entries[c.entry]
        return Hit(
            entry=entry,
            score=candidate_score(c, state),
            matched=store.matched_text(entry, c.phrase),
            dense_score=c.cosine,
            lexical_score=c.bm25,
            rank=rank,
            translated=None if snap.translated is None else bool(snap.translated[c.entry]),
        )


def load_retriever(
    index_dir: Path,
    *,
    embedder: Embedder | None = None,
    fusion: Fusion = "weighted",
    reranker: Reranker | None = None,
    auto_reload_s: float | None = 2.0,
    use_verifier: bool = False,
    second_opinion: SecondOpinion | None = None,
    embedder_for: Callable[[str], Embedder] | None = None,
) -> HybridRetriever:
    """Open the served build in ``index_dir``. Without ``embedder``, the one recorded in the
    manifest is rebuilt (``retrieval.embedders.embedder_from_name``) and followed across
    reloads; with one, its name must match the manifest (``IndexModelMismatch`` otherwise).
    ``auto_reload_s``: how often searches look for a newly published build (None = never).
    ``use_verifier``: score hits with the answerability verifier (:mod:`retrieval.verifier`;
    off by default — on the demo's user-style questions it did not beat the calibration).
    ``second_opinion``: a second encoder for unsure queries (:mod:`retrieval.ensemble`).
    ``embedder_for``: follow a new build's model with this factory (see HybridRetriever)."""
    snap = load_snapshot(index_dir)
    follow = embedder is None
    if embedder is None:
        from retrieval.embedders import embedder_from_name

        embedder = embedder_from_name(snap.manifest.model, index_dir)
    return HybridRetriever(
        index_dir,
        embedder,
        fusion=fusion,
        reranker=reranker,
        auto_reload_s=auto_reload_s,
        follow_model=follow,
        embedder_for=embedder_for,
        use_verifier=use_verifier,
        second_opinion=second_opinion,
        _snapshot=snap,
    )
