"""index events by category and end, for feeds filtered by category

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_category_range", "events", ["category", "last_ends_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_category_range", table_name="events")
