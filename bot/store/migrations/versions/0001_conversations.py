"""conversations, events, message keys, feedback

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("lang", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("handoff_state", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])
    op.create_index("ix_conversations_status", "conversations", ["status"])
    op.create_index("ix_conversations_handoff_state", "conversations", ["handoff_state"])
    op.create_index("ix_conversations_contact_id", "conversations", ["contact_id"])

    op.create_table(
        "events",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id",
            sa.String(64),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("turn_id", sa.String(64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_events_conversation_seq"),
    )
    op.create_index("ix_events_turn", "events", ["conversation_id", "turn_id"])

    op.create_table(
        "message_keys",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id",
            sa.String(64),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("turn_id", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("conversation_id", "message_id", name="uq_message_keys_message"),
    )

    op.create_table(
        "feedback",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id",
            sa.String(64),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("turn_id", sa.String(64), nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("conversation_id", "turn_id", name="uq_feedback_turn"),
    )
    op.create_index("ix_feedback_conversation_id", "feedback", ["conversation_id"])
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("message_keys")
    op.drop_index("ix_events_turn", table_name="events")
    op.drop_table("events")
    op.drop_table("conversations")
