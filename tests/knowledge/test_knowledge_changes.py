"""Stable ids, content hashes, diff against a manifest, exact duplicates, file fingerprints."""

from __future__ import annotations

from pathlib import Path

from knowledge.changes import (
    DuplicatePair,
    diff_entries,
    find_exact_duplicates,
    fingerprint_files,
    normalise_question,
)
from knowledge.faq import make_entry
from knowledge.loaders import load_knowledge
from knowledge.schema import Entry, EntryKind

FAQ = """\
entries:
  - question: How do I return an item?
    answer: Use the return label in your parcel.
  - id: fixed-1
    question: Can I change my order?
    answer: Within one hour after ordering.
"""


def _faq(
    id: str | None, question: str, alts: tuple[str, ...] = (), source: str = "f.yaml", line: int = 1
) -> Entry:
    return make_entry(
        id=id,
        kind=EntryKind.FAQ,
        question=question,
        answer="a",
        source=source,
        line=line,
        alt_questions=alts,
    )


def _ids_and_hashes(root: Path) -> dict[str, tuple[str, str]]:
    return {e.question: (e.id, e.content_hash) for e in load_knowledge(root).entries}


def test_derived_ids_change_only_with_question_or_source(tmp_path: Path) -> None:
    faq = tmp_path / "faq.yaml"
    faq.write_text(FAQ, encoding="utf-8")
    before = _ids_and_hashes(tmp_path)
    # answer edit: same ids, new hash for that entry only
    faq.write_text(FAQ.replace("return label", "prepaid return label"), encoding="utf-8")
    after = _ids_and_hashes(tmp_path)
    q = "How do I return an item?"
    assert after[q][0] == before[q][0]
    assert after[q][1] != before[q][1]
    assert after["Can I change my order?"] == before["Can I change my order?"]
    # whitespace/case of the question do not matter for the derived id
    faq.write_text(FAQ.replace(q, "how do I  return an item?"), encoding="utf-8")
    assert _ids_and_hashes(tmp_path)["how do I  return an item?"][0] == before[q][0]
    # a different question or a moved file derive a new id; given ids stay
    faq.write_text(FAQ.replace(q, "How do I send an item back?"), encoding="utf-8")
    assert _ids_and_hashes(tmp_path)["How do I send an item back?"][0] != before[q][0]
    faq.write_text(FAQ, encoding="utf-8")
    faq.rename(tmp_path / "moved.yaml")
    moved = _ids_and_hashes(tmp_path)
    assert moved[q][0] != before[q][0]
    assert moved["Can I change my order?"][0] == "fixed-1"


def test_content_hash_covers_meaningful_fields() -> None:
    base = _faq("x", "Q?")
    assert _faq("x", "Q?").content_hash == base.content_hash
    assert _faq("x", "Q?", alts=("other",)).content_hash != base.content_hash
    assert _faq("x", "Q?", line=9).content_hash == base.content_hash  # position is not content
    tagged = make_entry(
        id="x", kind=EntryKind.FAQ, question="Q?", answer="a", source="f", line=1, tags=("t",)
    )
    assert tagged.content_hash != base.content_hash
    german = make_entry(
        id="x", kind=EntryKind.FAQ, question="Q?", answer="a", source="f", line=1, lang="de"
    )
    assert german.content_hash != base.content_hash


def test_diff_entries_against_manifest() -> None:
    a, b, c = _faq("a", "A?"), _faq("b", "B?"), _faq("c", "C?")
    previous = {"a": a.content_hash, "b": "0000000000000000", "gone": "1111111111111111"}
    changes = diff_entries([a, b, c], previous)
    assert changes.added == ["c"]
    assert changes.changed == ["b"]
    assert changes.removed == ["gone"]
    assert changes.unchanged == ["a"]
    assert changes.to_embed == ["c", "b"]
    assert changes.counts() == {"added": 1, "changed": 1, "removed": 1, "unchanged": 1}
    assert not changes.is_empty
    same = diff_entries([a], {"a": a.content_hash})
    assert same.is_empty and same.unchanged == ["a"]
    assert diff_entries([], {}).is_empty


def test_exact_duplicates_across_entries() -> None:
    e1 = _faq("ship", "How long does delivery take?", source="en.yaml", line=3)
    e2 = _faq("ship2", "Lieferzeit?", alts=("how long does DELIVERY take",), source="b.csv", line=7)
    e3 = _faq("pay", "Can I pay by card?", alts=("Can I pay by card ?",), source="en.yaml", line=9)
    e4 = _faq("pay2", "can i pay by card", source="de.yaml", line=2)
    passage = make_entry(
        id="p#x",
        kind=EntryKind.PASSAGE,
        question="How long does delivery take?",
        answer="text",
        source="p.md",
        line=1,
    )
    german = make_entry(
        id="de-x",
        kind=EntryKind.FAQ,
        question="Can I pay by card?",
        answer="Ja.",
        source="d",
        line=1,
        lang="de",
    )
    pairs = find_exact_duplicates([e1, e2, e3, e4, passage, german])
    assert pairs == [
        DuplicatePair("ship", "en.yaml:3", "ship2", "b.csv:7", "how long does DELIVERY take"),
        DuplicatePair("pay", "en.yaml:9", "pay2", "de.yaml:2", "can i pay by card"),
    ]
    assert pairs[0].similarity == 1.0
    assert "en.yaml:3" in str(pairs[0]) and "b.csv:7" in str(pairs[0])


def test_normalise_question() -> None:
    assert (
        normalise_question("  Wie lange dauert die LIEFERUNG?! ")
        == "wie lange dauert die lieferung"
    )
    assert normalise_question("Größe—Passform") == normalise_question("GRÖSSE passform")


def test_fingerprint_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "faq.yaml").write_text("entries: []\n", encoding="utf-8")
    (tmp_path / "intents.yaml").write_text("intents: {}\n", encoding="utf-8")
    (tmp_path / "sub" / "page.md").write_text("# Hi\ntext\n", encoding="utf-8")
    (tmp_path / ".hidden").write_text("x", encoding="utf-8")
    first = fingerprint_files(tmp_path)
    assert list(first) == ["faq.yaml", "intents.yaml", "sub/page.md"]
    assert all(len(h) == 64 for h in first.values())
    assert fingerprint_files(tmp_path) == first
    (tmp_path / "intents.yaml").write_text("intents: {greeting: {}}\n", encoding="utf-8")
    second = fingerprint_files(tmp_path)
    assert [k for k in first if first[k] != second[k]] == ["intents.yaml"]
