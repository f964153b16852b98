"""The second opinion (retrieval/ensemble.py): when it runs, what it computes, and how its row
vectors are stored and reused."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEmbedder, faq, kb_of

from retrieval import store
from retrieval.ensemble import SecondOpinion, row_texts, top_score
from retrieval.ensemble_pairs import EnsembleCalibration
from retrieval.reindex import reindex
from retrieval.search import HybridRetriever, load_retriever
from retrieval.types import Vectors

OPTS = {"hnsw_threshold": 1000, "duplicate_threshold": 0.99}
GIFT = [
    faq(
        "buy",
        "How do I buy a gift card?",
        alts=("Where can I purchase a voucher?", "I want to get a voucher as a present"),
        line=1,
    ),
    faq(
        "use",
        "How do I use a gift card?",
        alts=("How do I redeem a voucher?", "Where do I enter my gift card code?"),
        line=9,
    ),
    faq(
        "ship",
        "How long does delivery take?",
        alts=("When will my parcel arrive?", "How many days until my order arrives?"),
        line=17,
    ),
    faq(
        "versand",
        "Wie lange dauert der Versand?",
        alts=("Wann kommt mein Paket?",),
        lang="de",
        line=25,
    ),
]
QUERY = "something nice for my nephew"
CAL = EnsembleCalibration(cosine_weight=10.0, coverage_weight=0.0, logp_weight=0.0, bias=-5.0)


class SecondFake(FakeEmbedder):
    """Trigram vectors, except that ``QUERY`` means the "present" phrasing of ``buy``."""

    def __init__(self) -> None:
        super().__init__(dim=128, name="second:trigram")

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        swapped = ["I want to get a voucher as a present" if t == QUERY else t for t in texts]
        out = super().embed(swapped, kind=kind)
        self.texts[len(self.texts) - len(texts) :] = texts  # record what was asked
        return out


def _index(tmp_path: Path, entries: list = GIFT) -> Path:  # type: ignore[type-arg]
    reindex(kb_of(tmp_path, entries), tmp_path / "idx", FakeEmbedder(), **OPTS)  # type: ignore[arg-type]
    return tmp_path / "idx"


def _second(band: tuple[float, float] = (0.0, 1.0)) -> SecondOpinion:
    return SecondOpinion(SecondFake(), first_family="fake", band=band, calibration=CAL)


def test_top_score_prefers_a_confident_same_language_hit() -> None:
    assert top_score([0.9, 0.6], [False, True]) == 0.6
    assert top_score([0.9, 0.3], [False, True]) == 0.9
    assert top_score([0.2, 0.4], [True, True]) == 0.4
    assert top_score([], []) == 0.0


def test_unknown_pair_needs_explicit_calibration() -> None:
    with pytest.raises(ValueError, match="fake\\+second"):
        SecondOpinion(SecondFake(), first_family="fake")


def test_second_opinion_reranks_and_rescores_uncertain_queries(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    plain = HybridRetriever(idx, FakeEmbedder())
    second = _second()
    retr = load_retriever(idx, embedder=FakeEmbedder(), second_opinion=second)
    before = plain.search(QUERY, k=3, lang="en")
    hits = retr.search(QUERY, k=3, lang="en")
    assert second.runs == 1
    assert before[0].entry.id != "buy"
    assert hits[0].entry.id == "buy"
    # the score is the ensemble calibration of the row-level ensemble cosine (β = 1)
    snap = retr._state.snap
    rows1 = np.asarray(snap.vectors)
    rows2 = second.embedder.embed(row_texts(snap))
    q1 = FakeEmbedder().embed([QUERY], kind="query")[0]
    q2 = second.embedder.embed([QUERY], kind="query")[0]
    ens = (rows1 @ q1 + rows2 @ q2) / 2
    buy = [i for i, e in enumerate(snap.row_entry) if snap.entries[e].id == "buy"]
    expected = 1 / (1 + np.exp(-(10 * ens[buy].max() - 5)))
    assert hits[0].score == pytest.approx(expected, rel=1e-5)
    assert hits[0].dense_score == pytest.approx(float((rows1[buy] @ q1).max()), rel=1e-5)


def test_not_consulted_for_other_languages_or_outside_the_band(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    plain = HybridRetriever(idx, FakeEmbedder())
    other = SecondOpinion(SecondFake(), first_family="e5", calibration=CAL)  # another pair
    cases = ((_second(), "de"), (_second(), None), (_second((1.5, 2.0)), "en"), (other, "en"))
    for second, lang in cases:
        retr = HybridRetriever(idx, FakeEmbedder(), second_opinion=second)
        for q in (QUERY, "Wann kommt mein Paket?", "How do I redeem a voucher?"):
            got = [(h.entry.id, h.score) for h in retr.search(q, k=3, lang=lang)]
            assert got == [(h.entry.id, h.score) for h in plain.search(q, k=3, lang=lang)]
        assert second.runs == 0


def test_row_vectors_are_stored_with_the_build_and_reused(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    fake, fake2 = SecondFake(), SecondFake()
    second = SecondOpinion(fake, first_family="fake", calibration=CAL, band=(0.0, 1.0))
    HybridRetriever(idx, FakeEmbedder(), second_opinion=second).search(QUERY, lang="en")
    build = store.current_build(idx)
    assert (build / "second-second.npy").is_file()
    snap = HybridRetriever(idx, FakeEmbedder())._state.snap
    assert fake.texts == [QUERY, *sorted(set(row_texts(snap)))]  # each row once
    again = SecondOpinion(
        fake2, first_family="fake", calibration=CAL, band=(0.0, 1.0)
    )  # new process: loads the file, embeds only the query
    HybridRetriever(idx, FakeEmbedder(), second_opinion=again).search(QUERY, lang="en")
    assert fake2.texts == [QUERY]
    # an incremental reindex: only the new entry's rows are embedded
    more = [*GIFT, faq("wrap", "Can you gift wrap my order?", line=30)]
    reindex(kb_of(tmp_path, more), idx, FakeEmbedder(), **OPTS)  # type: ignore[arg-type]
    retr = HybridRetriever(idx, FakeEmbedder(), second_opinion=again)
    fake2.texts.clear()
    retr.search(QUERY, lang="en")
    assert fake2.texts == [QUERY, "Can you gift wrap my order?"]


def test_a_damaged_or_foreign_vector_file_is_recomputed(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    build = store.current_build(idx)
    (build / "second-second.npy").write_bytes(b"garbage")
    (build / "second-second.json").write_text("not the digest")
    second = _second()
    vectors = second.row_vectors(idx, HybridRetriever(idx, FakeEmbedder())._state.snap)
    assert vectors.shape == (len(row_texts(HybridRetriever(idx, FakeEmbedder())._state.snap)), 128)
    assert np.load(build / "second-second.npy").shape == vectors.shape


def test_a_new_process_reuses_the_previous_builds_vectors(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    first = SecondOpinion(SecondFake(), first_family="fake", calibration=CAL)
    first.row_vectors(idx, HybridRetriever(idx, FakeEmbedder())._state.snap)
    more = [*GIFT, faq("wrap", "Can you gift wrap my order?", line=30)]
    reindex(kb_of(tmp_path, more), idx, FakeEmbedder(), **OPTS)  # type: ignore[arg-type]
    fake = SecondFake()
    later = SecondOpinion(fake, first_family="fake", calibration=CAL)  # after a restart
    snap = HybridRetriever(idx, FakeEmbedder())._state.snap
    vectors = later.row_vectors(idx, snap)
    assert fake.texts == ["Can you gift wrap my order?"]
    assert np.allclose(vectors, SecondFake().embed(row_texts(snap)), atol=1e-6)


def test_margin_trigger_replaces_the_band() -> None:
    so = SecondOpinion(SecondFake(), first_family="fake", calibration=CAL, margin=0.05)
    assert so.applies("en", 0.99, 0.01) and not so.applies("en", 0.5, 0.1)
    assert not so.applies("de", 0.5, 0.01) and not so.applies(None, 0.5, 0.01)
    assert not _second((0.2, 0.8)).applies("en", 0.9, 0.0)  # without margin: the band decides


def test_keep_first_scores_reranks_but_scores_with_the_first_calibration(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    plain = HybridRetriever(idx, FakeEmbedder())
    first = {h.entry.id: h.score for h in plain.search(QUERY, k=10, lang="en")}
    second = SecondOpinion(SecondFake(), first_family="fake", margin=10.0, keep_first_scores=True)
    assert second.calibration is None  # no constants needed for this pair
    hits = HybridRetriever(idx, FakeEmbedder(), second_opinion=second).search(QUERY, lang="en")
    assert second.runs == 1 and hits[0].entry.id == "buy"
    assert {h.entry.id: h.score for h in hits} == pytest.approx(
        {h.entry.id: first[h.entry.id] for h in hits}
    )
    never = SecondOpinion(SecondFake(), first_family="fake", margin=0.0, keep_first_scores=True)
    retr = HybridRetriever(idx, FakeEmbedder(), second_opinion=never)
    assert [h.entry.id for h in retr.search(QUERY, lang="en")] == [
        h.entry.id for h in plain.search(QUERY, lang="en")
    ]
    assert never.runs == 0


def test_without_head_only_pairs_that_ignore_log_p_are_consulted(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    with_logp = EnsembleCalibration(10.0, 0.0, 0.5, -5.0)
    uses = SecondOpinion(SecondFake(), first_family="fake", calibration=with_logp, band=(0, 1))
    ignores = _second()  # CAL: log P weight 0
    for second in (uses, ignores):
        retr = HybridRetriever(idx, FakeEmbedder(), use_head=False, second_opinion=second)
        retr.search(QUERY, lang="en")
    assert uses.runs == 0 and ignores.runs == 1
