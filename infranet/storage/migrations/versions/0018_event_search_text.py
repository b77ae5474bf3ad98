"""events keep a folded search text, for the public site's Polish-aware search

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 19:35:00

`search_folded` is the title, description, place and free-text organiser of an event,
folded as `infranet.region.fold` folds (lower case, diacritics and ł removed, punctuation a
space), so that "lodz" finds "Łódź" with a plain LIKE and no per-row work at query time.
The calendar sets it wherever an event's text is written; existing rows are filled here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from infranet.region import fold

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 2000


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_folded", sa.Text(), nullable=False, server_default=""))
    events = sa.table("events", sa.column("id", sa.Integer), sa.column("title", sa.String),
                      sa.column("description", sa.Text), sa.column("location", sa.String),
                      sa.column("organiser_name", sa.String), sa.column("search_folded", sa.Text))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(sa.select(events.c.id, events.c.title, events.c.description,
                                      events.c.location, events.c.organiser_name)
                            .where(events.c.id > last).order_by(events.c.id).limit(_BATCH)).all()
        if not rows:
            break
        bind.execute(events.update().where(events.c.id == sa.bindparam("row_id"))
                     .values(search_folded=sa.bindparam("text")),
                     [{"row_id": r[0], "text": fold(" ".join(p for p in r[1:] if p))} for r in rows])
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("search_folded")
