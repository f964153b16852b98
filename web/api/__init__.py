"""The CRM REST API (``/api/v1``, see ``docs/api.md``): API-key auth with scopes,
conversations and human handoff."""

from __future__ import annotations

from fastapi import FastAPI

from web.api.agents import router as agents_router
from web.api.contacts import router as contacts_router
from web.api.conversations import router as conversations_router
from web.api.errors import install_error_handlers
from web.api.feedback import router as feedback_router
from web.api.guard import ApiInputGuard
from web.api.handoff import router as handoff_router
from web.api.knowledge import router as knowledge_router
from web.api.stats import router as stats_router
from web.api.webhooks import router as webhooks_router


def install(app: FastAPI) -> None:
    """Add the API's routers and its error handlers (stable ``{"error": {...}}`` bodies)."""
    install_error_handlers(app)
    app.add_middleware(ApiInputGuard)  # NUL/control chars, bad UTF-8, deep JSON, size
    app.include_router(conversations_router)
    app.include_router(handoff_router)
    app.include_router(agents_router)
    app.include_router(knowledge_router)
    app.include_router(contacts_router)
    app.include_router(feedback_router)
    app.include_router(stats_router)
    app.include_router(webhooks_router)


__all__ = ["install"]
