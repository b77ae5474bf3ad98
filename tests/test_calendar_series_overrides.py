"""Single dates of a series on the calendar: an export with an override (RECURRENCE-ID) and
a cancelled date (EXDATE) is imported back without loss, and twice changes nothing; all-day
series work the same. Both engines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import icalendar
from sqlalchemy import select

from infranet.calendar import events as calendar
from infranet.calendar import recurrence, wallclock
from infranet.calendar.event_input import EventInput
from infranet.calendar.event_queries import list_events
from infranet.calendar.feed import FeedCache
from infranet.calendar.feed_filter import FeedFilter
from infranet.calendar.ics_import import import_ics
from infranet.calendar.service import build
from infranet.context import AppContext
from infranet.http import create_app
from infranet.storage.actors import Actor
from infranet.storage.models import Event, EventStatus

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FIRST = datetime(2026, 12, 1, 9, tzinfo=UTC)  # Tuesday 10:00 in Warsaw


async def _series(ctx: AppContext, **fields: object) -> Event:
    async with ctx.db.transaction() as session:
        series = await calendar.add_event(session, ctx, Actor.cli(), EventInput(
            title="Klub seniora", district="olsztyński", category="meeting", audiences=["seniors"],
            rrule="FREQ=WEEKLY;COUNT=6", **fields))  # type: ignore[arg-type]
        return series


async def test_an_export_with_changed_dates_is_imported_back_whole(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    series = await _series(ctx, start=FIRST, end=FIRST + timedelta(hours=2))
    async with ctx.db.transaction() as session:
        await calendar.move_occurrence(session, ctx, Actor.cli(), series.id, FIRST, EventInput(
            title="Klub seniora (wyjazd)", start=FIRST + timedelta(days=1),
            end=FIRST + timedelta(days=1, hours=3), district="elbląski", category="meeting",
            audiences=["seniors"]))
        await calendar.cancel_occurrence(session, ctx, Actor.cli(), series.id, FIRST + timedelta(days=14))
    feed = await FeedCache(ctx, check_interval=0).get(FeedFilter())
    assert feed.body is not None
    exported = feed.body.decode().replace(series.uid, "kopia-serii@example.org")
    async with ctx.db.transaction() as session:
        result = await import_ics(session, ctx, Actor.cli(), exported)
        assert (result.added, result.cancelled) == (2, 0)
    async with ctx.db.read() as session:
        copy = (await session.scalars(select(Event).where(Event.uid == "kopia-serii@example.org"))).one()
        moved = (await session.scalars(select(Event).where(Event.series_id == copy.id))).one()
        assert moved.recurrence_id == FIRST and moved.title == "Klub seniora (wyjazd)"
        assert moved.starts_at == FIRST + timedelta(days=1) and moved.district.slug == "elblaski"
        starts = [s.start for s in recurrence.expand(copy.rrule, copy.starts_at, copy.ends_at, False, ctx.tz)]
        assert len(starts) == 4 and FIRST not in starts and FIRST + timedelta(days=14) not in starts
        revisions = (copy.revision, moved.revision)
    # the same file again changes nothing
    async with ctx.db.transaction() as session:
        again = await import_ics(session, ctx, Actor.cli(), exported)
        assert again.added == 0 and again.updated == 0
    async with ctx.db.read() as session:
        copy = (await session.scalars(select(Event).where(Event.uid == "kopia-serii@example.org"))).one()
        moved = (await session.scalars(select(Event).where(Event.series_id == copy.id))).one()
        assert (copy.revision, moved.revision) == revisions


async def test_an_all_day_series_has_its_dates_changed_and_cancelled(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    series = await _series(ctx, start=date(2026, 12, 1), end=date(2026, 12, 1), all_day=True)
    first = wallclock.local_midnight(date(2026, 12, 1), ctx.tz)
    async with ctx.db.transaction() as session:
        await calendar.move_occurrence(session, ctx, Actor.cli(), series.id, first, EventInput(
            title="Klub seniora", start=date(2026, 12, 2), end=date(2026, 12, 3), all_day=True,
            district="olsztyński", category="meeting"))
        await calendar.cancel_occurrence(session, ctx, Actor.cli(), series.id, first + timedelta(days=7))
        found = await list_events(session, ctx, start=NOW, end=NOW + timedelta(days=60))
        assert [o.first_day(ctx.tz) for o in found][:3] == [date(2026, 12, 2), date(2026, 12, 15),
                                                            date(2026, 12, 22)]
        assert await calendar.series_size(session, ctx, await calendar.get_event(session, series.id)) == 5
    feed = await FeedCache(ctx, check_interval=0).get(FeedFilter())
    assert feed.body is not None
    events = list(icalendar.Calendar.from_ical(feed.body).walk("VEVENT"))
    moved = next(e for e in events if "RECURRENCE-ID" in e)
    assert moved.decoded("RECURRENCE-ID") == date(2026, 12, 1)
    assert moved.decoded("DTSTART") == date(2026, 12, 2)
    master = next(e for e in events if "RRULE" in e)
    assert [d.dt for d in master["EXDATE"].dts] == [date(2026, 12, 8)]
    # the last dates cancelled one by one: the series is cancelled with the last, its moved date too
    async with ctx.db.transaction() as session:
        row = await calendar.get_event(session, series.id)
        for span in recurrence.expand(row.rrule, row.starts_at, row.ends_at, True, ctx.tz):
            await calendar.cancel_occurrence(session, ctx, Actor.cli(), series.id, span.start)
        assert row.status == EventStatus.SCHEDULED  # its moved date still stands
        await calendar.cancel_event(session, ctx, Actor.cli(), series.id)
        moved_row = (await session.scalars(select(Event).where(Event.series_id == series.id))).one()
        assert moved_row.status == EventStatus.CANCELLED


async def test_the_json_api_lists_a_changed_date_and_the_rule_alone(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    series = await _series(ctx, start=FIRST, end=FIRST + timedelta(hours=2))
    async with ctx.db.transaction() as session:
        await calendar.move_occurrence(session, ctx, Actor.cli(), series.id, FIRST, EventInput(
            title="Klub seniora", start=FIRST + timedelta(days=1), end=FIRST + timedelta(days=1, hours=2),
            district="olsztyński", category="meeting", audiences=["seniors"]))
    app = create_app(ctx, [build(ctx)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        answer = await http.get("/api/events?start=2026-12-01&end=2026-12-10")
    assert answer.status_code == 200, answer.text
    items = answer.json()["events"]
    assert [(i["start"][:16], i["rrule"]) for i in items] == [
        ("2026-12-02T10:00", None), ("2026-12-08T10:00", "FREQ=WEEKLY;COUNT=6")]
