"""experts and trainers the network's members may call on

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 19:40:00

`experts`: a person with the topics they work on, the districts they serve (slugs of
powiaty, subregions or the region), the languages they work in and how to reach them,
added by a member with that person's consent: when, recorded by which member, and the
version of the consent text the member showed (infranet.network.experts.CONSENT_VERSION).
Members only see it; a person's row is deleted whole on request. The `*_folded` and
`*_key` columns are what the search compares, on both engines, with a LIKE.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("topics_folded", sa.Text(), nullable=False),
        sa.Column("districts", sa.JSON(), nullable=False),
        sa.Column("districts_key", sa.Text(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("languages_key", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("added_by_member_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("consent_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("consent_by", sa.Integer(), nullable=True),
        sa.Column("consent_text_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["added_by_member_id"], ["members.id"],
                                name=op.f("fk_experts_added_by_member_id_members"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["consent_by"], ["members.id"],
                                name=op.f("fk_experts_consent_by_members"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name=op.f("fk_experts_organisation_id_organisations"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experts")),
    )
    with op.batch_alter_table("experts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experts_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_experts_added_by_member_id"), ["added_by_member_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("experts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experts_added_by_member_id"))
        batch_op.drop_index(batch_op.f("ix_experts_email"))
    op.drop_table("experts")
