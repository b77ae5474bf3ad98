"""subscribers remember their last confirmation e-mail, for the per-address abuse limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows start with no confirmation on record, so nobody is held back by the upgrade.
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirm_sent_at", infranet.storage.types.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("confirm_sends", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("confirm_sends")
        batch_op.drop_column("confirm_sent_at")
