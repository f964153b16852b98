"""intents.yaml, catalog.yaml and orders.json as typed data, with located errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from knowledge.botfiles import (
    IntentExample,
    OrderStatus,
    Product,
    load_bot_files,
    load_catalog,
    load_intents,
    load_orders,
)
from knowledge.errors import KnowledgeError

MINI = Path(__file__).parent / "fixtures" / "mini"


def _issues(exc: pytest.ExceptionInfo[KnowledgeError]) -> list[tuple[str, int, str, str]]:
    return [(i.source, i.line, i.field, i.code) for i in exc.value.issues]


def test_intents_file() -> None:
    intents = load_intents(MINI / "intents.yaml")
    assert intents.examples == [
        IntentExample("Hi", "greeting", "en"),
        IntentExample("Hello there", "greeting", "en"),
        IntentExample("Hallo", "greeting", "de"),
        IntentExample("Guten Tag", "greeting", "de"),
        IntentExample("yes", "affirm", "en"),  # stays text, not a YAML boolean
        IntentExample("no", "affirm", "en"),
    ]
    assert intents.out_of_scope == [IntentExample("What is the weather?", "out_of_scope", "en")]
    assert intents.intents == ["affirm", "greeting"]
    assert intents.languages == {"en", "de"}


def test_catalog_and_orders() -> None:
    products = load_catalog(MINI / "catalog.yaml")
    assert products == [
        Product("Fjell 2 Tent", "NC-TENT-2", ("fjell tent", "fjell")),
        Product("Trail Socks", "NC-SOCK-1"),
    ]
    assert products[0].names == ("Fjell 2 Tent", "fjell tent", "fjell")
    orders = load_orders(MINI / "orders.json")
    order = orders["NC-12345"]
    assert order.status is OrderStatus.SHIPPED
    assert order.eta == date(2026, 12, 2)
    assert order.items == ("Fjell 2 Tent",)
    assert order["status"] == "shipped" and order["eta"] == "2026-12-02"
    assert order.get("carrier") == "DHL" and order.get("missing", "-") == "-"
    assert orders["NC-20001"].as_dict()["tracking"] is None
    bundle = load_bot_files(MINI)
    assert bundle.intents is not None and len(bundle.products) == 2 and len(bundle.orders) == 2


def test_missing_bot_files_are_empty(tmp_path: Path) -> None:
    bundle = load_bot_files(tmp_path)
    assert (bundle.intents, bundle.products, bundle.orders) == (None, [], {})


def test_intent_errors_are_located(tmp_path: Path) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text(
        "intents:\n"
        "  greeting:\n"
        "    en: [Hi]\n"
        "    english: [Hello]\n"
        "  Bad-Name:\n"
        "    en: [x]\n"
        "  thanks:\n"
        "    de: Danke\n"
        "  bye:\n"
        "    en:\n"
        "      - Bye\n"
        "      - ''\n"
        "extra: 1\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError) as err:
        load_intents(path)
    assert _issues(err) == [
        ("intents.yaml", 13, "extra", "KB007"),
        ("intents.yaml", 4, "intents.greeting.english", "KB006"),
        ("intents.yaml", 5, "intents.Bad-Name", "KB005"),
        ("intents.yaml", 8, "intents.thanks.de", "KB005"),
        ("intents.yaml", 12, "intents.bye.en[1]", "KB005"),
    ]


def test_catalog_and_order_errors_are_located(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "products:\n  - name: Tent\n    sku: ''\n  - name: Mat\n    sku: M-1\n    price: 10\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError) as err:
        load_catalog(catalog)
    assert _issues(err) == [
        ("catalog.yaml", 3, "sku", "KB004"),
        ("catalog.yaml", 6, "price", "KB007"),
    ]
    orders = tmp_path / "orders.json"
    orders.write_text(
        '{"orders": {\n'
        '  "NC-1": {"status": "shipped"},\n'
        '  "NC-12345": {"status": "lost",\n'
        '               "eta": "soon"},\n'
        '  "NC-54321": {"status": "delivered", "items": "Tent"}\n'
        "}}\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError) as err:
        load_orders(orders)
    assert _issues(err) == [
        ("orders.json", 2, "NC-1", "KB005"),
        ("orders.json", 3, "NC-12345.status", "KB005"),
        ("orders.json", 4, "NC-12345.eta", "KB005"),
        ("orders.json", 5, "NC-54321.items", "KB005"),
    ]


def test_bot_file_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text('{"orders": {\n  "NC-12345": {"status": "shipped",}\n}}', encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_orders(path)
    assert _issues(err) == [("orders.json", 2, "file", "KB001")]
