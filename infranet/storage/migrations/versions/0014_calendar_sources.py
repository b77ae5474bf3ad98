"""calendar sources followed by URL, and the source of each event

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 16:18:50

`calendar_sources`: each organisation's calendars the service follows by URL, with the
state of their fetches (validators, content hash, backoff). `events.source_id` names the
source an event came from, so that one source's import never touches another's events.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=True),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("created_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("last_fetched_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_fetch_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failure_notified", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by"],
            ["members.id"],
            name=op.f("fk_calendar_sources_added_by_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_calendar_sources_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_sources")),
        sa.UniqueConstraint("organisation_id", "url", name=op.f("uq_calendar_sources_organisation_id")),
    )
    with op.batch_alter_table("calendar_sources", schema=None) as batch_op:
        batch_op.create_index("ix_calendar_sources_due", ["status", "next_fetch_at"], unique=False)

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_events_source_id"), ["source_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_events_source_id_calendar_sources"),
            "calendar_sources",
            ["source_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_events_source_id_calendar_sources"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_events_source_id"))
        batch_op.drop_column("source_id")

    with op.batch_alter_table("calendar_sources", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_sources_due")

    op.drop_table("calendar_sources")
