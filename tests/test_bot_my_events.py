"""/my through the bot, end to end: every event of the organisation is reachable, page by
page, each with its own Edit and Cancel; a page button pressed late shows what is true now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from infranet.calendar import events as calendar
from infranet.calendar.event_input import EventInput
from infranet.storage.actors import Actor
from infranet.storage.models import Event, EventStatus, Member
from tests.bot_fixtures import BotHarness
from tests.botapi import Sent

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw
ALICE, BOB = 1001, 2002


async def _add(bot: BotHarness, telegram_id: int, title: str, start: datetime) -> Event:
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == telegram_id))).one()
        return await calendar.add_event(session, bot.ctx, Actor.of(member), EventInput(
            title=title, start=start, end=start + timedelta(hours=2), district="olsztyński"))


async def _setup(bot: BotHarness, count: int) -> list[Event]:
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja Alfa", contact_email="alfa@example.org")
    await bot.org("Stowarzyszenie Beta")
    await bot.member(ALICE, "Fundacja Alfa", name="Alice")
    await bot.member(BOB, "Stowarzyszenie Beta", name="Bob")
    await _add(bot, BOB, "Nie nasze", datetime(2026, 12, 1, 9, tzinfo=UTC))
    return [await _add(bot, ALICE, f"Spotkanie nr {i}", datetime(2026, 12, 1 + i, 9, tzinfo=UTC))
            for i in range(1, count + 1)]


def _titles(items: list[Sent]) -> list[str]:
    return [m.text.split("\n")[0].removesuffix(" — Fundacja Alfa") for m in items]


async def _page(bot: BotHarness, first: Sent | None = None) -> tuple[list[Sent], Sent | None]:
    """The items of one /my page (after its header, when `first` is None) and its page bar."""
    items: list[Sent] = []
    message = first or await bot.api.next_reply(ALICE)
    while message.text.startswith("Spotkanie"):
        items.append(message)
        try:
            message = await bot.api.next_reply(ALICE, wait=1.5)
        except AssertionError:
            return items, None
    return items, message


async def test_my_pages_through_every_event_each_with_edit_and_cancel(bot: BotHarness) -> None:
    mine = await _setup(bot, 10)
    api = bot.api
    header = await api.ask(ALICE, "/my")
    assert "Fundacja Alfa" in header.text
    items, bar = await _page(bot)
    assert _titles(items) == [f"Spotkanie nr {i}" for i in range(1, 9)]
    assert bar is not None and "Strona 1 z 2" in bar.text and "…i jeszcze" not in bar.text
    assert [label for label, _ in bar.buttons] == ["›"]
    # the next page: the two events that were out of reach, each with its own buttons
    api.press(ALICE, bar, bar.button("›"))
    items2, bar2 = await _page(bot)
    assert [m.text.split("\n")[0] for m in items2] == ["Spotkanie nr 9 — Fundacja Alfa",
                                                       "Spotkanie nr 10 — Fundacja Alfa"]
    assert bar2 is not None and "Strona 2 z 2" in bar2.text
    assert [label for label, _ in bar2.buttons] == ["‹"]
    tenth = items2[1]
    assert [label for label, _ in tenth.buttons] == ["Zmień", "Odwołaj"]
    summary = await api.click(ALICE, tenth, tenth.button("Zmień"))
    assert "Sprawdź wydarzenie" in summary.text and "Spotkanie nr 10" in summary.text
    assert "Anulowano" in (await api.click(ALICE, summary, summary.button("Anuluj"))).text
    confirm = await api.click(ALICE, tenth, tenth.button("Odwołaj"))
    assert "Odwołać „Spotkanie nr 10”" in confirm.text
    assert "Odwołane" in (await api.click(ALICE, confirm, confirm.button("Odwołaj"))).text
    async with bot.ctx.db.read() as session:
        assert (await session.get(Event, mine[9].id)).status == EventStatus.CANCELLED  # type: ignore[union-attr]
    # back to the first page
    api.press(ALICE, bar2, bar2.button("‹"))
    items, bar = await _page(bot)
    assert len(items) == 8 and bar is not None and "Strona 1 z 2" in bar.text
    assert "9 wydarzeń" in bar.text
    # two more cancelled elsewhere: the old "›" shows the page as it is now (one page only)
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == ALICE))).one()
        for row in mine[:2]:
            await calendar.cancel_event(session, bot.ctx, Actor.of(member), row.id)
    api.press(ALICE, bar, bar.button("›"))
    items, late = await _page(bot)
    assert _titles(items) == [f"Spotkanie nr {i}" for i in range(3, 10)]
    assert late is not None and "Strona 1 z 1" in late.text and "7 wydarzeń" in late.text
    assert late.buttons == []
    # a forged page number is answered with the page as it is, never a traceback
    api.press(ALICE, bar, "ev:my:" + "9" * 40)
    items, _ = await _page(bot)
    assert len(items) == 7
    assert api.errors == []
