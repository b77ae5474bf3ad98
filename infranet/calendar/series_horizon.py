"""Endless series keep up with the planning horizon.

A series without COUNT or UNTIL is stored expanded up to the horizon it was saved with
(`X-HORIZON` in its stored rule, `last_ends_at` equal to it: `recurrence`), so that range
queries, listings and conflict checks find it without knowing it never ends. The horizon
(`[calendar] max_years_ahead` from today) moves forward every day; this daily job moves the
stored one of every endless series with it, a week at a time, so a weekly meeting saved
today is still listed and checked for conflicts in three years. Feeds publish the rule as
given (no end), so nothing a subscriber sees changes, and the series' revision stays as it
is: a moderation button for it stays valid.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from infranet.calendar import recurrence
from infranet.calendar.event_input import horizon
from infranet.calendar.events import mark_changed
from infranet.context import AppContext
from infranet.storage.models import Event, EventStatus

log = logging.getLogger(__name__)

# Series are moved once their horizon is this far behind the current one: one write a week
# per endless series, not one a day.
STEP = timedelta(days=7)
# Series moved per transaction: short write transactions on SQLite.
BATCH = 500


async def extend_endless_series(ctx: AppContext) -> int:
    """Move every endless series' stored horizon up to today's; returns how many moved."""
    latest = horizon(ctx)
    moved = 0
    after_id = 0
    while True:
        async with ctx.db.transaction() as session:
            rows = list((await session.scalars(
                # Only endless series carry a horizon line: ended and counted series, which
                # grow with the calendar's history, are never read.
                select(Event).where(Event.rrule.contains(f"\n{recurrence.HORIZON}:"),
                                    Event.series_id.is_(None),
                                    Event.status == EventStatus.SCHEDULED,
                                    Event.last_ends_at < latest - STEP, Event.id > after_id)
                .order_by(Event.id).limit(BATCH))).all())
            if not rows:
                break
            after_id = rows[-1].id
            changed = 0
            for row in rows:
                if row.rrule is None or not recurrence.is_endless(row.rrule):
                    continue
                row.rrule = recurrence.with_horizon(row.rrule, latest)
                spans = recurrence.expand_all(row.rrule, row.starts_at, row.ends_at, row.all_day, ctx.tz)
                row.last_ends_at = recurrence.series_last_end(row.rrule, spans, row.ends_at)
                changed += 1
            if changed:
                mark_changed(session, ctx)
            moved += changed
    if moved:
        log.info("moved the horizon of %d endless series to %s", moved, latest.date())
    return moved
