"""The rules on a date are told at the date step of a form, with dates written as people
write them (5.12.2099), never ISO (2099-12-05). End to end through the Bot API emulator."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from infranet.calendar.event_input import EventInput, validate_event
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from tests.bot_fixtures import BotHarness

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw
ALICE = 1001
ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


async def _setup(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja Alfa", contact_email="alfa@example.org")
    await bot.member(ALICE, "Fundacja Alfa", name="Alice")


async def test_event_date_beyond_two_years_is_refused_at_the_date_step(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    await api.ask(ALICE, "/event")
    assert "Kiedy" in (await api.ask(ALICE, "Forum dalekie")).text
    for answer in ("5.12.2099", "5.12.2099 10-14", "23.11.2028 12:00-13:00"):
        refused = await api.ask(ALICE, answer)
        assert "za daleko" in refused.text and "23.11.2028" in refused.text, refused.text
        assert not ISO.search(refused.text), refused.text
    # the step repeats: a date within the limit goes on
    assert "W jakich godzinach" in (await api.ask(ALICE, "23.11.2028")).text
    refused = await api.ask(ALICE, "12:00-13:00")  # after the limit's hour on its last day
    assert "za daleko" in refused.text and not ISO.search(refused.text)
    assert "Gdzie" in (await api.ask(ALICE, "9:00-9:30")).text
    assert api.errors == []


async def test_training_sessions_beyond_two_years_are_refused_at_their_step(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    await api.ask(ALICE, "/training")
    assert "Terminy spotkań" in (await api.ask(ALICE, "Kurs daleki")).text
    refused = await api.ask(ALICE, "5.12.2026, 5.12.2099 10-14")
    assert "za daleko" in refused.text and "23.11.2028" in refused.text and not ISO.search(refused.text)
    assert "najpóźniej" in (await api.ask(ALICE, "5.12.2026 10-14")).text
    assert api.errors == []


async def test_validation_messages_write_dates_as_people_do(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    cases = [
        EventInput(title="x", start=datetime(2099, 12, 5, 10), end=datetime(2099, 12, 5, 12)),
        EventInput(title="x", start=datetime(2026, 12, 5, 12), end=datetime(2026, 12, 5, 10)),
        EventInput(title="x", start=datetime(2026, 12, 7).date(), end=datetime(2026, 12, 5).date(),
                            all_day=True),
        EventInput(title="x", start=datetime(2026, 12, 5, 10), end=datetime(2026, 12, 5, 12),
                            rrule="FREQ=WEEKLY;UNTIL=20991231"),
    ]
    for data in cases:
        try:
            validate_event(ctx, data)
        except ValidationFailed as exc:
            text = exc.localized("pl")
            assert not ISO.search(text), text
            assert re.search(r"\b\d{1,2}\.\d{1,2}\.\d{4}\b", text), text
        else:
            raise AssertionError(f"{data} was accepted")
