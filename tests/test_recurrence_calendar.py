"""Series in full on the calendar, both engines: an endless series is stored up to the
horizon (`last_ends_at`), listed and conflict-checked on its dates up to there, and
published in the feed as given (no end, no horizon); RDATEs are listed, conflict-checked,
cancelled like any date and published back as RDATE."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from infranet.calendar import events as calendar
from infranet.calendar.conflicts import find_conflicts
from infranet.calendar.event_input import EventInput
from infranet.calendar.event_queries import list_events
from infranet.calendar.feed import FeedCache
from infranet.calendar.feed_filter import FeedFilter
from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.models import Event

W = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HORIZON = datetime(2028, 11, 23, 12, 0, tzinfo=UTC)  # max_years_ahead = 2
FIRST = datetime(2026, 12, 1, 10, tzinfo=W)  # a Tuesday


async def _add(ctx: AppContext, rrule: str, *, title: str = "Klub seniora", district: str = "olsztyński",
               start: datetime = FIRST) -> Event:
    async with ctx.db.transaction() as session:
        return await calendar.add_event(session, ctx, Actor.cli(), EventInput(
            title=title, start=start, end=start + timedelta(hours=2), district=district,
            category="meeting", audiences=["seniors"], rrule=rrule))


async def _feed_event(ctx: AppContext, uid: str) -> Any:
    feed = await FeedCache(ctx, check_interval=0).get(FeedFilter())
    assert feed.body is not None
    found = [c for c in icalendar.Calendar.from_ical(feed.body).walk("VEVENT") if str(c["UID"]) == uid]
    assert len(found) == 1
    return found[0]


async def test_an_endless_series_up_to_the_horizon(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    series = await _add(ctx, "FREQ=WEEKLY;BYDAY=TU")
    assert series.last_ends_at == HORIZON
    assert series.rrule == "FREQ=WEEKLY;BYDAY=TU\nX-HORIZON:20281123T120000Z"
    async with ctx.db.read() as session:
        # Listed on its dates two years ahead (a range query that finds it by last_ends_at),
        # in local time across DST, and not beyond the horizon.
        late = await list_events(session, ctx, start=datetime(2028, 6, 1, tzinfo=UTC),
                                 end=datetime(2028, 7, 1, tzinfo=UTC))
        assert [o.start.astimezone(W).strftime("%d.%m %H:%M") for o in late] == \
            ["06.06 10:00", "13.06 10:00", "20.06 10:00", "27.06 10:00"]
        beyond = await list_events(session, ctx, start=HORIZON, end=HORIZON + timedelta(days=60))
        assert beyond == []
        # A candidate on one of its far dates, in the same powiat, is a conflict.
        report = await find_conflicts(session, ctx, EventInput(
            title="Warsztaty", start=datetime(2028, 9, 5, 11, tzinfo=W),
            end=datetime(2028, 9, 5, 13, tzinfo=W),
            district="olsztyński", category="training", audiences=["seniors"]))
        assert [(c.event.id, c.start.astimezone(W).day) for c in report.conflicts] == [(series.id, 5)]
        # An endless candidate against an endless series: their dates meet every week.
        report = await find_conflicts(session, ctx, EventInput(
            title="Spotkanie", start=datetime(2026, 12, 8, 11, tzinfo=W),
            end=datetime(2026, 12, 8, 12, tzinfo=W),
            district="olsztyński", category="meeting", rrule="FREQ=MONTHLY;BYDAY=2TU"))
        assert len(report.conflicts) == 24 and {c.event.id for c in report.conflicts} == {series.id}
    vevent = await _feed_event(ctx, series.uid)
    assert vevent["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=TU"  # as given: no end, no horizon
    assert "RDATE" not in vevent and "EXDATE" not in vevent


async def test_an_edit_moves_an_endless_series_horizon_on(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    series = await _add(ctx, "FREQ=MONTHLY;BYDAY=-1FR")
    later = NOW + timedelta(days=100)
    ctx.clock = lambda: later
    async with ctx.db.transaction() as session:
        row = await calendar.update_event(session, ctx, Actor.cli(), series.id, EventInput(
            title="Klub seniora", start=FIRST, end=FIRST + timedelta(hours=3), district="olsztyński",
            category="meeting", rrule="FREQ=MONTHLY;BYDAY=-1FR"))
        assert row.last_ends_at == HORIZON + timedelta(days=100)


async def test_rdates_are_listed_checked_cancelled_and_published(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    # Three Tuesdays and an extra Thursday after them.
    series = await _add(ctx, "FREQ=WEEKLY;COUNT=3\nRDATE;TZID=Europe/Warsaw:20261217T100000")
    extra = datetime(2026, 12, 17, 9, tzinfo=UTC)
    assert series.last_ends_at == extra + timedelta(hours=2)
    async with ctx.db.read() as session:
        found = await list_events(session, ctx, start=NOW, end=NOW + timedelta(days=60))
        assert [o.start.astimezone(W).day for o in found] == [1, 8, 15, 17]
        report = await find_conflicts(session, ctx, EventInput(
            title="Inne", start=datetime(2026, 12, 17, 11, tzinfo=W),
            end=datetime(2026, 12, 17, 12, tzinfo=W),
            district="olsztyński", category="meeting"))
        assert [c.start for c in report.conflicts] == [extra]
    vevent = await _feed_event(ctx, series.uid)
    assert [d.dt for d in vevent["RDATE"].dts] == [datetime(2026, 12, 17, 10, tzinfo=W)]
    async with ctx.db.transaction() as session:
        await calendar.cancel_occurrence(session, ctx, Actor.cli(), series.id, extra)
    async with ctx.db.read() as session:
        found = await list_events(session, ctx, start=NOW, end=NOW + timedelta(days=60))
        assert [o.start.astimezone(W).day for o in found] == [1, 8, 15]
        report = await find_conflicts(session, ctx, EventInput(
            title="Inne", start=datetime(2026, 12, 17, 11, tzinfo=W),
            end=datetime(2026, 12, 17, 12, tzinfo=W),
            district="olsztyński", category="meeting"))
        assert report.conflicts == []
    vevent = await _feed_event(ctx, series.uid)
    assert [d.dt for d in vevent["EXDATE"].dts] == [datetime(2026, 12, 17, 10, tzinfo=W)]
    assert "RDATE" in vevent  # still part of the series' definition, cancelled by EXDATE


async def test_an_exported_endless_series_with_rdates_is_imported_back_the_same(ctx: AppContext) -> None:
    from sqlalchemy import select

    from infranet.calendar import recurrence
    from infranet.calendar.ics_import import import_ics

    ctx.clock = lambda: NOW
    series = await _add(ctx, "FREQ=MONTHLY;BYDAY=1TU\nRDATE:20261217T100000,20261218")
    feed = await FeedCache(ctx, check_interval=0).get(FeedFilter())
    assert feed.body is not None
    exported = feed.body.decode().replace(series.uid, "kopia@example.org")
    async with ctx.db.transaction() as session:
        await import_ics(session, ctx, Actor.cli(), exported)
    async with ctx.db.read() as session:
        copy = (await session.scalars(select(Event).where(Event.uid == "kopia@example.org"))).one()
    assert recurrence.definition(copy.rrule) == recurrence.definition(series.rrule) == (
        "FREQ=MONTHLY;BYDAY=1TU\nRDATE:20261217T090000Z,20261218T090000Z")
    assert copy.last_ends_at == series.last_ends_at == HORIZON
