"""The reserved bot files at the top of a knowledge folder, as typed data.

* ``intents.yaml`` — ``intents: {name: {lang: [example, ...]}}`` and optional
  ``out_of_scope: {lang: [example, ...]}`` → :class:`IntentsFile`.
* ``catalog.yaml`` — ``products: [{name, sku, aliases?}]`` → list of :class:`Product`.
* ``orders.json`` — ``{"orders": {"NC-12345": {status, carrier?, tracking?, eta?, items?,
  email?}}}`` → ``dict[str, Order]``.

Each loader reads one file and raises :class:`~knowledge.errors.KnowledgeError` listing every
problem with file, line and field (codes as in :mod:`knowledge.loaders`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

from knowledge import _codes as codes
from knowledge._located import LocatedDict, LocatedList, LocatedSyntaxError, load_json, load_yaml
from knowledge.errors import KnowledgeError
from knowledge.faq import is_lang
from knowledge.schema import KnowledgeIssue

INTENTS_FILE = "intents.yaml"
CATALOG_FILE = "catalog.yaml"
ORDERS_FILE = "orders.json"
OUT_OF_SCOPE = "out_of_scope"
ORDER_NUMBER_RE = re.compile(r"[A-Z]{2}-\d{5}")
_INTENT_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
_PRODUCT_KEYS = ("name", "sku", "aliases")
_ORDER_KEYS = ("status", "carrier", "tracking", "eta", "items", "email")


@dataclass(frozen=True, slots=True)
class IntentExample:
    text: str
    intent: str
    lang: str


@dataclass(frozen=True, slots=True)
class IntentsFile:
    examples: list[IntentExample]
    out_of_scope: list[IntentExample] = field(default_factory=list)

    @property
    def intents(self) -> list[str]:
        """Intent names, sorted."""
        return sorted({e.intent for e in self.examples})

    @property
    def languages(self) -> set[str]:
        return {e.lang for e in (*self.examples, *self.out_of_scope)}


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    sku: str
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The name and every alias: what a customer may call the product."""
        return (self.name, *self.aliases)


class OrderStatus(StrEnum):
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


