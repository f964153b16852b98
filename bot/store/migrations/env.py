"""Alembic environment, driven programmatically by ``bot.store.migrate`` (no alembic.ini).

``bot.store.migrate`` opens an async connection and hands its sync facade to us through
``config.attributes["connection"]``; offline (SQL script) mode is not used.
"""

from __future__ import annotations

from alembic import context

from bot.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the plain alembic CLI
    raise RuntimeError("run migrations through `klartext db upgrade` (bot.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
