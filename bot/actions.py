"""Backend actions (order status, account info …) behind the :class:`Action` protocol.

Built in: :class:`HttpAction` (``GET`` a URL template filled with the extracted entities,
e.g. ``https://shop/api/orders/{order_number}``) and :class:`DemoOrderAction` (the demo
shop's fake order backend, ``orders.json`` in the knowledge folder). Results are mapped to
``ok`` / ``not_found`` / ``error``; the engine turns them into a reply with
:func:`order_reply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import quote

import httpx

from bot import texts

ActionStatus = Literal["ok", "not_found", "error"]

# Fields of an order that may be shown to the user and put into events (no e-mail etc.).
_PUBLIC_ORDER_FIELDS = ("order_number", "status", "carrier", "tracking", "eta", "items")


@dataclass(frozen=True, slots=True)
class ActionResult:
    status: ActionStatus
    data: dict[str, object] = field(default_factory=dict)
    detail: str = ""  # for logs, never shown to users


@runtime_checkable
class Action(Protocol):
    @property
    def name(self) -> str: ...

    async def run(self, entities: Mapping[str, str]) -> ActionResult: ...


class HttpAction:
    """``GET`` ``url_template`` filled with URL-quoted entities; 2xx JSON → ``ok``,
    404 → ``not_found``, timeouts / connection errors / 5xx / other 4xx / non-JSON → ``error``."""

    def __init__(
        self,
        name: str,
        url_template: str,
        *,
        timeout_s: float = 5.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._name = name
        self._template = url_template
        self._timeout = timeout_s
        self._headers = dict(headers or {})
        self._transport = transport

    @property
    def name(self) -> str:
        return self._name

    async def run(self, entities: Mapping[str, str]) -> ActionResult:
        try:
            url = self._template.format(**{k: quote(v, safe="") for k, v in entities.items()})
        except KeyError as exc:
            return ActionResult("error", detail=f"missing entity {exc}")
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, headers=self._headers, transport=self._transport
            ) as client:
                resp = await client.get(url)
        except httpx.TimeoutException:
            return ActionResult("error", detail="timeout")
        except httpx.HTTPError as exc:
            return ActionResult("error", detail=f"{type(exc).__name__}: {exc}")
        if resp.status_code == 404:
            return ActionResult("not_found", detail="404")
        if not resp.is_success:
            return ActionResult("error", detail=f"HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            return ActionResult("error", detail="response is not JSON")
        if not isinstance(body, dict):
            return ActionResult("error", detail="response is not a JSON object")
        return ActionResult("ok", data=body)


def _load_orders(path: Path) -> dict[str, dict[str, object]]:
    from knowledge.botfiles import load_orders

    if not path.is_file():
        return {}
    out: dict[str, dict[str, object]] = {}
    for number, order in load_orders(path).items():
        fields = {k: v for k, v in order.as_dict().items() if k != "number" and v not in (None, [])}
        out[number.upper()] = {"order_number": number, **fields}
    return out


class DemoOrderAction:
    """The demo shop's fake order backend: looks the number up in ``orders.json``."""

    name = "lookup_order"

    def __init__(self, orders_path: Path) -> None:
        self._path = orders_path
        self._orders = _load_orders(orders_path)

    async def run(self, entities: Mapping[str, str]) -> ActionResult:
        number = entities.get("order_number", "").strip().upper()
        if not number:
            return ActionResult("error", detail="no order_number")
        order = self._orders.get(number)
        if order is None:
            return ActionResult("not_found", data={"order_number": number})
        return ActionResult("ok", data={"order_number": number, **order})


def public_order_data(data: Mapping[str, object]) -> dict[str, object]:
    """The fields safe to show and to put into events (no e-mail or other PII)."""
    return {k: data[k] for k in _PUBLIC_ORDER_FIELDS if k in data}


_STATUS: Mapping[str, Mapping[str, str]] = {
    "processing": {
        "en": "Your order {n} is being prepared and will ship soon.",
        "de": "Ihre Bestellung {n} wird gerade vorbereitet und bald verschickt.",
    },
    "shipped": {
        "en": "Your order {n} has shipped{carrier}.",
        "de": "Ihre Bestellung {n} wurde verschickt{carrier}.",
    },
    "delivered": {
        "en": "Your order {n} has been delivered.",
        "de": "Ihre Bestellung {n} wurde zugestellt.",
    },
    "cancelled": {
        "en": "Your order {n} was cancelled.",
        "de": "Ihre Bestellung {n} wurde storniert.",
    },
    "returned": {
        "en": "We have received the return of your order {n}.",
        "de": "Die Rücksendung Ihrer Bestellung {n} ist bei uns eingegangen.",
    },
}
_EXTRA = {
    "carrier": {"en": " with {v}", "de": " mit {v}"},
    "tracking": {"en": "Tracking number: {v}.", "de": "Sendungsnummer: {v}."},
    "eta": {"en": "Expected delivery: {v}.", "de": "Voraussichtliche Zustellung: {v}."},
    "items": {"en": "Items: {v}.", "de": "Artikel: {v}."},
}


def _extra(key: str, value: object, lang: str) -> str:
    table = _EXTRA[key]
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return (table.get(lang) or table["en"]).format(v=shown)


def order_reply(result: ActionResult, order_number: str, lang: str) -> str:
    """The user-facing reply for an order lookup, in ``lang``."""
    if result.status == "not_found":
        return texts.text("order_not_found", lang, order_number=order_number)
    if result.status == "error":
        return texts.text("action_error", lang)
    data = result.data
    status = str(data.get("status", ""))
    table = _STATUS.get(status)
    n = str(data.get("order_number", order_number))
    carrier = _extra("carrier", data["carrier"], lang) if data.get("carrier") else ""
    if table is None:
        head = {
            "en": f"Status of your order {n}: {status}.",
            "de": f"Status Ihrer Bestellung {n}: {status}.",
        }
        first = head.get(lang, head["en"])
    else:
        first = (table.get(lang) or table["en"]).format(n=n, carrier=carrier)
    parts = [first]
    for key in ("tracking", "eta", "items"):
        if data.get(key) and not (key == "eta" and status in ("delivered", "cancelled")):
            parts.append(_extra(key, data[key], lang))
    return " ".join(parts)
