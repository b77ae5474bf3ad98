"""organisations choose whether the public site shows their e-mail and phone

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 19:20:00

The site's directory (`/organisations`) and event pages show an organisation's contacts
only as `infranet.network.public_contacts` allows. `publish_email` and `publish_phone`
record that choice; the website is the organisation's own public page and always shown.

Existing rows (and new ones) start with both false. The contacts were collected for the
network's own directory in the bot, often a contact person's mailbox or mobile; putting
them on a public web page, where scrapers read them, is a new use nobody agreed to
(GDPR art. 5(1)(b) and 25(2): data protection by default). An organisation or an admin
turns publication on with `infranet org publish` (one command), while a wrong "true"
could not be taken back from the copies already harvested.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("publish_email", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("publish_phone", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("publish_phone")
        batch_op.drop_column("publish_email")
