"""Endless series keep up with the planning horizon (calendar/series_horizon.py): a daily
job moves their stored horizon, so they stay listed and conflict-checked as time passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from infranet.calendar import events as calendar
from infranet.calendar.event_input import EventInput
from infranet.calendar.event_queries import list_events
from infranet.calendar.series_horizon import extend_endless_series
from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.models import Event

W = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FIRST = datetime(2026, 12, 1, 10, tzinfo=W)  # a Tuesday


async def _add(ctx: AppContext, rrule: str, title: str) -> Event:
    async with ctx.db.transaction() as session:
        return await calendar.add_event(session, ctx, Actor.cli(), EventInput(
            title=title, start=FIRST, end=FIRST + timedelta(hours=2), district="olsztyński",
            category="meeting", audiences=["seniors"], rrule=rrule))


async def test_a_year_later_an_endless_series_is_still_listed_two_years_ahead(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    endless = await _add(ctx, "FREQ=WEEKLY;BYDAY=TU", "Klub seniora")
    counted = await _add(ctx, "FREQ=WEEKLY;BYDAY=TU;COUNT=10", "Kurs")
    assert await extend_endless_series(ctx) == 0  # nothing to move yet
    later = NOW + timedelta(days=365)
    ctx.clock = lambda: later
    window = dict(start=datetime(2029, 6, 1, tzinfo=UTC), end=datetime(2029, 7, 1, tzinfo=UTC))
    async with ctx.db.read() as session:
        assert await list_events(session, ctx, **window) == []  # the old horizon ends it
    events_before = ctx.changes.events.generation
    assert await extend_endless_series(ctx) == 1
    assert ctx.changes.events.generation > events_before  # the feed cache is told
    async with ctx.db.read() as session:
        moved = await session.get(Event, endless.id)
        kept = await session.get(Event, counted.id)
        assert moved is not None and kept is not None
        assert moved.last_ends_at == datetime(2029, 11, 23, 12, 0, tzinfo=UTC)
        assert moved.rrule == "FREQ=WEEKLY;BYDAY=TU\nX-HORIZON:20291123T120000Z"
        assert moved.revision == endless.revision  # a button showing it stays valid
        assert kept.rrule == counted.rrule and kept.last_ends_at == counted.last_ends_at
        late = await list_events(session, ctx, **window)
        assert [o.start.astimezone(W).day for o in late] == [5, 12, 19, 26]
    assert await extend_endless_series(ctx) == 0  # run again the same day: nothing to do
