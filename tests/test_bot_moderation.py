"""Moderation through the bot: waiting events and notices reach the admins with
Publish / Reject; the poster is told; repeated or forged decisions change nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from infranet.bot.runtime import BotRuntime
from infranet.calendar import events as calendar
from infranet.calendar import trainings as notices
from infranet.calendar.event_input import EventInput
from infranet.calendar.training_input import TrainingInput
from infranet.network.members import get_member
from infranet.storage.actors import Actor
from infranet.storage.models import Event, Moderation, Training
from tests.bot_fixtures import ADMIN_ID, BotHarness, telegram_settings
from tests.conftest import make_context

POSTER, OTHER = 6101, 6102
TITLE = "Warsztaty 5 < 6 & więcej"


async def _pending_event(bot: BotHarness, title: str) -> Event:
    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, POSTER)
        assert member is not None
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)
        return await calendar.add_event(session, bot.ctx, Actor.of(member), EventInput(
            title=title, start=start, end=start + timedelta(hours=2), district="olsztyński",
            location="Sala A & B <3"))


async def test_event_waits_admin_publishes_poster_told(bot: BotHarness) -> None:
    bot.ctx.settings.calendar.moderation = "all"
    await bot.member(POSTER, "Fundacja Plakat", language="en")
    await bot.member(OTHER, "Fundacja Inna")
    event = await _pending_event(bot, TITLE)
    assert event.moderation == Moderation.PENDING
    waiting = await bot.api.next_reply(ADMIN_ID)
    assert "Do zatwierdzenia" in waiting.text
    assert TITLE in waiting.text and "Sala A & B <3" in waiting.text
    # A plain member forging the admin's button changes nothing.
    own = await bot.api.ask(OTHER, "/start")
    refused = await bot.api.click(OTHER, own, waiting.button("Opublikuj"))
    assert "tylko administratorzy" in refused.text
    done = await bot.api.click(ADMIN_ID, waiting, waiting.button("Opublikuj"))
    assert done.kind == "edit" and "Opublikowano" in done.text
    told = await bot.api.next_reply(POSTER)
    assert "was approved" in told.text  # in the poster's language
    bot.api.press(ADMIN_ID, waiting, waiting.button("Odrzuć"))
    assert "już rozpatrzone" in await bot.api.next_answer()
    async with bot.ctx.db.transaction() as session:
        row = await session.get(Event, event.id)
        assert row is not None and row.moderation == Moderation.PUBLISHED
    assert "Nic nie czeka" in (await bot.api.ask(ADMIN_ID, "/pending")).text
    await bot.api.silence(ADMIN_ID, ANNOUNCE_WAIT)  # announced once, not on every run


ANNOUNCE_WAIT = 3.5


async def test_training_notice_rejected_with_its_sessions(bot: BotHarness) -> None:
    bot.ctx.settings.calendar.moderation = "all"
    await bot.member(POSTER, "Fundacja Plakat")
    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, POSTER)
        assert member is not None
        first = date.today() + timedelta(days=30)
        view = await notices.add_training(session, bot.ctx, Actor.of(member), TrainingInput(
            title="Cykl szkoleń z księgowości", deadline=first - timedelta(days=5),
            sessions=[(first, first), (first + timedelta(days=7), first + timedelta(days=7))],
            target_group="NGO", how_to_apply="https://example.org/zapisy", district="ełcki"))
    waiting = await bot.api.next_reply(ADMIN_ID)
    assert "nabór" in waiting.text and "zajęć: 2" in waiting.text
    listed = await bot.api.ask(ADMIN_ID, "/pending")
    assert "Cykl szkoleń" in listed.text
    done = await bot.api.click(ADMIN_ID, waiting, waiting.button("Odrzuć"))
    assert "Odrzucono" in done.text
    assert "nie zatwierdził" in (await bot.api.next_reply(POSTER)).text
    async with bot.ctx.db.transaction() as session:
        training = await session.get(Training, view.training.id)
        assert training is not None and training.moderation == Moderation.REJECTED
        states = (await session.scalars(select(Event.moderation).where(
            Event.training_id == training.id))).all()
        assert set(states) == {Moderation.REJECTED}


async def test_stranger_cannot_see_pending(bot: BotHarness) -> None:
    assert "/join" in (await bot.api.ask(6999, "/pending")).text
    forged = await bot.api.ask(6999, "/start")
    refused = await bot.api.click(6999, forged, "mod:ev:1:ok")
    assert "/join" in refused.text


async def test_two_instances_announce_each_item_once(bot: BotHarness, tmp_path: Path) -> None:
    """Two service instances on one database (the second takes updates by webhook) both poll
    for waiting items; the admins hear of each item once, not once per instance."""
    bot.ctx.settings.calendar.moderation = "all"
    await bot.member(POSTER, "Fundacja Plakat")
    second = await make_context(bot.ctx.db.url, tmp_path / "second", calendar={"moderation": "all"},
                                telegram={**telegram_settings(bot.api), "mode": "webhook"})
    other = BotHarness(second, bot.api, BotRuntime(second))  # its own scheduler, as a service
    await other.runtime.start()
    try:
        await asyncio.sleep(ANNOUNCE_WAIT)  # both have polled once and share a position
        first = await _pending_event(bot, "Forum pierwsze")
        second_event = await _pending_event(bot, "Forum drugie")
        announced = await bot.api.replies(ADMIN_ID, 2)
        assert sorted(m.text.split("\n")[1] for m in announced) == ["Forum drugie", "Forum pierwsze"]
        assert {f"#{first.id}", f"#{second_event.id}"} <= {w for m in announced for w in m.text.split()}
        await bot.api.silence(ADMIN_ID, ANNOUNCE_WAIT)  # and no second copy from the other instance
    finally:
        await other.stop()
        await second.db.dispose()
