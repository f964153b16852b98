"""turn outcomes: one typed row per finished bot turn, for the stats

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

``turn_outcomes`` holds each ``done`` event's mode, answered, partial and confidence as columns
(:mod:`bot.store.outcomes`); the stats aggregate it instead of the events' JSON payloads. The
upgrade fills it from the ``done`` events already recorded (PostgreSQL: ~2 s per 500k turns).

The stats no longer read ``done`` events by time, so migration 0004's partial index
``ix_events_stats`` (``done`` and ``handoff`` events) becomes ``ix_events_handoffs`` (``handoff``
events only): smaller, and one index less for every ``done`` event written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_HANDOFFS = sa.text("type = 'handoff'")

_FILL = {
    "postgresql": """
        INSERT INTO turn_outcomes
            (conversation_id, turn_id, seq, created_at, mode, answered, partial, confidence)
        SELECT conversation_id, turn_id, seq, created_at,
               left(coalesce(payload ->> 'mode', ''), 32),
               CASE WHEN json_typeof(payload -> 'answered') = 'boolean'
                    THEN (payload ->> 'answered')::boolean ELSE false END,
               CASE WHEN json_typeof(payload -> 'partial') = 'boolean'
                    THEN (payload ->> 'partial')::boolean ELSE false END,
               CASE WHEN json_typeof(payload -> 'confidence') = 'number'
                    THEN (payload ->> 'confidence')::float END
        FROM events WHERE type = 'done'
    """,
    "sqlite": """
        INSERT INTO turn_outcomes
            (conversation_id, turn_id, seq, created_at, mode, answered, partial, confidence)
        SELECT conversation_id, turn_id, seq, created_at,
               substr(coalesce(json_extract(payload, '$.mode'), ''), 1, 32),
               coalesce(json_type(payload, '$.answered') = 'true', 0),
               coalesce(json_type(payload, '$.partial') = 'true', 0),
               CASE WHEN json_type(payload, '$.confidence') IN ('integer', 'real')
                    THEN json_extract(payload, '$.confidence') END
        FROM events WHERE type = 'done'
    """,
}


def upgrade() -> None:
    op.create_table(
        "turn_outcomes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "conversation_id",
            sa.String(64),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("turn_id", sa.String(64), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
    )
    op.create_index("ix_turn_outcomes_created_at", "turn_outcomes", ["created_at"])
    op.create_index("ix_turn_outcomes_conversation", "turn_outcomes", ["conversation_id"])
    fill = _FILL.get(op.get_bind().dialect.name)
    if fill is not None:
        op.execute(fill)
    op.create_index(
        "ix_events_handoffs",
        "events",
        ["created_at"],
        postgresql_where=_HANDOFFS,
        sqlite_where=_HANDOFFS,
    )
    op.drop_index("ix_events_stats", table_name="events")


def downgrade() -> None:
    op.create_index(
        "ix_events_stats",
        "events",
        ["created_at"],
        postgresql_where=sa.text("type IN ('done', 'handoff')"),
        sqlite_where=sa.text("type IN ('done', 'handoff')"),
    )
    op.drop_index("ix_events_handoffs", table_name="events")
    op.drop_index("ix_turn_outcomes_conversation", table_name="turn_outcomes")
    op.drop_index("ix_turn_outcomes_created_at", table_name="turn_outcomes")
    op.drop_table("turn_outcomes")
