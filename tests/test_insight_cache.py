"""The last figures of a period are reused for a short while: a change this process makes
to events drops them at once, a change signalled nowhere (another instance, the support
register) shows within max_age."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event
from infranet.context import AppContext
from infranet.insight.cache import InsightCache
from infranet.insight.indicators import Period
from infranet.network.support import SupportInput, add_support
from infranet.storage.actors import Actor
from tests.test_insight_indicators import _network


async def test_figures_are_reused_until_something_changes(ctx: AppContext) -> None:
    await _network(ctx)
    now = [0.0]
    cache = InsightCache(ctx, max_age=30, clock=lambda: now[0])
    year = Period.year(2026)
    async with ctx.db.read() as session:
        first = await cache.get(session, year)
        assert await cache.get(session, year) is first  # reused
    assert first.figures("elcki").values["events"] == 2

    start = datetime(2026, 12, 2, 10, tzinfo=ctx.tz)
    async with ctx.db.transaction() as session:  # signalled: seen at once
        await add_event(session, ctx, Actor.cli(), EventInput(
            "Nowe", start, start + timedelta(hours=1), district="ełcki", category="meeting"))
    async with ctx.db.read() as session:
        second = await cache.get(session, year)
    assert second.figures("elcki").values["events"] == 3

    async with ctx.db.transaction() as session:  # not signalled: within max_age
        await add_support(session, ctx, Actor.cli(), SupportInput(
            client_name="Nowa grupa", service="accounting", district="ełcki",
            given_on=date(2026, 10, 1), organisation_id=second.organisations[0].id, source="cli"))
    async with ctx.db.read() as session:
        now[0] = 29.0
        assert (await cache.get(session, year)).figures("elcki").values["supported"] == 2
        now[0] = 31.0
        assert (await cache.get(session, year)).figures("elcki").values["supported"] == 3