@dataclass(frozen=True, slots=True)
class Order:
    """One order of the demo backend; also readable like a dict (``order["status"]``)."""

    number: str
    status: OrderStatus
    carrier: str | None = None
    tracking: str | None = None
    eta: date | None = None
    items: tuple[str, ...] = ()
    email: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready dict (status as string, eta as ISO date)."""
        return {
            "number": self.number,
            "status": self.status.value,
            "carrier": self.carrier,
            "tracking": self.tracking,
            "eta": self.eta.isoformat() if self.eta else None,
            "items": list(self.items),
            "email": self.email,
        }

    def __getitem__(self, key: str) -> object:
        return self.as_dict()[key]

    def get(self, key: str, default: object = None) -> object:
        return self.as_dict().get(key, default)

    def keys(self) -> Iterator[str]:
        return iter(self.as_dict())


@dataclass(frozen=True, slots=True)
class BotFiles:
    """All bot files of a folder; a missing file gives ``None`` / empty."""

    intents: IntentsFile | None
    products: list[Product]
    orders: dict[str, Order]


class _Issues:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[KnowledgeIssue] = []

    def add(self, line: int, field: str, message: str, code: str = codes.WRONG_TYPE) -> None:
        self.items.append(KnowledgeIssue(self.source, line, field, message, code))

    def raise_if_any(self, what: str) -> None:
        if self.items:
            raise KnowledgeError(f"invalid {what} {self.source}", self.items)


def _read(path: Path, issues: _Issues, *, json: bool) -> object:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        issues.add(1, "file", f"cannot read file: {exc}", codes.SYNTAX)
        return None
    try:
        return load_json(text) if json else load_yaml(text)
    except LocatedSyntaxError as exc:
        issues.add(exc.line, "file", exc.message, codes.SYNTAX)
        return None


def _top(data: object, key: str, issues: _Issues, allowed: tuple[str, ...]) -> object:
    if not isinstance(data, LocatedDict):
        issues.add(1, key, f"the file must be a mapping with '{key}'", codes.STRUCTURE)
        return None
    for k in data:
        if k not in allowed:
            msg = f"unknown key {k!r} (allowed: {', '.join(allowed)})"
            issues.add(data.line_of(k), str(k), msg, codes.UNKNOWN_FIELD)
    if key not in data:
        issues.add(data.line, key, f"missing '{key}'", codes.STRUCTURE)
        return None
    return data[key]


def _strings(value: object, line: int, where: str, issues: _Issues) -> list[str]:
    if not isinstance(value, LocatedList):
        issues.add(line, where, "must be a list of strings")
        return []
    out: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
        else:
            issues.add(value.line_of(i), f"{where}[{i}]", "must be a non-empty string")
    return out


def _by_lang(
    value: object, line: int, where: str, intent: str, issues: _Issues
) -> list[IntentExample]:
    if not isinstance(value, LocatedDict):
        issues.add(line, where, "must map language codes to lists of examples", codes.STRUCTURE)
        return []
    out: list[IntentExample] = []
    for lang, texts in value.items():
        key_line = value.line_of(lang)
        if not is_lang(lang):
            issues.add(key_line, f"{where}.{lang}", f"invalid language {lang!r}", codes.BAD_LANG)
            continue
        for text in _strings(texts, key_line, f"{where}.{lang}", issues):
            out.append(IntentExample(text=text, intent=intent, lang=lang))
    return out


def load_intents(path: Path) -> IntentsFile:
    """Read ``intents.yaml``; raise KnowledgeError naming every problem."""
    issues = _Issues(Path(path).name)
    data = _read(Path(path), issues, json=False)
    intents = _top(data, "intents", issues, ("intents", OUT_OF_SCOPE)) if data is not None else None
    examples: list[IntentExample] = []
    if isinstance(intents, LocatedDict):
        for name, langs in intents.items():
            line = intents.line_of(name)
            if not isinstance(name, str) or not _INTENT_NAME_RE.fullmatch(name):
                msg = f"invalid intent name {name!r}: use lowercase letters, digits, '_'"
                issues.add(line, f"intents.{name}", msg)
                continue
            examples.extend(_by_lang(langs, line, f"intents.{name}", name, issues))
    elif intents is not None:
        issues.add(1, "intents", "must map intent names to examples", codes.STRUCTURE)
    oos: list[IntentExample] = []
    if isinstance(data, LocatedDict) and data.get(OUT_OF_SCOPE) is not None:
        oos = _by_lang(
            data[OUT_OF_SCOPE], data.line_of(OUT_OF_SCOPE), OUT_OF_SCOPE, OUT_OF_SCOPE, issues
        )
    issues.raise_if_any("intents file")
    return IntentsFile(examples=examples, out_of_scope=oos)


def load_catalog(path: Path) -> list[Product]:
    """Read ``catalog.yaml``; raise KnowledgeError naming every problem."""
    issues = _Issues(Path(path).name)
    data = _read(Path(path), issues, json=False)
    items = _top(data, "products", issues, ("products",)) if data is not None else None
    products: list[Product] = []
    if items is not None and not isinstance(items, LocatedList):
        issues.add(1, "products", "must be a list of products", codes.STRUCTURE)
    product_list = items if isinstance(items, LocatedList) else LocatedList()
    for i, item in enumerate(product_list):
        line = product_list.line_of(i)
        if not isinstance(item, LocatedDict):
            issues.add(
                line, f"products[{i}]", "must be a mapping {name, sku, aliases}", codes.NOT_MAPPING
            )
            continue
        for k in item:
            if k not in _PRODUCT_KEYS:
                issues.add(item.line_of(k), str(k), f"unknown field {k!r}", codes.UNKNOWN_FIELD)
        name, sku = item.get("name"), item.get("sku")
        for key, value in (("name", name), ("sku", sku)):
            if not isinstance(value, str) or not value.strip():
                issues.add(item.line_of(key), key, f"'{key}' is missing or empty", codes.MISSING)
        aliases = _strings(
            item.get("aliases") or LocatedList(), item.line_of("aliases"), "aliases", issues
        )
        if isinstance(name, str) and isinstance(sku, str) and name.strip() and sku.strip():
            products.append(Product(name=name.strip(), sku=sku.strip(), aliases=tuple(aliases)))
    issues.raise_if_any("catalog file")
    return products


def _order(number: str, data: LocatedDict, issues: _Issues) -> Order | None:
    before = len(issues.items)
    for k in data:
        if k not in _ORDER_KEYS:
            issues.add(
                data.line_of(k), f"{number}.{k}", f"unknown field {k!r}", codes.UNKNOWN_FIELD
            )
    status = data.get("status")
    if status not in {s.value for s in OrderStatus}:
        allowed = ", ".join(s.value for s in OrderStatus)
        issues.add(
            data.line_of("status"),
            f"{number}.status",
            f"status must be one of {allowed}, got {status!r}",
        )
    texts: dict[str, str | None] = {}
    for key in ("carrier", "tracking", "email"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            issues.add(data.line_of(key), f"{number}.{key}", "must be a string")
        texts[key] = value if isinstance(value, str) else None
    eta: date | None = None
    if data.get("eta") is not None:
        try:
            eta = date.fromisoformat(str(data["eta"]))
        except ValueError:
            issues.add(data.line_of("eta"), f"{number}.eta", "must be an ISO date like 2026-12-02")
    items = _strings(
        data.get("items") or LocatedList(), data.line_of("items"), f"{number}.items", issues
    )
    if len(issues.items) > before:
        return None
    return Order(
        number=number,
        status=OrderStatus(str(status)),
        carrier=texts["carrier"],
        tracking=texts["tracking"],
        eta=eta,
        items=tuple(items),
        email=texts["email"],
    )


def load_orders(path: Path) -> dict[str, Order]:
    """Read ``orders.json``; raise KnowledgeError naming every problem."""
    issues = _Issues(Path(path).name)
    data = _read(Path(path), issues, json=True)
    orders = _top(data, "orders", issues, ("orders",)) if data is not None else None
    out: dict[str, Order] = {}
    if orders is not None and not isinstance(orders, LocatedDict):
        issues.add(1, "orders", "must map order numbers to orders", codes.STRUCTURE)
    order_map = orders if isinstance(orders, LocatedDict) else LocatedDict()
    for number, value in order_map.items():
        line = order_map.line_of(number)
        if not ORDER_NUMBER_RE.fullmatch(number):
            issues.add(line, number, f"order number {number!r} must look like NC-12345")
        elif not isinstance(value, LocatedDict):
            issues.add(line, number, "an order must be a mapping", codes.NOT_MAPPING)
        elif (order := _order(number, value, issues)) is not None:
            out[number] = order
    issues.raise_if_any("orders file")
    return out


def load_bot_files(root: Path) -> BotFiles:
    """Load whichever bot files exist at the top of ``root``."""
    root = Path(root)
    intents = root / INTENTS_FILE
    catalog = root / CATALOG_FILE
    orders = root / ORDERS_FILE
    return BotFiles(
        intents=load_intents(intents) if intents.is_file() else None,
        products=load_catalog(catalog) if catalog.is_file() else [],
        orders=load_orders(orders) if orders.is_file() else {},
    )
