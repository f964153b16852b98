"""Loading a whole knowledge folder: every format, languages, skipped files, determinism."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from knowledge.errors import KnowledgeError
from knowledge.loaders import (
    default_lang_for,
    knowledge_files,
    load_file,
    load_knowledge,
    load_path,
)
from knowledge.schema import EntryKind, content_hash

MINI = Path(__file__).parent / "fixtures" / "mini"


def test_loads_every_format_and_skips_bot_hidden_and_unknown_files() -> None:
    kb = load_knowledge(MINI)
    sources = {e.source for e in kb.entries}
    assert sources == {
        "de/faq.yaml",
        "extra.json",
        "faq.en.yaml",
        "pages/account.txt",
        "pages/shipping.md",
        "pages/zahlung.de.html",
        "table.csv",
    }
    assert kb.issues == []
    rels = [p.relative_to(MINI).as_posix() for p in knowledge_files(MINI)]
    assert rels == sorted(rels)
    assert "intents.yaml" not in rels and ".draft.yaml" not in rels and "notes.rst" not in rels


def test_yaml_entry_fields() -> None:
    by_id = load_knowledge(MINI).by_id()
    ship = by_id["en-ship-01"]
    assert ship.kind is EntryKind.FAQ
    assert ship.question == "How long does delivery take?"
    assert ship.alt_questions == ("When will my parcel arrive?", "how many days for shipping")
    assert ship.answer == "Orders to Germany arrive in **1–3 working days**."
    assert ship.tags == ("shipping",)
    assert ship.url == "/help/shipping#delivery-times"
    assert ship.lang == "en"
    assert ship.location == "faq.en.yaml:3"
    expected = content_hash(
        "faq",
        ship.question,
        ship.alt_questions,
        ship.answer,
        "en",
        ship.url,
        ship.tags,
    )
    assert ship.content_hash == expected


def test_json_and_csv_entries() -> None:
    by_id = load_knowledge(MINI).by_id()
    acc = by_id["en-acc-01"]
    assert (acc.source, acc.line, acc.tags) == ("extra.json", 4, ("account",))
    inv = by_id["en-pay-02"]
    assert inv.alt_questions == ("where is my invoice", "can I get a receipt")
    assert (inv.line, inv.tags, inv.url) == (2, ("payment",), None)
    safe = next(e for e in load_knowledge(MINI).entries if e.question == "Is my data safe?")
    assert safe.answer == "We store your data in Germany.\nWe never sell it."
    assert safe.tags == ("privacy", "data") and safe.url == "/help/privacy"
    assert safe.id.startswith("e-") and safe.line == 3
    # the multi-line row before it shifts the physical line of the next row
    rechnung = by_id["de-pay-03"]
    assert (rechnung.line, rechnung.lang, rechnung.answer) == (5, "de", "Ja – über Klarna.")


def test_german_umlauts_and_language_from_folder() -> None:
    kb = load_knowledge(MINI)
    de = [e for e in kb.entries if e.source == "de/faq.yaml"]
    assert {e.lang for e in de} == {"de"}
    rueck = kb.by_id()["de-rueck-01"]
    assert rueck.question == "Wie lange habe ich Zeit für eine Rückgabe?"
    assert rueck.alt_questions == ("Rückgaberecht", "Kann ich Schuhe umtauschen?")
    assert rueck.answer == "Du hast 30 Tage Zeit. Größen tauschen wir kostenlos um."
    assert rueck.tags == ("rückgabe",)
    assert kb.languages == {"en", "de"}


def test_default_language_rules() -> None:
    assert default_lang_for("faq.de.yaml") == "de"
    assert default_lang_for("help/versand.de.md") == "de"
    assert default_lang_for("de/faq.yaml") == "de"
    assert default_lang_for("kb/fr/sub/page.md") == "fr"
    assert default_lang_for("faq.yaml") == "en"
    assert default_lang_for("ui/faq.yaml") == "en"  # "ui" is no language folder


def test_file_lang_key_and_entry_override(tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").write_text(
        "lang: de\nentries:\n"
        "  - {question: Wo ist mein Paket, answer: Unterwegs.}\n"
        "  - {question: Where is it, answer: On its way., lang: en}\n",
        encoding="utf-8",
    )
    entries = load_knowledge(tmp_path).entries
    assert [e.lang for e in entries] == ["de", "en"]


def test_yaml_scalars_stay_text(tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").write_text(
        "entries:\n  - id: 42\n    question: yes\n    answer: No\n    tags: [2024, on]\n",
        encoding="utf-8",
    )
    (entry,) = load_knowledge(tmp_path).entries
    assert (entry.id, entry.question, entry.answer, entry.tags) == (
        "42",
        "yes",
        "No",
        ("2024", "on"),
    )


def test_bare_json_list_and_bom(tmp_path: Path) -> None:
    (tmp_path / "faq.json").write_bytes(
        '\ufeff[{"question": "Gibt es Gutscheine?", "answer": "Ja."}]'.encode()
    )
    (tmp_path / "faq.csv").write_bytes("\ufeffid,question,answer\r\nx1,Q?,A.\r\n".encode())
    kb = load_knowledge(tmp_path)
    assert sorted(e.question for e in kb.entries) == ["Gibt es Gutscheine?", "Q?"]


def test_deterministic_across_runs_and_copies(tmp_path: Path) -> None:
    first = load_knowledge(MINI).entries
    again = load_knowledge(MINI).entries
    copy = tmp_path / "copy"
    shutil.copytree(MINI, copy)
    copied = load_knowledge(copy).entries
    assert first == again
    assert [(e.id, e.content_hash) for e in first] == [(e.id, e.content_hash) for e in copied]


def test_load_file_single_faq_and_page() -> None:
    entries, issues = load_file(MINI / "table.csv", MINI)
    assert issues == [] and len(entries) == 3
    assert {e.source for e in entries} == {"table.csv"}
    pages, issues = load_file(MINI / "pages" / "shipping.md", MINI)
    assert issues == [] and all(e.kind is EntryKind.PASSAGE for e in pages)
    assert pages[0].source == "pages/shipping.md"


def test_load_path_accepts_folder_or_single_file(tmp_path: Path) -> None:
    assert len(load_path(MINI).entries) == len(load_knowledge(MINI).entries)
    kb = load_path(MINI / "de" / "faq.yaml")
    assert kb.root == MINI / "de"
    assert [(e.source, e.lang) for e in kb.entries] == [("faq.yaml", "de"), ("faq.yaml", "de")]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,question,answer\nx,Q?,A.\ny,,A.\n", encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_path(bad)
    assert [str(i) for i in err.value.issues] == [
        "bad.csv:3: [KB004] field 'question': 'question' is empty"
    ]
    lenient = load_path(bad, skip_invalid=True)
    assert [e.id for e in lenient.entries] == ["x"] and len(lenient.issues) == 1
    with pytest.raises(KnowledgeError, match="not found"):
        load_path(tmp_path / "missing.yaml")
