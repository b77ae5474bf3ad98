"""what members did after a date-clash warning, for the yearly evaluation

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 20:00:00

`coordination_decisions`: one row per warning of a clash that a member (the bot) or an
import acted on: the date kept, moved to a suggested free date or another one, or the
event dropped. No personal data; counted by infranet/calendar/coordination.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coordination_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decided_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("coordination_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coordination_decisions_decided_at"), ["decided_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("coordination_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coordination_decisions_decided_at"))
    op.drop_table("coordination_decisions")
