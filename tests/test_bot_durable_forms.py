"""Forms that survive a crash: each answer is in the database before the next question
is shown, and a save redelivered after a crash (Telegram offers an update again when the
bot did not confirm it) is recognised as the same form, never saved twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from infranet.bot.persistence import write_rows
from infranet.bot.runtime import BotRuntime
from infranet.storage.models import BotState, Event
from tests.bot_fixtures import BotHarness, skip_optional_steps
from tests.botapi import Sent

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
USER = 8201


async def crash(bot: BotHarness) -> None:
    """End the running Application as a killed process would: its tasks stop where they
    are and nothing is written on the way out (no stop(), no shutdown flush, not even
    the bot's HTTP connections closed)."""
    app = bot.runtime.application
    assert app is not None
    bot.runtime.application = None
    tasks = [app._Application__update_fetcher_task,  # type: ignore[attr-defined]
             app._Application__update_persistence_task]  # type: ignore[attr-defined]
    if app.updater is not None:
        tasks.append(app.updater._Updater__polling_task)  # type: ignore[attr-defined]
    for task in tasks:
        if task is not None:
            task.cancel()
    assert app.job_queue is not None
    app.job_queue.scheduler.shutdown(wait=False)
    await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)


async def restart_after_crash(bot: BotHarness) -> None:
    await crash(bot)
    bot.runtime = BotRuntime(bot.ctx)
    bot.schedule()
    await bot.runtime.start()


async def fill_to_audience(bot: BotHarness, title: str) -> Sent:
    bot.ctx.clock = lambda: NOW
    await bot.member(USER, "Fundacja Testowa")
    api = bot.api
    await api.ask(USER, "/event")
    await api.ask(USER, title)
    await api.ask(USER, "5 grudnia")
    district = await api.ask(USER, "10:00-14:00")
    category = await api.answer(USER, district, district.button("Całe województwo"))
    return await api.answer(USER, category, category.button("szkolenie"))


async def fill_to_summary(bot: BotHarness, title: str) -> Sent:
    audience = await fill_to_audience(bot, title)
    place = await bot.api.answer(USER, audience, audience.button("Dalej"))
    return await skip_optional_steps(bot.api, USER, place)


async def events_titled(bot: BotHarness, title: str) -> list[Event]:
    async with bot.ctx.db.read() as session:
        return list((await session.scalars(select(Event).where(Event.title == title))).all())


async def state_rows(bot: BotHarness) -> dict[str, Any]:
    async with bot.ctx.db.read() as session:
        rows = await session.execute(select(BotState.key, BotState.data).where(
            BotState.key.like(f"user:{USER}") | BotState.key.like("conv:%")))
        return {key: data for key, data in rows}


async def lose_state_write(bot: BotHarness, before: dict[str, Any]) -> None:
    """Put the form's state back as it was before the save: the crash came between the save
    and the write of the form's end."""
    now = await state_rows(bot)
    batch: dict[str, Any] = {key: None for key in now if key not in before}
    batch.update(before)
    async with bot.ctx.db.transaction() as session:
        await write_rows(session, bot.ctx.db.is_sqlite, batch)


async def test_a_ticked_choice_survives_a_crash(bot: BotHarness) -> None:
    audience = await fill_to_audience(bot, "Warsztaty trwałe")
    ticked = await bot.api.click(USER, audience, audience.button("organizacje"))
    label = next(text for text, _ in ticked.buttons if text.startswith("✓"))
    await restart_after_crash(bot)  # at once: nothing had time to be written later
    place = await bot.api.answer(USER, ticked, ticked.button("Dalej"))
    assert "Gdzie" in place.text or "miejsce" in place.text.lower()
    summary = await skip_optional_steps(bot.api, USER, place)
    assert label.removeprefix("✓ ") in summary.text
    saved = await bot.api.click(USER, summary, summary.button("Potwierdź"))
    assert "Zapisane" in saved.text
    [event] = await events_titled(bot, "Warsztaty trwałe")
    assert len(event.audiences) == 1


async def test_a_redelivered_confirm_says_already_saved(bot: BotHarness) -> None:
    summary = await fill_to_summary(bot, "Forum raz zapisane")
    confirm = bot.api.press(USER, summary, summary.button("Potwierdź"))
    assert "Zapisane" in (await bot.api.next_reply(USER)).text
    await restart_after_crash(bot)
    bot.api.redeliver(confirm)
    again = await bot.api.next_reply(USER)
    assert "już zapisany" in again.text and "Forum raz zapisane" in again.text
    assert "duplikat" not in again.text.lower()
    assert len(await events_titled(bot, "Forum raz zapisane")) == 1


async def test_a_confirm_whose_end_was_lost_is_not_saved_twice(bot: BotHarness) -> None:
    summary = await fill_to_summary(bot, "Forum utracony stan")
    before = await state_rows(bot)
    confirm = bot.api.press(USER, summary, summary.button("Potwierdź"))
    assert "Zapisane" in (await bot.api.next_reply(USER)).text
    await crash(bot)
    await lose_state_write(bot, before)
    bot.runtime = BotRuntime(bot.ctx)
    bot.schedule()
    await bot.runtime.start()
    bot.api.redeliver(confirm)
    again = await bot.api.next_reply(USER)
    assert "już zapisany" in again.text and "Forum utracony stan" in again.text
    assert len(await events_titled(bot, "Forum utracony stan")) == 1
    # The form is over: its buttons are outdated, and nothing waits for an answer.
    assert "Nie wiem, do czego" in (await bot.api.ask(USER, "Forum utracony stan")).text


async def test_cancel_after_a_save_says_what_was_saved(bot: BotHarness) -> None:
    summary = await fill_to_summary(bot, "Forum nie anulowane")
    before = await state_rows(bot)
    await bot.api.click(USER, summary, summary.button("Potwierdź"))
    await crash(bot)
    await lose_state_write(bot, before)
    bot.runtime = BotRuntime(bot.ctx)
    bot.schedule()
    await bot.runtime.start()
    answer = await bot.api.click(USER, summary, summary.button("Anuluj"))
    assert "Nic nie anulowałem" in answer.text and "Forum nie anulowane" in answer.text
    assert "Nic nie zostało zapisane" not in answer.text
    assert len(await events_titled(bot, "Forum nie anulowane")) == 1
