"""a series' rule with its dates taken out and added is TEXT, not VARCHAR(300)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 17:30:00

`events.rrule` holds the rule and, one line each, its RDATE, EXDATE and moved dates
(infranet/calendar/recurrence.py). 300 characters held about fourteen dates: a real
calendar's weekly meeting with a year of exceptions could not be imported.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("rrule", existing_type=sa.String(length=300), type_=sa.Text(),
                              existing_nullable=True)


def downgrade() -> None:
    # Rules longer than 300 characters cannot go back: they are cut at the end of their
    # last whole line, which loses dates taken out of or added to the series.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("rrule", existing_type=sa.Text(), type_=sa.String(length=300),
                              existing_nullable=True)
