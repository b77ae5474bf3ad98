"""events that last longer than a day are flagged and indexed apart

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# calendar.events.LONG_SPAN, written out: a migration keeps the value it was written with.
_LONGER_THAN_A_DAY = {
    "sqlite": "julianday(ends_at) - julianday(starts_at) > 25.0 / 24",
    "postgresql": "ends_at - starts_at > interval '25 hours'",
}


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("long_span", sa.Boolean(), nullable=False, server_default=sa.false()))
    # The events stored so far, flagged by the rule new ones are saved with.
    events = sa.table("events", sa.column("long_span", sa.Boolean()))
    condition = sa.text(_LONGER_THAN_A_DAY[op.get_bind().dialect.name])
    op.execute(events.update().where(condition).values(long_span=True))
    op.create_index("ix_events_long", "events", ["starts_at", "last_ends_at"], unique=False,
                    sqlite_where=sa.text("long_span = 1"), postgresql_where=sa.text("long_span"))


def downgrade() -> None:
    op.drop_index("ix_events_long", table_name="events", sqlite_where=sa.text("long_span = 1"),
                  postgresql_where=sa.text("long_span"))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("long_span")
