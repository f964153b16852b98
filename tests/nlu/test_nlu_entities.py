from __future__ import annotations

import pytest
from nlu_fakes import REF_DATE

from bot.nlu.entities import ProductName, extract_entities, parse_amount

PRODUCTS = [
    ProductName("Fjell 2 Tent", ("fjell tent", "Fjell Zelt")),
    ProductName("Trail Runner 3", ("trail runners",)),
]


def _ents(text: str, pattern: str = r"[A-Z]{2}-\d{5}") -> list[tuple[str, str, str]]:
    found = extract_entities(text, ref_date=REF_DATE, products=PRODUCTS, order_pattern=pattern)
    for e in found:
        assert text[e.start : e.end] == e.text
    return [(e.label, e.text, e.value) for e in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Where is order NC-12345?", [("ORDER_NUMBER", "NC-12345", "NC-12345")]),
        ("wo bleibt nc-54321", [("ORDER_NUMBER", "nc-54321", "NC-54321")]),
        ("Bestellnummer AB-00001, bitte", [("ORDER_NUMBER", "AB-00001", "AB-00001")]),
        ("XNC-12345 and NC-123456 are not orders", []),
    ],
)
def test_order_numbers(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert _ents(text) == expected


def test_order_pattern_is_configurable() -> None:
    assert _ents("order #A123456 please", pattern=r"#?A\d{6}") == [
        ("ORDER_NUMBER", "#A123456", "#A123456")
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("mail me at Anna.Schmidt@Example.COM", "anna.schmidt@example.com"),
        ("Meine Adresse: max+shop@mail.de.", "max+shop@mail.de"),
        ("j_doe@sub.domain.co.uk is mine", "j_doe@sub.domain.co.uk"),
    ],
)
def test_emails_lowercased(text: str, value: str) -> None:
    assert [(lbl, v) for lbl, _, v in _ents(text)] == [("EMAIL", value)]


@pytest.mark.parametrize(
    ("text", "span", "value"),
    [
        ("call me on +49 30 12345678", "+49 30 12345678", "+493012345678"),
        ("Tel. 030 12345678", "030 12345678", "+493012345678"),
        ("Handy: 0171/1234567", "0171/1234567", "+491711234567"),
        ("0049 89 12345678 ist meine Nummer", "0049 89 12345678", "+498912345678"),
        ("+49 (0)30 12345678", "+49 (0)30 12345678", "+493012345678"),
        ("US office: +1 (415) 555-2671", "+1 (415) 555-2671", "+14155552671"),
        ("ring 0171-123 45 67", "0171-123 45 67", "+491711234567"),
    ],
)
def test_phones_to_e164(text: str, span: str, value: str) -> None:
    assert _ents(text) == [("PHONE", span, value)]


@pytest.mark.parametrize(
    ("text", "span", "value"),
    [
        ("I paid 19,99 € twice", "19,99 €", "19.99 EUR"),
        ("refund €249.00 please", "€249.00", "249.00 EUR"),
        ("Erstattung von 1.299,00 EUR", "1.299,00 EUR", "1299.00 EUR"),
        ("it was $5", "$5", "5.00 USD"),
        ("20 Euro zu viel", "20 Euro", "20.00 EUR"),
        ("EUR 12.50 fee", "EUR 12.50", "12.50 EUR"),
        ("costs 1,299.99 dollars", "1,299.99 dollars", "1299.99 USD"),
        ("£10 shipping", "£10", "10.00 GBP"),
        ("49,- € kostet das", "49,- €", "49.00 EUR"),
    ],
)
def test_money_amount_and_currency(text: str, span: str, value: str) -> None:
    assert _ents(text) == [("MONEY", span, value)]


def test_parse_amount_separators() -> None:
    assert str(parse_amount("1.299,00")) == "1299.00"
    assert str(parse_amount("1,299.00")) == "1299.00"
    assert str(parse_amount("12.000")) == "12000"
    assert str(parse_amount("19,9")) == "19.9"


@pytest.mark.parametrize(
    ("text", "span", "value"),
    [
        ("Is the Fjell Tent waterproof?", "Fjell Tent", "Fjell 2 Tent"),
        ("Ist das fjell zelt wasserdicht?", "fjell zelt", "Fjell 2 Tent"),
        ("my TRAIL RUNNERS are too small", "TRAIL RUNNERS", "Trail Runner 3"),
        ("Trail Runner 3 in size 42", "Trail Runner 3", "Trail Runner 3"),
    ],
)
def test_products_canonical_name(text: str, span: str, value: str) -> None:
    assert _ents(text) == [("PRODUCT", span, value)]


def test_mixed_message_keeps_all_types_in_order() -> None:
    text = "Order NC-12345 (Fjell Tent, 249,00 €) from 3.11.2026 — mail a@b.de or +49 171 1234567"
    assert [label for label, _, _ in _ents(text)] == [
        "ORDER_NUMBER",
        "PRODUCT",
        "MONEY",
        "DATE",
        "EMAIL",
        "PHONE",
    ]
