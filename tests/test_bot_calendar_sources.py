"""/calendar_source through the Bot API emulator: a member follows their organisation's
calendar (served on 127.0.0.1), checks it now, lists and removes it; buttons act on exactly
the source they show and say so when outdated; a source that keeps failing is told to the
organisation's members once. Both engines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from infranet.calendar.source_refresh import refresh_due
from infranet.storage.models import CalendarSource, Event
from tests.bot_fixtures import BotHarness
from tests.calendar_server import CalendarServer, calendar_server
from tests.test_calendar_sources import FIRST

USER, OTHER, COLLEAGUE = 1001, 1002, 1003


@pytest.fixture
async def server() -> AsyncIterator[CalendarServer]:
    async with calendar_server() as running:
        yield running


@pytest.fixture(autouse=True)
def _private_allowed(bot: BotHarness) -> None:
    bot.ctx.settings.sources.allow_private = True
    bot.ctx.settings.sources.timeout_seconds = 2


async def test_follow_check_list_and_remove(bot: BotHarness, server: CalendarServer) -> None:
    await bot.member(USER, "COP Olsztyn")
    server.ics("cop.ics", FIRST)
    url = server.url("cop.ics")

    empty = await bot.api.ask(USER, "/calendar_source")
    assert "nie obserwuje jeszcze żadnego kalendarza" in empty.text
    assert "/calendar_source ADRES [powiat]" in (await bot.api.next_reply(USER)).text

    added = await bot.api.ask(USER, f"/calendar_source {url} olsztyński")
    assert f"Obserwujemy kalendarz „127.0.0.1” ({url})" in added.text
    bot.api.press(USER, added, added.button("Sprawdź"))
    assert "Pobieram kalendarz #1" in await bot.api.next_answer()
    result = await bot.api.next_reply(USER)
    assert "#1 „127.0.0.1”: zaimportowany (nowe: 3, zmienione: 0" in result.text
    async with bot.ctx.db.read() as session:
        events = (await session.scalars(select(Event))).all()
    assert len(events) == 3 and {e.district.slug for e in events} == {"olsztynski"}

    twice = await bot.api.ask(USER, f"/calendar_source {url.replace('http://', 'HTTP://')}#x")
    assert "jest już obserwowany (#1)" in twice.text

    listing = await bot.api.ask(USER, "/calendar_source")
    assert "#1 127.0.0.1" in listing.text and "✅ pobrany" in listing.text
    assert "Kolejny kalendarz: /calendar_source ADRES" in listing.text
    earlier = await bot.api.ask(USER, "/calendar_source")
    older = await bot.api.ask(USER, "/calendar_source")
    confirm = await bot.api.click(USER, listing, listing.button("Usuń #1"))
    assert "Przestać obserwować kalendarz #1" in confirm.text
    done = await bot.api.click(USER, confirm, confirm.button("Tak"))
    assert "Sieć już nie obserwuje kalendarza #1" in done.text

    # An earlier list's buttons are outdated now, and stay so once the URL is followed again
    # (the same source comes back, with a new version).
    stale = await bot.api.click(USER, earlier, earlier.button("Sprawdź #1"))
    assert "Ten przycisk jest nieaktualny" in stale.text
    await bot.api.ask(USER, f"/calendar_source {url}")
    old_remove = await bot.api.click(USER, older, older.button("Usuń #1"))
    assert "nieaktualny" in old_remove.text
    async with bot.ctx.db.read() as session:
        assert (await session.scalar(select(CalendarSource.status))) == "active"


async def test_other_organisations_cannot_touch_a_source(bot: BotHarness, server: CalendarServer) -> None:
    await bot.member(USER, "COP Olsztyn")
    await bot.member(OTHER, "OWES Elbląg")
    server.ics("cop.ics", FIRST)
    await bot.api.ask(USER, f"/calendar_source {server.url('cop.ics')}")
    listing = await bot.api.ask(USER, "/calendar_source")
    # A forged press by someone of another organisation, with the right stamp.
    forged = await bot.api.click(OTHER, listing, listing.button("Usuń #1"))
    assert "dane organizacji mogą zmieniać tylko jej członkowie" in forged.text
    theirs = await bot.api.ask(OTHER, "/calendar_source")
    assert "nie obserwuje jeszcze żadnego" in theirs.text
    assert "/calendar_source ADRES [powiat]" in (await bot.api.next_reply(OTHER)).text
    bot.ctx.settings.sources.allow_private = False
    refused = await bot.api.ask(OTHER, "/calendar_source http://10.0.0.1/x.ics")
    assert "10.0.0.1 wskazuje na 10.0.0.1, adres wewnętrzny" in refused.text


async def test_the_members_hear_once_of_a_failing_source(bot: BotHarness, server: CalendarServer) -> None:
    await bot.member(USER, "COP Olsztyn")
    await bot.member(COLLEAGUE, "COP Olsztyn", language="en")
    server.status("cop.ics", 500)
    await bot.api.ask(USER, f"/calendar_source {server.url('cop.ics')}")
    bot.api.drain(USER)
    clock = bot.ctx.clock
    try:
        for _ in range(4):
            async with bot.ctx.db.read() as session:
                due = await session.scalar(select(CalendarSource.next_fetch_at))
            assert due is not None
            bot.ctx.clock = lambda due=due: due
            [outcome] = await refresh_due(bot.ctx)
            assert outcome.state == "failed"
    finally:
        bot.ctx.clock = clock
    told = await bot.api.next_reply(USER)
    assert "nie udało się pobrać 3 razy z rzędu: 127.0.0.1 odpowiedział błędem HTTP 500" in told.text
    english = await bot.api.next_reply(COLLEAGUE)
    assert "failed 3 times in a row: 127.0.0.1 answered with HTTP error 500" in english.text
    await bot.api.silence(USER)
