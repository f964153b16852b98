"""Actions: HTTP action error mapping (httpx MockTransport), demo orders, reply texts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot.actions import ActionResult, DemoOrderAction, HttpAction, order_reply, public_order_data
from bot.config import DEMO_KNOWLEDGE_DIR


def _action(handler) -> HttpAction:  # type: ignore[no-untyped-def]
    return HttpAction(
        "lookup_order",
        "https://shop.test/api/orders/{order_number}",
        timeout_s=0.5,
        transport=httpx.MockTransport(handler),
    )


async def test_http_ok_fills_and_quotes_template() -> None:
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(str(req.url))
        return httpx.Response(200, json={"status": "shipped", "order_number": "NC-1/2"})

    result = await _action(handler).run({"order_number": "NC-1/2"})
    assert result.status == "ok" and result.data["status"] == "shipped"
    assert seen == ["https://shop.test/api/orders/NC-1%2F2"]


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (httpx.Response(404), "not_found"),
        (httpx.Response(500), "error"),
        (httpx.Response(503), "error"),
        (httpx.Response(401), "error"),
        (httpx.Response(200, text="<html>"), "error"),
        (httpx.Response(200, json=[1, 2]), "error"),
    ],
)
async def test_http_status_mapping(response: httpx.Response, status: str) -> None:
    result = await _action(lambda req: response).run({"order_number": "NC-12345"})
    assert result.status == status


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")], ids=["timeout", "refused"]
)
async def test_http_transport_errors(exc: Exception) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise exc

    result = await _action(handler).run({"order_number": "NC-12345"})
    assert result.status == "error" and result.detail


async def test_http_missing_entity_is_error() -> None:
    result = await _action(lambda r: httpx.Response(200, json={})).run({})
    assert result.status == "error" and "order_number" in result.detail


async def test_demo_orders_from_the_demo_knowledge_folder() -> None:
    action = DemoOrderAction(DEMO_KNOWLEDGE_DIR / "orders.json")
    ok = await action.run({"order_number": "nc-12345"})
    assert ok.status == "ok" and ok.data["order_number"] == "NC-12345"
    assert ok.data["carrier"] == "DHL" and ok.data["eta"] == "2026-12-02"
    assert (await action.run({"order_number": "NC-00000"})).status == "not_found"
    assert (await action.run({})).status == "error"


async def test_demo_orders_missing_file(tmp_path: Path) -> None:
    action = DemoOrderAction(tmp_path / "orders.json")
    assert (await action.run({"order_number": "NC-12345"})).status == "not_found"


def test_order_replies_in_both_languages() -> None:
    data = {
        "order_number": "NC-1",
        "status": "shipped",
        "carrier": "DHL",
        "tracking": "123",
        "eta": "2026-12-02",
        "items": ["Tent", "Mat"],
        "email": "x@y.z",
    }
    r = ActionResult("ok", data)
    en, de = order_reply(r, "NC-1", "en"), order_reply(r, "NC-1", "de")
    assert en.startswith("Your order NC-1 has shipped with DHL.")
    assert "Tracking number: 123." in en and "Items: Tent, Mat." in en
    assert de.startswith("Ihre Bestellung NC-1 wurde verschickt mit DHL.")
    assert "Voraussichtliche Zustellung: 2026-12-02." in de
    assert "x@y.z" not in en + de
    delivered = order_reply(
        ActionResult("ok", {"status": "delivered", "eta": "2026-11-01"}), "NC-2", "en"
    )
    assert delivered == "Your order NC-2 has been delivered."
    odd = order_reply(ActionResult("ok", {"status": "lost"}), "NC-3", "de")
    assert odd == "Status Ihrer Bestellung NC-3: lost."
    assert "NC-9" in order_reply(ActionResult("not_found"), "NC-9", "en")
    assert "Bestellsystem" in order_reply(ActionResult("error"), "NC-9", "de")
    assert "email" not in public_order_data(data)
