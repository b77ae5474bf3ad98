"""join requests get rows of their own; admins' copies of a decision are recorded

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infranet.storage.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "join_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("new_organisation", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name=op.f("fk_join_requests_member_id_members"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name=op.f("fk_join_requests_organisation_id_organisations"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by"], ["members.id"],
                                name=op.f("fk_join_requests_decided_by_members"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_join_requests")),
    )
    op.create_index(op.f("ix_join_requests_member_id"), "join_requests", ["member_id"])
    op.create_index(op.f("ix_join_requests_status"), "join_requests", ["status"])
    op.create_table(
        "decision_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", infranet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_messages")),
    )
    op.create_index("ix_decision_messages_subject", "decision_messages", ["kind", "subject_id"])
    # Requests waiting today become request rows, so that they can still be decided; the
    # buttons already sent for them carried member numbers and now answer "expired".
    op.execute(sa.text(
        "INSERT INTO join_requests (member_id, organisation_id, new_organisation, status, created_at) "
        "SELECT m.id, m.organisation_id, "
        "CASE WHEN o.status = 'pending' THEN TRUE ELSE FALSE END, 'pending', m.updated_at "
        "FROM members m LEFT JOIN organisations o ON o.id = m.organisation_id "
        "WHERE m.status = 'pending'"))


def downgrade() -> None:
    op.drop_index("ix_decision_messages_subject", table_name="decision_messages")
    op.drop_table("decision_messages")
    op.drop_index(op.f("ix_join_requests_status"), table_name="join_requests")
    op.drop_index(op.f("ix_join_requests_member_id"), table_name="join_requests")
    op.drop_table("join_requests")
