"""Webhook delivery: HMAC signing (:mod:`bot.webhooks.signing`) and the outbox dispatcher
(:mod:`bot.webhooks.dispatcher`). Events are queued by ``bot.store.outbox``."""

from __future__ import annotations

from bot.webhooks.dispatcher import WebhookDispatcher
from bot.webhooks.signing import SIGNATURE_HEADER, sign, signature_header, verify

__all__ = ["SIGNATURE_HEADER", "WebhookDispatcher", "sign", "signature_header", "verify"]
