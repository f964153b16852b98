"""Help pages split into passages by heading: Markdown (+front matter), HTML, plain text."""

from __future__ import annotations

from pathlib import Path

from knowledge.loaders import load_file
from knowledge.pages import parse_page, slugify
from knowledge.schema import EntryKind

MINI = Path(__file__).parent / "fixtures" / "mini"


def _rows(source: str) -> list[tuple[str, int, str, str | None]]:
    entries, issues = load_file(MINI / source, MINI)
    assert issues == []
    assert all(e.kind is EntryKind.PASSAGE for e in entries)
    return [(e.id, e.line, e.question, e.url) for e in entries]


def test_markdown_front_matter_headings_and_slugs() -> None:
    assert _rows("pages/shipping.md") == [
        ("pages/shipping#shipping-delivery", 6, "Shipping & delivery", "/help/shipping"),
        (
            "pages/shipping#delivery-times",
            10,
            "Shipping & delivery › Delivery times",
            "/help/shipping#delivery-times",
        ),
        (
            "pages/shipping#express",
            14,
            "Shipping & delivery › Delivery times › Express",
            "/help/shipping#express",
        ),
    ]  # the empty "Parcel lockers" section is dropped
    entries, _ = load_file(MINI / "pages" / "shipping.md", MINI)
    assert entries[1].answer == "Germany: 1–3 working days. Austria: 2–4 working days."
    assert {e.tags for e in entries} == {("shipping",)}
    assert {e.lang for e in entries} == {"en"}


def test_html_page_uses_title_lang_canonical_and_heading_ids() -> None:
    assert _rows("pages/zahlung.de.html") == [
        ("pages/zahlung.de#zahlung", 6, "Zahlung", "/hilfe/zahlung"),
        ("pages/zahlung.de#rechnung", 9, "Zahlung › Kauf auf Rechnung", "/hilfe/zahlung#rechnung"),
    ]
    entries, _ = load_file(MINI / "pages" / "zahlung.de.html", MINI)
    assert entries[0].answer == "Wir akzeptieren diese Zahlungsarten:\n- PayPal\n- Kreditkarte"
    assert "Start" not in entries[0].answer  # <nav> is not content
    assert {e.lang for e in entries} == {"de"}


def test_plain_text_blocks_with_short_first_lines_are_sections() -> None:
    assert _rows("pages/account.txt") == [
        ("pages/account#changing-your-email", 3, "Your account › Changing your email", None),
        ("pages/account#deleting-your-account", 7, "Your account › Deleting your account", None),
    ]
    entries, _ = load_file(MINI / "pages" / "account.txt", MINI)
    assert entries[0].answer == 'Open Settings and choose "Email".\nWe send a confirmation link.'


def test_front_matter_id_title_lang_and_german_slugs() -> None:
    text = (
        "---\nid: hilfe-rueckgabe\ntitle: Rückgabe\nlang: de\nurl: /hilfe/rueckgabe\n---\n"
        "Einleitung ohne Überschrift.\n\n"
        "## Rücksendung & Umtausch\nSo geht's.\n\n"
        "## Rücksendung & Umtausch\nZweiter Abschnitt.\n\n"
        "```\n# kein Heading im Code\n```\n"
    )
    entries, issues = parse_page(text, "help/returns.md", ".md")
    assert issues == []
    assert [(e.id, e.url, e.lang, e.line) for e in entries] == [
        ("hilfe-rueckgabe#intro", "/hilfe/rueckgabe", "de", 7),
        (
            "hilfe-rueckgabe#ruecksendung-umtausch",
            "/hilfe/rueckgabe#ruecksendung-umtausch",
            "de",
            9,
        ),
        (
            "hilfe-rueckgabe#ruecksendung-umtausch-1",
            "/hilfe/rueckgabe#ruecksendung-umtausch-1",
            "de",
            12,
        ),
    ]
    assert entries[1].question == "Rückgabe › Rücksendung & Umtausch"
    assert entries[2].answer.endswith("```\n# kein Heading im Code\n```")


def test_page_without_headings_or_title_uses_file_name() -> None:
    entries, issues = parse_page("Just one paragraph.\n", "help/opening-hours.md", ".md")
    assert issues == []
    (entry,) = entries
    assert (entry.id, entry.question, entry.url) == (
        "help/opening-hours#intro",
        "Opening hours",
        None,
    )


def test_slugify() -> None:
    assert slugify("Rückgabe & Umtausch") == "rueckgabe-umtausch"
    assert slugify("  Größe / Passform?  ") == "groesse-passform"
    assert slugify("Café crème") == "cafe-creme"
    assert slugify("???") == "section"
