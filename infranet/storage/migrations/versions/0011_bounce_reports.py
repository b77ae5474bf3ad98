"""reports read from the bounce mailbox are remembered, so that none is counted twice

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:40:00

`bounce_reports` holds one row per bounce, complaint or mailto: unsubscribe request
acted on (infranet/newsletter/bounces.py), keyed by a hash of the report's Message-ID.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bounce_reports",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("handled_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_bounce_reports")),
    )
    with op.batch_alter_table("bounce_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bounce_reports_handled_at"), ["handled_at"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_bounce_reports_delivery_id"), ["delivery_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bounce_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bounce_reports_delivery_id"))
        batch_op.drop_index(batch_op.f("ix_bounce_reports_handled_at"))
    op.drop_table("bounce_reports")
