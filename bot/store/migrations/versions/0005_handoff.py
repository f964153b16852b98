"""handoff timeouts, knowledge admin

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

``conversations.handoff_requested_at``: when the conversation last entered ``pending_human``
(the handoff-timeout sweep compares it with ``handoff_timeout_s``); ``agent_availability``: the
one-row "are agents available" switch of ``POST /api/v1/agents/availability``. Knowledge admin
keeps its entries in the knowledge folder and needs no table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("conversations", sa.Column("handoff_requested_at", _TS, nullable=True))
    op.create_table(
        "agent_availability",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("updated_by", sa.String(100), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_availability")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("handoff_requested_at")
