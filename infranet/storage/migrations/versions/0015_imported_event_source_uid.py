"""imported events keep their UID, SEQUENCE and LAST-MODIFIED in the file

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 17:06:39

`events.source_uid`: the UID the event has in the imported file (the stored `uid` is made
unique when another source already holds it); `source_sequence` and `source_modified`: its
SEQUENCE and LAST-MODIFIED there, so that an older copy never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_uid", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("source_sequence", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("source_modified", infranet.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_events_source_uid", ["source_id", "source_uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_source_uid")
        batch_op.drop_column("source_modified")
        batch_op.drop_column("source_sequence")
        batch_op.drop_column("source_uid")
