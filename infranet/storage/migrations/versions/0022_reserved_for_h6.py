"""reserved for h6: experts and trainers (no change yet)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 19:40:00

h6: this placeholder keeps the chain of revisions whole while several migrations are
written at once. Rename this file for what it does and write its upgrade and downgrade;
keep the revision ids.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
