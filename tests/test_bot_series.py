"""A recurring series through the bot, end to end: a change asks whether it is for this
date or the whole series; one date changed is an override (a VEVENT with the series' UID and
RECURRENCE-ID in the feed; EXDATE for a cancelled date) that listings and conflict checks
see; a change of the whole series says how many dates it touches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import icalendar
import vobject
from sqlalchemy import select

from infranet.calendar import events as calendar
from infranet.calendar.event_input import EventInput
from infranet.calendar.event_queries import list_events
from infranet.calendar.feed import FeedCache
from infranet.calendar.feed_filter import FeedFilter
from infranet.storage.actors import Actor
from infranet.storage.models import Event, EventStatus, Member
from tests.bot_fixtures import BotHarness, skip_optional_steps
from tests.botapi import Sent

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw
ALICE, BOB = 1001, 2002
FIRST = datetime(2026, 12, 1, 9, tzinfo=UTC)  # Tuesday 10:00 in Warsaw, weekly, 12 dates


async def _setup(bot: BotHarness) -> Event:
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja Alfa", contact_email="alfa@example.org")
    await bot.org("Stowarzyszenie Beta", contact_email="beta@example.org")
    await bot.member(ALICE, "Fundacja Alfa", name="Alice")
    await bot.member(BOB, "Stowarzyszenie Beta", name="Bob")
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == ALICE))).one()
        return await calendar.add_event(session, bot.ctx, Actor.of(member), EventInput(
            title="Klub seniora", start=FIRST, end=FIRST + timedelta(hours=2), district="olsztyński",
            category="meeting", audiences=["seniors"], rrule="FREQ=WEEKLY;COUNT=12"))


async def _my_item(bot: BotHarness) -> Sent:
    await bot.api.ask(ALICE, "/my")
    return await bot.api.next_reply(ALICE)


async def _feed(bot: BotHarness) -> bytes:
    feed = await FeedCache(bot.ctx, check_interval=0).get(FeedFilter())
    assert feed.body is not None
    return feed.body


async def test_one_date_of_a_series_moved_and_another_cancelled(bot: BotHarness) -> None:
    series = await _setup(bot)
    api = bot.api
    item = await _my_item(bot)
    assert "Klub seniora" in item.text and "12 terminów" in item.text
    which = await api.click(ALICE, item, item.button("Zmień"))
    assert "seria" in which.text and "wtorek, 1 grudnia 2026" in which.text
    assert [label for label, _ in which.buttons] == ["Tylko ten termin", "Całą serię (12 terminów)"]
    summary = await api.click(ALICE, which, which.button("Tylko ten termin"))
    assert "Sprawdź wydarzenie" in summary.text and "tylko termin" in summary.text
    pick = await api.click(ALICE, summary, summary.button("Zmień"))
    assert "Kiedy" in (await api.answer(ALICE, pick, pick.button("Termin"))).text
    summary = await api.ask(ALICE, "2.12.2026 10:00-12:00")
    assert "środa, 2 grudnia 2026, 10:00–12:00" in summary.text
    saved = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Zmienione" in saved.text and "2 grudnia" in saved.text
    async with bot.ctx.db.read() as session:
        override = (await session.scalars(select(Event).where(Event.series_id == series.id))).one()
        assert override.recurrence_id == FIRST and override.starts_at == FIRST + timedelta(days=1)
        assert override.title == "Klub seniora"
    # the same button again: that date is no longer part of the series, nothing changes
    api.press(ALICE, which, which.button("Tylko ten termin"))
    stale = await api.next_reply(ALICE)
    assert "nie należy już do tej serii" in stale.text
    # cancel one date (8.12): /my now shows the series at its next date
    await api.ask(ALICE, "/my")
    items = await api.replies(ALICE, 2)
    moved = next(m for m in items if "środa, 2 grudnia" in m.text)
    series_item = next(m for m in items if "wtorek, 8 grudnia" in m.text)
    assert "12 terminów" in series_item.text and "zmieniony termin serii" in moved.text
    which = await api.click(ALICE, series_item, series_item.button("Odwołaj"))
    assert "wtorek, 8 grudnia 2026" in which.text
    assert [label for label, _ in which.buttons] == ["Tylko ten termin", "Całą serię (12 terminów)",
                                                   "Nie odwołuj"]
    done = await api.click(ALICE, which, which.button("Tylko ten termin"))
    assert "Odwołany termin" in done.text and "8 grudnia" in done.text
    # listings: the moved date at its new time, neither the old one nor the cancelled one
    listing = await api.ask(BOB, "/events month")
    assert "środa, 2 grudnia 2026, 10:00–12:00" in listing.text
    assert "wtorek, 1 grudnia" not in listing.text and "wtorek, 8 grudnia" not in listing.text
    assert "wtorek, 15 grudnia 2026" in listing.text
    # the feed: the series with EXDATE, the moved date as a second VEVENT with RECURRENCE-ID
    body = await _feed(bot)
    vevents = [e for e in icalendar.Calendar.from_ical(body).walk("VEVENT")
               if str(e["SUMMARY"]) == "Klub seniora"]
    assert len(vevents) == 2 and len({str(e["UID"]) for e in vevents}) == 1
    master = next(e for e in vevents if "RRULE" in e)
    moved_ev = next(e for e in vevents if "RECURRENCE-ID" in e)
    assert moved_ev.decoded("RECURRENCE-ID") == FIRST
    assert moved_ev.decoded("DTSTART") == FIRST + timedelta(days=1)
    exdates = master["EXDATE"] if isinstance(master["EXDATE"], list) else [master["EXDATE"]]
    assert [d.dt for x in exdates for d in x.dts] == [FIRST + timedelta(days=7)]
    # and a second parser expands the set the same way: 12 dates less one cancelled, one moved
    parsed = vobject.readOne(body.decode())
    ours = [v for v in parsed.vevent_list if v.summary.value == "Klub seniora"]
    rule = next(v for v in ours if hasattr(v, "rrule")).getrruleset()
    starts = [d.astimezone(UTC) for d in rule]
    assert len(starts) == 11 and FIRST + timedelta(days=7) not in starts
    assert any(hasattr(v, "recurrence_id") for v in ours)
    # the whole series confirmed as it is: its own moved date is not in its way
    await api.ask(ALICE, "/my")
    moved, series_item = await api.replies(ALICE, 2)
    which = await api.click(ALICE, series_item, series_item.button("Zmień"))
    summary = await api.click(ALICE, which, which.button("Całą serię"))
    assert "Zmieniasz całą serię: 11 terminów" in summary.text
    saved = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Zmienione" in saved.text, saved.text
    assert api.errors == []


async def test_a_moved_date_takes_part_in_conflict_checks(bot: BotHarness) -> None:
    series = await _setup(bot)
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == ALICE))).one()
        await calendar.move_occurrence(
            session, bot.ctx, Actor.of(member), series.id, FIRST, EventInput(
                title="Klub seniora (wyjazd)", start=FIRST + timedelta(days=2),
            end=FIRST + timedelta(days=2, hours=2), district="olsztyński", category="meeting",
            audiences=["seniors"]))
    api = bot.api
    await api.ask(BOB, "/event")
    await api.ask(BOB, "Spotkanie seniorów")
    first_level = await api.ask(BOB, "3.12.2026 10:00-11:00")
    sub = await api.click(BOB, first_level, first_level.button("olsztyński"))
    category = await api.answer(BOB, sub, next(d for t, d in sub.buttons if t == "olsztyński"))
    audience = await api.answer(BOB, category, category.button("spotkanie"))
    ticked = await api.click(BOB, audience, audience.button("seniorzy"))
    place = await api.answer(BOB, ticked, ticked.button("Dalej"))
    summary = await skip_optional_steps(api, BOB, place)
    warning = await api.click(BOB, summary, summary.button("Potwierdź"))
    assert "Klub seniora (wyjazd)" in warning.text and "czwartek, 3 grudnia" in warning.text
    assert api.errors == []


async def test_changing_the_whole_series_says_how_many_dates(bot: BotHarness) -> None:
    series = await _setup(bot)
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == ALICE))).one()
        await calendar.cancel_occurrence(session, bot.ctx, Actor.of(member), series.id,
                                         FIRST + timedelta(days=14))
    api = bot.api
    item = await _my_item(bot)
    assert "11 terminów" in item.text
    which = await api.click(ALICE, item, item.button("Zmień"))
    summary = await api.click(ALICE, which, which.button("Całą serię"))
    assert "Zmieniasz całą serię: 11 terminów" in summary.text
    pick = await api.click(ALICE, summary, summary.button("Zmień"))
    await api.answer(ALICE, pick, pick.button("Tytuł"))
    summary = await api.ask(ALICE, "Klub seniora i seniorki")
    assert "Zmieniasz całą serię: 11 terminów" in summary.text
    saved = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Zmienione" in saved.text
    async with bot.ctx.db.read() as session:
        row = await session.get(Event, series.id)
        assert row is not None and row.title == "Klub seniora i seniorki"
        starts = {o.start for o in await list_events(
            session, bot.ctx, start=NOW, end=NOW + timedelta(days=120), organisation_id=row.organisation_id)}
        assert len(starts) == 11 and FIRST + timedelta(days=14) not in starts  # still cancelled
    # cancelling the whole series says so, and takes every date; a Cancel button that names
    # no date (sent before series were told apart) asks the same question
    item = await _my_item(bot)
    which = await api.click(ALICE, item, f"ev:del:{series.id}")
    assert "Odwołać tylko termin" in which.text and "wtorek, 1 grudnia 2026" in which.text
    done = await api.click(ALICE, which, which.button("Całą serię"))
    assert "cała seria" in done.text and "11 terminów" in done.text
    async with bot.ctx.db.read() as session:
        assert (await session.get(Event, series.id)).status == EventStatus.CANCELLED  # type: ignore[union-attr]
    assert "nie ma zaplanowanych" in (await api.ask(ALICE, "/my")).text
    assert api.errors == []


def test_all_day_occurrences_use_dates_in_the_feed_format() -> None:
    from zoneinfo import ZoneInfo

    from infranet.calendar import recurrence
    from infranet.calendar.ics_writer import FeedRow, render_vevent

    tz = ZoneInfo("Europe/Warsaw")
    start = datetime(2026, 11, 30, 23, tzinfo=UTC)  # 1.12 local midnight
    text = recurrence.with_exclusions("FREQ=WEEKLY;COUNT=4", {start + timedelta(days=7)}, set())
    row = FeedRow(id=1, uid="u@x", title="T", description=None, location=None, url=None,
                  registration_url=None, starts_at=start, ends_at=start + timedelta(days=1), all_day=True,
                  rrule=text, category="other", audiences=(), status="scheduled", revision=1,
                  created_at=NOW, updated_at=NOW, district_name="", district_slug="region",
                  org_name=None, org_email=None, org_phone=None, org_website=None)
    event = icalendar.Event.from_ical(render_vevent(row, tz, "Europe/Warsaw", "https://x"))
    assert [d.dt for d in event["EXDATE"].dts] == [date(2026, 12, 8)]


async def test_a_series_checked_as_a_whole_is_not_in_its_own_way(bot: BotHarness) -> None:
    """Changing a whole series leaves its moved dates out of its conflict check, as it does
    the series itself; anyone else's event on that day still counts."""
    from infranet.calendar import conflicts

    series = await _setup(bot)
    actor_data = EventInput(
        title="Klub seniora (przeniesiony)", start=FIRST + timedelta(days=7, hours=1),
        end=FIRST + timedelta(days=7, hours=3), district="olsztyński", category="meeting",
        audiences=["seniors"])
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == ALICE))).one()
        await calendar.move_occurrence(session, bot.ctx, Actor.of(member), series.id, FIRST, actor_data)
    whole = EventInput(
        title="Klub seniora", start=FIRST, end=FIRST + timedelta(hours=2), district="olsztyński",
        category="meeting", audiences=["seniors"], rrule="FREQ=WEEKLY;COUNT=12")
    async with bot.ctx.db.read() as session:
        report = await conflicts.find_conflicts(session, bot.ctx, whole, exclude_event_id=series.id)
        assert report.conflicts == [] and report.duplicates == []
        other = await conflicts.find_conflicts(session, bot.ctx, EventInput(
            title="Inne spotkanie", start=FIRST + timedelta(days=7, hours=2),
            end=FIRST + timedelta(days=7, hours=3), district="olsztyński", category="meeting",
            audiences=["seniors"]))
        assert [c.event.title for c in other.conflicts] == ["Klub seniora (przeniesiony)"], other
