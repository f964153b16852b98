"""contacts, lead capture, stats support

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

- ``contacts`` (email / external_id unique when set; NULLs do not collide in either backend);
- ``ix_events_stats``: a partial index on ``events.created_at`` for the ``done`` and
  ``handoff`` events that ``GET /api/v1/stats`` aggregates by day (token events, the bulk of
  the table, are not in it, so the chat's write path pays nothing for it);
- ``ix_feedback_created_at_id`` for the feedback listing's keyset pagination.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_STATS_TYPES = sa.text("type IN ('done', 'handoff')")


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("consent", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("consent_at", _TS, nullable=True),
        sa.Column("consent_source", sa.String(100), nullable=True),
        sa.Column("consent_text", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("email", name="uq_contacts_email"),
        sa.UniqueConstraint("external_id", name="uq_contacts_external_id"),
    )
    op.create_index("ix_contacts_created_at_id", "contacts", ["created_at", "id"])
    op.create_index(
        "ix_events_stats",
        "events",
        ["created_at"],
        postgresql_where=_STATS_TYPES,
        sqlite_where=_STATS_TYPES,
    )
    op.create_index("ix_feedback_created_at_id", "feedback", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_created_at_id", table_name="feedback")
    op.drop_index("ix_events_stats", table_name="events")
    op.drop_index("ix_contacts_created_at_id", table_name="contacts")
    op.drop_table("contacts")
