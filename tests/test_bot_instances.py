"""Several instances in webhook mode on one PostgreSQL, without sticky routing: every
update sees its user's form as the last update left it, whichever instance took it.

Each instance is a whole BotRuntime of its own (its own AppContext, Database, Application
and memory), as two processes behind a load balancer would be; the updates of one user
alternate between them. SQLite is one instance per database file by design (see
test_private_files), so these run on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from starlette.applications import Starlette

from infranet.bot import application
from infranet.context import AppContext
from infranet.storage.models import Event
from tests.bot_fixtures import BotHarness, start_bot
from tests.botapi import BotApi, Sent
from tests.conftest import make_context

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
USER = 8301
SECRET = "two-instances_1"


@dataclass
class Instance:
    bot: BotHarness

    async def deliver(self, update: dict[str, object]) -> None:
        app = Starlette(routes=self.bot.runtime.routes)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://instance") as client:
            answer = await client.post("/telegram/webhook", json=update,
                                       headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert answer.status_code == 200, answer.text


@pytest.fixture
async def two(ctx: AppContext, botapi: BotApi, tmp_path: Path) -> AsyncIterator[list[Instance]]:
    if ctx.db.is_sqlite:
        pytest.skip("several instances share a PostgreSQL database (SQLite: one instance per file)")
    other = await make_context(ctx.settings.database.url, tmp_path / "second")
    instances = []
    try:
        for context in (ctx, other):
            context.clock = lambda: NOW
            bot = await start_bot(context, botapi, mode="webhook", webhook_secret=SECRET)
            instances.append(Instance(bot))
        yield instances
    finally:
        for instance in instances:
            await instance.bot.stop()
        await other.db.dispose()


def typed(api: BotApi, text: str) -> dict[str, object]:
    return api.pushed[api.send_text(USER, text)]


def pressed(api: BotApi, message: Sent, data: str) -> dict[str, object]:
    return api.pushed[api.press(USER, message, data)]


async def test_one_form_alternates_between_two_instances(two: list[Instance], botapi: BotApi) -> None:
    a, b = two
    await a.bot.member(USER, "Fundacja Testowa")
    api = botapi

    async def say(instance: Instance, text: str) -> Sent:
        await instance.deliver(typed(api, text))
        return await api.next_reply(USER)

    async def press(instance: Instance, message: Sent, label: str) -> Sent:
        await instance.deliver(pressed(api, message, message.button(label)))
        return await api.next_reply(USER)

    assert "Jak się nazywa" in (await say(a, "/event")).text
    assert "Kiedy" in (await say(b, "Spotkanie dwóch instancji")).text
    hours = await say(a, "5 grudnia")
    district = await say(b, "10:00-14:00")
    assert hours.text != district.text
    category = await press(a, district, "Całe województwo")
    audience = await press(b, category, "szkolenie")
    # Two ticks at once, one on each instance: the version check keeps both.
    await asyncio.gather(a.deliver(pressed(api, audience, audience.button("organizacje"))),
                         b.deliver(pressed(api, audience, audience.button("mieszkańcy"))))
    edits = await api.replies(USER, 2)
    ticked = edits[-1]
    assert sum(label.startswith("✓") for label, _ in ticked.buttons) == 2, ticked.buttons
    place = await press(a, ticked, "Dalej")
    link = await press(b, place, "Pomiń")
    description = await press(a, link, "Pomiń")
    summary = await press(b, description, "Pomiń")
    assert "Spotkanie dwóch instancji" in summary.text
    saved = await press(a, summary, "Potwierdź")
    assert "Zapisane" in saved.text
    async with a.bot.ctx.db.read() as session:
        [event] = (await session.scalars(select(Event).where(
            Event.title == "Spotkanie dwóch instancji"))).all()
    assert len(event.audiences) == 2
    # The form is over on both instances.
    assert "Nie wiem, do czego" in (await say(b, "jeszcze coś")).text
    assert "Nie wiem, do czego" in (await say(a, "i jeszcze")).text


async def test_a_timeout_set_on_one_instance_waits_for_a_step_taken_on_the_other(
        two: list[Instance], botapi: BotApi) -> None:
    for instance in two:
        instance.bot.ctx.settings.telegram.conversation_timeout_s = 2  # below the minimum, for speed
        await instance.bot.restart()
    a, b = two
    await a.bot.member(USER, "Fundacja Testowa")
    await a.deliver(typed(botapi, "/event"))
    assert "Jak się nazywa" in (await botapi.next_reply(USER)).text
    await asyncio.sleep(1.2)
    await b.deliver(typed(botapi, "Spotkanie na czas"))
    asked = asyncio.get_running_loop().time()
    assert "Kiedy" in (await botapi.next_reply(USER)).text
    # a's timeout (2 s after /event) finds the form moved on elsewhere and stays silent;
    # b's (2 s after the title) ends it and says so, once.
    expired = await botapi.next_reply(USER, wait=5)
    assert "wygasła" in expired.text
    assert asyncio.get_running_loop().time() - asked > 1.5
    await botapi.silence(USER, 1.0)
    await a.deliver(typed(botapi, "5 grudnia"))
    assert "Nie wiem, do czego" in (await botapi.next_reply(USER)).text


@contextlib.asynccontextmanager
async def writes_held(ctx: AppContext) -> AsyncIterator[None]:
    """Hold every write to the bot's state (reads go on) while the block runs, so that two
    instances both read the user's state before either writes: the race of two taps."""
    async with ctx.db.transaction() as session:
        await session.execute(text("LOCK TABLE bot_state IN EXCLUSIVE MODE"))
        yield


