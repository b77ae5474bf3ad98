"""an issue can be kept out of the public newsletter archive

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-03 11:30:00

`newsletter_issues.archived` (true for every issue built so far, as they were all
public) decides whether /newsletter/archive lists and shows the issue.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("newsletter_issues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived", sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("newsletter_issues", schema=None) as batch_op:
        batch_op.drop_column("archived")
