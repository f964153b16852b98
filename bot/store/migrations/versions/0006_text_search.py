"""trigram index for the conversation text search (PostgreSQL)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

``GET /api/v1/conversations?q=…`` finds conversations with a message containing ``q``
(``payload->>'text' ILIKE '%q%'`` over the searched event types, :mod:`bot.store.listing`). On
PostgreSQL that was a scan of every message event (4.3 s at 2M events, docs/benchmarks.md);
``ix_events_text_trgm`` is a GIN trigram index (``pg_trgm``) on that expression, partial to the
searched types, which ``ILIKE`` with a pattern of three or more characters uses.

``pg_trgm`` ships with PostgreSQL (contrib) and is a trusted extension: any role that may
create objects in the database can enable it. Where it is missing or may not be enabled, the
migration logs a warning and leaves the index out — the search still works, unindexed. SQLite
keeps its scan (a SQLite deployment is a small one).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("klartext.store.migrate")

_INDEX = "ix_events_text_trgm"
# the types bot.store.listing.SEARCHED_TYPES searches (a migration keeps its own copy)
_CREATE = (
    f"CREATE INDEX IF NOT EXISTS {_INDEX} ON events USING gin ((payload ->> 'text') gin_trgm_ops) "
    "WHERE type IN ('user_message', 'token', 'agent_message')"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():  # a savepoint: a refusal must not abort the migration
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        log.warning(
            "pg_trgm is not available (%s): conversation text search stays unindexed",
            type(exc).__name__,
        )
        return
    op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {_INDEX}")