async def audience_step(instance: Instance, api: BotApi, title: str) -> Sent:
    """A form filled on one instance up to the audience question."""
    await instance.bot.member(USER, "Fundacja Testowa")

    async def say(text_: str) -> Sent:
        await instance.deliver(typed(api, text_))
        return await api.next_reply(USER)

    await say("/event")
    await say(title)
    await say("5 grudnia")
    district = await say("10:00-14:00")
    await instance.deliver(pressed(api, district, district.button("Całe województwo")))
    category = await api.next_reply(USER)
    await instance.deliver(pressed(api, category, category.button("szkolenie")))
    return await api.next_reply(USER)


async def test_two_taps_that_read_the_same_state_are_both_kept(
        two: list[Instance], botapi: BotApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="infranet.bot.application")
    a, b = two
    audience = await audience_step(a, botapi, "Spotkanie dwóch kliknięć")
    async with writes_held(a.bot.ctx):
        await asyncio.gather(a.deliver(pressed(botapi, audience, audience.button("organizacje"))),
                             b.deliver(pressed(botapi, audience, audience.button("mieszkańcy"))))
        await asyncio.sleep(0.5)  # both have read the state; neither could write it
    # The tap whose write found the state moved ran again on the other's: one edit each,
    # nothing shown from the run that was dropped.
    edits = await botapi.replies(USER, 2)
    assert sum(label.startswith("✓") for label, _ in edits[-1].buttons) == 2, edits[-1].buttons
    await botapi.silence(USER, 0.5)
    assert "moved on another instance" in caplog.text  # the race did happen


async def test_a_confirm_pressed_twice_on_two_instances_saves_once(
        two: list[Instance], botapi: BotApi) -> None:
    a, b = two
    audience = await audience_step(a, botapi, "Forum potwierdzone dwa razy")
    await a.deliver(pressed(botapi, audience, audience.button("organizacje")))
    ticked = await botapi.next_reply(USER)
    summary = ticked
    for label in ("Dalej", "Pomiń", "Pomiń", "Pomiń"):
        await b.deliver(pressed(botapi, summary, summary.button(label)))
        summary = await botapi.next_reply(USER)
    assert "Forum potwierdzone dwa razy" in summary.text
    async with writes_held(a.bot.ctx):
        await asyncio.gather(a.deliver(pressed(botapi, summary, summary.button("Potwierdź"))),
                             b.deliver(pressed(botapi, summary, summary.button("Potwierdź"))))
        await asyncio.sleep(0.5)
    saved = await botapi.next_reply(USER)
    assert "Zapisane" in saved.text
    await botapi.silence(USER, 1.0)  # the second press saved nothing and said nothing more
    async with a.bot.ctx.db.read() as session:
        found = (await session.scalars(select(Event).where(
            Event.title == "Forum potwierdzone dwa razy"))).all()
    assert len(found) == 1


async def test_a_tap_whose_form_keeps_moving_elsewhere_is_told_so(
        two: list[Instance], botapi: BotApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(application, "ATTEMPTS", 1)  # no second run: the race is lost for good
    a, b = two
    audience = await audience_step(a, botapi, "Spotkanie bez powtórki")
    async with writes_held(a.bot.ctx):
        await asyncio.gather(a.deliver(pressed(botapi, audience, audience.button("organizacje"))),
                             b.deliver(pressed(botapi, audience, audience.button("mieszkańcy"))))
        await asyncio.sleep(0.5)
    answers = await botapi.replies(USER, 2)
    told = [sent for sent in answers if "w innym miejscu" in sent.text]
    assert len(told) == 1, [sent.text for sent in answers]
    [kept] = [sent for sent in answers if sent not in told]
    assert sum(label.startswith("✓") for label, _ in kept.buttons) == 1
