"""events proposed on the public site: who to tell the outcome

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 19:20:00

`event_proposals`: for an event proposed on the site's form by someone without the bot,
the proposer's e-mail address (and optional name, and language), kept only until they have
been told whether the event was published, plus a short retention; and the hash of the
form token the proposal came with, so that one form sends one proposal.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("form_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("told_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"],
                                name=op.f("fk_event_proposals_event_id_events"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_proposals")),
        sa.UniqueConstraint("event_id", name=op.f("uq_event_proposals_event_id")),
        sa.UniqueConstraint("form_token", name=op.f("uq_event_proposals_form_token")),
    )
    with op.batch_alter_table("event_proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_proposals_told_at"), ["told_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_proposals_told_at"))
    op.drop_table("event_proposals")
