"""events carry a free-text organiser and a cost, for the public site's event pages

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 19:30:00

An event proposed on the site by people outside the network has no member organisation:
`organiser_name` says who runs it. `cost_pln` is what taking part costs (NULL: not stated,
0: free); event pages and their schema.org offers show it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organiser_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("cost_pln", sa.Numeric(precision=10, scale=2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("cost_pln")
        batch_op.drop_column("organiser_name")
