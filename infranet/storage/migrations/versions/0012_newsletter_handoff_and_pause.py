"""deliveries remember their handoff; a paused issue remembers being resumed

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 14:00:00

`deliveries.handed_at` is committed before a message is offered to the SMTP server, so
that after a crash a `sending` row without it (claimed ahead, never offered) is sent
again automatically and only the others wait for an admin's decision.
`newsletter_issues.resumed_at` marks an issue an admin resumed after an automatic pause.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from infranet.storage.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handed_at", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("newsletter_issues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resumed_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("newsletter_issues", schema=None) as batch_op:
        batch_op.drop_column("resumed_at")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("handed_at")
