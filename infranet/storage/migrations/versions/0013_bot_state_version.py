"""bot_state rows carry a version: a user's form state moves by compare-and-set

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 14:00:00

`bot_state.version` (0 for every row so far) is bumped on a user's `user:<id>` row each
time an update moves that user's bot state; an instance writes its update's state only
if the version is still the one it read (bot/persistence.py), instead of holding a lock
on the user for the whole update.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bot_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False,
                                      server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("bot_state", schema=None) as batch_op:
        batch_op.drop_column("version")
