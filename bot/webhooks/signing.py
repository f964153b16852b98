"""Webhook signatures: ``Klartext-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 with the subscription's secret over ``f"{t}.{body}"`` (the raw request body).
Receivers recompute it, compare in constant time and reject old timestamps (replays)."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Klartext-Signature"
EVENT_HEADER = "Klartext-Event"
DELIVERY_HEADER = "Klartext-Delivery-Id"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    msg = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={sign(secret, t, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (a ``Klartext-Signature`` value) signs ``body`` with ``secret`` and
    its timestamp is within ``tolerance_s`` of ``now``."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = sign(secret, t, body)
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", []))
