"""Forms a member can find their way through: « Wstecz and Anuluj on every step, a
second form asks before the first is abandoned, and the rate limit never keeps anyone
in a form (`/cancel` always gets through)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from infranet.context import AppContext
from infranet.storage.models import Event
from tests.bot_fixtures import BotHarness, skip_optional_steps, start_bot
from tests.botapi import BotApi

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
USER = 8101


async def start_event(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await bot.member(USER, "Fundacja Testowa")


async def test_back_returns_to_the_previous_question_with_its_answer_undone(bot: BotHarness) -> None:
    await start_event(bot)
    api = bot.api
    title = await api.ask(USER, "/event")
    assert "Anuluj" in [label for label, _ in title.buttons]
    date_q = await api.ask(USER, "Spotkanie zle nazwane")
    assert "Kiedy" in date_q.text
    # Back from the date: the title question again, and the title can be given anew.
    again = await api.click(USER, date_q, date_q.button("Wstecz"))
    assert "Jak się nazywa" in again.text
    assert "Kiedy" in (await api.ask(USER, "Spotkanie sieci")).text
    hours = await api.ask(USER, "5 grudnia")
    district = await api.ask(USER, "10:00-14:00")
    category = await api.answer(USER, district, district.button("Całe województwo"))
    audience = await api.answer(USER, category, category.button("szkolenie"))
    ticked = await api.click(USER, audience, audience.button("organizacje"))
    place = await api.answer(USER, ticked, ticked.button("Dalej"))
    # Back from the place: the audience question with the choice still ticked.
    back = await api.click(USER, place, place.button("Wstecz"))
    assert any(label.startswith("✓") and "organizacje" in label for label, _ in back.buttons)
    # The place question's old « Wstecz is outdated now: it says so and changes nothing.
    api.press(USER, place, place.button("Wstecz"))
    assert "nieaktualny" in await api.next_answer()
    place = await api.answer(USER, back, back.button("Dalej"))
    summary = await skip_optional_steps(api, USER, place)
    assert "Spotkanie sieci" in summary.text and "zle nazwane" not in summary.text
    assert "organizacje" in summary.text
    assert summary.button("Wstecz") and summary.button("Anuluj")
    assert "godzin" in hours.text.lower() or "Godzin" in hours.text


async def test_cancel_button_on_a_typed_step_ends_the_form(bot: BotHarness) -> None:
    await start_event(bot)
    api = bot.api
    await api.ask(USER, "/event")
    date_q = await api.ask(USER, "Spotkanie sieci")
    cancelled = await api.click(USER, date_q, date_q.button("Anuluj"))
    assert "Anulowano" in cancelled.text
    assert "Nie wiem, do czego" in (await api.ask(USER, "5 grudnia")).text


async def test_a_second_form_asks_before_abandoning_the_first(bot: BotHarness) -> None:
    await start_event(bot)
    await bot.org("Fundacja Docelowa")
    api = bot.api
    assert "Do jakiej organizacji" in (await api.ask(USER, "/refer")).text
    ask = await api.ask(USER, "/event")
    assert "niedokończony formularz" in ask.text and "/refer" in ask.text
    # Go back to the first: its question again, and the answers still go to it.
    kept = await api.click(USER, ask, ask.button("Wróć do"))
    assert "Do jakiej organizacji" in kept.text
    assert "Wybierz organizację" in (await api.ask(USER, "Docelowa")).text
    # Now abandon it for /event.
    ask = await api.ask(USER, "/event")
    api.press(USER, ask, ask.button("Porzuć"))
    abandoned, question = await api.replies(USER, 2)
    assert "Porzucono" in abandoned.text and "nic z niego nie zostało zapisane" in abandoned.text
    assert "Jak się nazywa" in question.text
    assert "Kiedy" in (await api.ask(USER, "Spotkanie sieci")).text
    # The old choice button is outdated; the abandoned /refer does not wake up.
    api.press(USER, ask, ask.button("Wróć do"))
    assert "nieaktualny" in await api.next_answer()
    assert "Anulowano" in (await api.ask(USER, "/cancel")).text
    assert "Nie wiem, do czego" in (await api.ask(USER, "Docelowa")).text
    async with bot.ctx.db.read() as session:
        assert (await session.scalars(select(Event))).all() == []


async def test_a_refused_entry_does_not_ask_or_take_the_answers(bot: BotHarness) -> None:
    await start_event(bot)
    await bot.org("Fundacja Docelowa")
    api = bot.api
    assert "Do jakiej organizacji" in (await api.ask(USER, "/refer")).text
    ask = await api.ask(USER, "/join")
    if "niedokończony" in ask.text:  # asked first: going back keeps the /refer
        await api.click(USER, ask, ask.button("Wróć do"))
    else:
        assert "Już jesteś członkiem" in ask.text
    assert "Wybierz organizację" in (await api.ask(USER, "Docelowa")).text


async def test_rate_limit_never_swallows_cancel(ctx: AppContext, botapi: BotApi) -> None:
    bot = await start_bot(ctx, botapi, commands_per_minute=2)
    try:
        await start_event(bot)
        api = bot.api
        assert "Jak się nazywa" in (await api.ask(USER, "/event")).text
        await api.ask(USER, "/help")
        assert "na minutę" in (await api.ask(USER, "/help")).text  # over the limit
        api.send_text(USER, "/events")
        await api.silence(USER, 0.5)  # swallowed, and told once a minute only
        assert "Anulowano" in (await api.ask(USER, "/cancel")).text
        assert "nic do anulowania" in (await api.ask(USER, "/cancel@infranet_test_bot")).text
    finally:
        await bot.stop()
