"""a moved occurrence of a series is an event of its own (an override)

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-03 10:20:00

An override names its series (`series_id`) and the occurrence it replaces
(`recurrence_id`, the original start); feeds publish it with the series' UID
and a RECURRENCE-ID. The occurrences taken out of a series are listed in the
series' own rule text (see `infranet.calendar.recurrence`), so nothing else
changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("recurrence_id", infranet.storage.types.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index(batch_op.f("ix_events_series_id"), ["series_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_events_series_id_events"), "events", ["series_id"], ["id"],
                                    ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_events_series_id_events"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_events_series_id"))
        batch_op.drop_column("recurrence_id")
        batch_op.drop_column("series_id")
