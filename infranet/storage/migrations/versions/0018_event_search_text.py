"""event_words: the folded words of each event, for the public site's Polish-aware search

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 19:35:00

Each word of an event's title, description, place and free-text organiser, folded as
`infranet.region.fold` folds (lower case, diacritics and ł removed), is a row keyed by
(word, event): the site finds the events whose words begin with what was typed ("lodz"
finds "Łodzi") through one range of the key, instead of reading every event. The calendar
writes them with every change of an event's text; existing events are indexed here.

`ix_events_singles` (single events: start, end, moderation) lets the site's month grid count
each day's events from the index alone.
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
_WORD_MAX = 64
_MAX_EVENT_WORDS = 600


def upgrade() -> None:
    op.create_table(
        "event_words",
        sa.Column("word", sa.String(length=64).with_variant(sa.String(length=64, collation="C"),
                                                              "postgresql"), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_event_words_event_id_events"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("word", "event_id", name=op.f("pk_event_words")),
    )
    op.create_index("ix_event_words_event", "event_words", ["event_id", "word"], unique=False)
    op.create_index("ix_events_singles", "events", ["starts_at", "last_ends_at", "moderation", "rrule"],
                    unique=False, sqlite_where=sa.text("rrule IS NULL"),
                    postgresql_where=sa.text("rrule IS NULL"))
    events = sa.table("events", sa.column("id", sa.Integer), sa.column("title", sa.String),
                      sa.column("description", sa.Text), sa.column("location", sa.String),
                      sa.column("organiser_name", sa.String))
    words = sa.table("event_words", sa.column("word", sa.String), sa.column("event_id", sa.Integer))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(sa.select(events.c.id, events.c.title, events.c.description,
                                      events.c.location, events.c.organiser_name)
                            .where(events.c.id > last).order_by(events.c.id).limit(_BATCH)).all()
        if not rows:
            break
        values = []
        for row in rows:
            found = dict.fromkeys(w[:_WORD_MAX] for w in fold(" ".join(p for p in row[1:] if p)).split())
            values += [{"word": w, "event_id": row[0]} for w in list(found)[:_MAX_EVENT_WORDS]]
        if values:
            bind.execute(words.insert(), values)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_events_singles", table_name="events", sqlite_where=sa.text("rrule IS NULL"),
                  postgresql_where=sa.text("rrule IS NULL"))
    op.drop_index("ix_event_words_event", table_name="event_words")
    op.drop_table("event_words")
