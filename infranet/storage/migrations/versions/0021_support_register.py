"""the register of support given, and members' answers to its duplicate warning

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 19:40:00

`support_records`: which member organisation supported which client organisation (KRS,
NIP, or an informal group's name), with which service, in which powiat and on which day
(network/support.py). Indexed for the duplicate check (client key and date; KRS; NIP)
and for the public counts (powiat and date).

`support_decisions`: whether a member who was shown earlier support by another
organisation saved anyway or dropped the record; no client data.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "support_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("client_kind", sa.String(length=16), nullable=False),
        sa.Column("client_name", sa.String(length=200), nullable=False),
        sa.Column("client_key", sa.String(length=200), nullable=False),
        sa.Column("krs", sa.String(length=10), nullable=True),
        sa.Column("nip", sa.String(length=10), nullable=True),
        sa.Column("service", sa.String(length=40), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name=op.f("fk_support_records_organisation_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name=op.f("fk_support_records_member_id_members"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["district_id"], ["districts.id"],
                                name=op.f("fk_support_records_district_id_districts")),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_support_records_referral_id_referrals"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_records")),
    )
    with op.batch_alter_table("support_records", schema=None) as batch_op:
        batch_op.create_index("ix_support_records_client", ["client_key", "given_on"], unique=False)
        batch_op.create_index("ix_support_records_district_given", ["district_id", "given_on"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_support_records_organisation_id"), ["organisation_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_support_records_krs"), ["krs"], unique=False)
        batch_op.create_index(batch_op.f("ix_support_records_nip"), ["nip"], unique=False)
        batch_op.create_index(batch_op.f("ix_support_records_referral_id"), ["referral_id"],
                              unique=False)
    op.create_table(
        "support_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("service", sa.String(length=40), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("decided_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("support_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name=op.f("fk_support_decisions_organisation_id_organisations"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["district_id"], ["districts.id"],
                                name=op.f("fk_support_decisions_district_id_districts")),
        sa.ForeignKeyConstraint(["support_id"], ["support_records.id"],
                                name=op.f("fk_support_decisions_support_id_support_records"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_decisions")),
    )
    with op.batch_alter_table("support_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_support_decisions_decided_at"), ["decided_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("support_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_decisions_decided_at"))
    op.drop_table("support_decisions")
    with op.batch_alter_table("support_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_records_referral_id"))
        batch_op.drop_index(batch_op.f("ix_support_records_nip"))
        batch_op.drop_index(batch_op.f("ix_support_records_krs"))
        batch_op.drop_index(batch_op.f("ix_support_records_organisation_id"))
        batch_op.drop_index("ix_support_records_district_given")
        batch_op.drop_index("ix_support_records_client")
    op.drop_table("support_records")
