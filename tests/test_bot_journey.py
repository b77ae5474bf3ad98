"""The whole journey of a new member, through the bot only: join → approval → first event →
conflict warning → suggested date → moderation of a new member's first event → the
event is in /calendar.ics."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
from sqlalchemy import select

from infranet.calendar import events as calendar
from infranet.calendar import service as calendar_service
from infranet.calendar.event_input import EventInput
from infranet.http import create_app
from infranet.network.members import get_member
from infranet.storage.actors import Actor
from infranet.storage.models import Event
from tests.bot_fixtures import ADMIN_ID, BotHarness, skip_optional_steps

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NEWBIE, BOB = 4401, 4402


def exact(message: object, label: str) -> str:
    return next(data for text, data in message.buttons if text == label)  # type: ignore[attr-defined]


async def test_new_member_journey_to_the_feed(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await bot.org("Stowarzyszenie Beta", contact_email="beta@example.org")
    await bot.org("Fundacja Nowa Fala", type="COP", contact_email="fala@example.org")
    await bot.member(BOB, "Stowarzyszenie Beta", name="Bob")
    async with bot.ctx.db.transaction() as session:
        bob = await get_member(session, BOB)
        assert bob is not None
        await calendar.add_event(session, bot.ctx, Actor.of(bob), EventInput(
            title="Forum NGO", start=datetime(2026, 12, 5, 9, tzinfo=UTC),
            end=datetime(2026, 12, 5, 12, tzinfo=UTC), district="olsztyński", category="meeting",
            audiences=["ngo"]))
    bot.ctx.settings.calendar.moderation = "new_members"  # Bob's forum was published before
    api = bot.api
    api.drain(ADMIN_ID)

    # A stranger cannot post; they join and an admin approves.
    assert "/join" in (await api.ask(NEWBIE, "/event")).text
    await api.ask(NEWBIE, "/join")
    pick = await api.ask(NEWBIE, "nowa fala")
    await api.click(NEWBIE, pick, pick.button("Nowa Fala"))
    request = await api.next_reply(ADMIN_ID)
    await api.click(ADMIN_ID, request, request.button("Zatwierdź"))
    assert "zatwierdzona" in (await api.next_reply(NEWBIE)).text

    # The first event: a clash with Bob's forum, a suggested date taken instead.
    await api.ask(NEWBIE, "/event")
    await api.ask(NEWBIE, "Warsztaty dla NGO")
    await api.ask(NEWBIE, "5 grudnia")
    reply = await api.ask(NEWBIE, "10:00-14:00")
    reply = await api.click(NEWBIE, reply, reply.button("olsztyński"))
    category = await api.answer(NEWBIE, reply, exact(reply, "olsztyński"))
    audience = await api.answer(NEWBIE, category, category.button("szkolenie"))
    ticked = await api.click(NEWBIE, audience, audience.button("organizacje"))
    place = await api.answer(NEWBIE, ticked, ticked.button("Dalej"))
    summary = await skip_optional_steps(api, NEWBIE, place)
    warning = await api.click(NEWBIE, summary, summary.button("Potwierdź"))
    assert "Forum NGO" in warning.text and "Stowarzyszenie Beta" in warning.text
    # the first suggested date
    waiting, saved = await api.step(NEWBIE, warning, warning.buttons[1][1])
    assert "Zapisane" in saved.text
    assert "czeka na zatwierdzenie" in waiting.text

    # The admins get it with Publish / Reject; the poster is told; the feed has it.
    waiting = await api.next_reply(ADMIN_ID)
    assert "Warsztaty dla NGO" in waiting.text and "Fundacja Nowa Fala" in waiting.text
    app = create_app(bot.ctx, [calendar_service.build(bot.ctx)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert "Warsztaty dla NGO" not in (await client.get("/calendar.ics")).text
        await api.click(ADMIN_ID, waiting, waiting.button("Opublikuj"))
        assert "zatwierdzone" in (await api.next_reply(NEWBIE)).text
        feed = (await client.get("/calendar.ics")).text.replace("\r\n ", "")
    assert "SUMMARY:Warsztaty dla NGO" in feed
    async with bot.ctx.db.transaction() as session:
        ours = await session.scalar(select(Event).where(Event.title == "Warsztaty dla NGO"))
        assert ours is not None
        local = ours.starts_at.astimezone(bot.ctx.tz)
    assert local.date() != date(2026, 12, 5)  # the suggested date, not the clashing one
    assert f"DTSTART;TZID=Europe/Warsaw:{local:%Y%m%dT%H%M%S}" in feed
    assert api.errors == []
