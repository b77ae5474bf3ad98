"""The words people use, end to end through the bot: titles in any script, districts as
people name them, /check with hours, and the autumn hour that happens twice."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from infranet.calendar import conflicts as conflict_api
from infranet.calendar import events as calendar
from infranet.calendar.event_input import EventInput
from infranet.context import AppContext
from infranet.network.orgs import OrgInput, add_organisation
from infranet.storage.actors import Actor
from infranet.storage.models import Event, Member
from tests.bot_fixtures import BotHarness, skip_optional_steps
from tests.botapi import Sent

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw
ALICE, BOB, USER_NEW = 1001, 2002, 7201


async def _setup(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja Alfa", contact_email="alfa@example.org")
    await bot.org("Stowarzyszenie Beta", contact_email="beta@example.org")
    await bot.member(ALICE, "Fundacja Alfa", name="Alice")
    await bot.member(BOB, "Stowarzyszenie Beta", name="Bob")


async def _add(bot: BotHarness, telegram_id: int, title: str, start: datetime, end: datetime,
               district: str = "olsztyński") -> Event:
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == telegram_id))).one()
        return await calendar.add_event(session, bot.ctx, Actor.of(member), EventInput(
            title=title, start=start, end=end, district=district))


async def _to_district_step(bot: BotHarness, title: str = "Spotkanie sieci",
                            when: str = "5.12.2026 10-14") -> Sent:
    api = bot.api
    await api.ask(ALICE, "/event")
    await api.ask(ALICE, title)
    reply = await api.ask(ALICE, when)
    assert "Gdzie" in reply.text, reply.text
    return reply


# --- titles in every script -------------------------------------------------------------------


async def test_titles_in_other_scripts_are_compared_by_their_letters(ctx: AppContext) -> None:
    """Two different Ukrainian (or Arabic, or emoji-only) titles on the same day and place
    are not "possible duplicates" of each other; the same Ukrainian title is."""
    ctx.clock = lambda: NOW
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, Actor.cli(), OrgInput(name="Fundacja Alfa"))
        other = await add_organisation(session, ctx, Actor.cli(), OrgInput(name="Fundacja Gamma"))
        start, end = datetime(2026, 12, 5, 9, tzinfo=UTC), datetime(2026, 12, 5, 10, tzinfo=UTC)
        for title in ("Тренінг для громад", "ورشة عمل للمنظمات", "🎉🎉🎉"):
            await calendar.add_event(session, ctx, Actor.cli(), EventInput(
                title=title, start=start, end=end, district="olsztyński", organisation_id=org.id))

    async def duplicates(title: str) -> list[str]:
        candidate = EventInput(
            title=title, start=datetime(2026, 12, 5, 15, tzinfo=UTC),
            end=datetime(2026, 12, 5, 16, tzinfo=UTC), district="olsztyński", organisation_id=other.id)
        async with ctx.db.read() as session:
            report = await conflict_api.find_conflicts(session, ctx, candidate)
        return sorted(c.event.title for c in report.duplicates)

    assert await duplicates("Семінар для молоді") == []
    assert await duplicates("اجتماع الشبكة") == []
    assert await duplicates("📅📅") == []  # an empty fold never matches
    assert await duplicates("Тренінг для ГРОМАД!") == ["Тренінг для громад"]
    assert await duplicates("ورشة عمل للمنظمات") == ["ورشة عمل للمنظمات"]


async def test_a_title_of_invisible_characters_is_refused_and_a_title_is_one_line(
        bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    assert "Jak się nazywa" in (await api.ask(ALICE, "/event")).text
    refused = await api.ask(ALICE, "\u200b\u2060\u200b")  # zero-width spaces and a word joiner
    assert "wymagane" in refused.text
    refused = await api.ask(ALICE, "\u3164 \u2800")  # a Hangul filler and a blank Braille cell
    assert "wymagane" in refused.text
    assert "Kiedy" in (await api.ask(ALICE, "Warsztaty\ndla NGO")).text
    reply = await api.ask(ALICE, "5.12.2026 10-14")
    category = await api.answer(ALICE, reply, reply.button("Całe województwo"))
    audience = await api.answer(ALICE, category, category.button("spotkanie"))
    place = await api.answer(ALICE, audience, audience.button("Dalej"))
    summary = await skip_optional_steps(api, ALICE, place)
    assert "Warsztaty dla NGO\n" in summary.text  # one line


# --- districts ---------------------------------------------------------------------------------


async def test_districts_as_people_write_them(bot: BotHarness) -> None:
    """"powiat elbląski" and "pow. ełcki" are understood at the district step."""
    await _setup(bot)
    for typed, shown in (("powiat elbląski", "elbląski"), ("pow. ełcki", "ełcki"),
                         ("m. Olsztyn", "m. Olsztyn")):
        await _to_district_step(bot)
        category = await bot.api.ask(ALICE, typed)
        assert "Rodzaj wydarzenia" in category.text, category.text
        audience = await bot.api.answer(ALICE, category, category.button("spotkanie"))
        place = await bot.api.answer(ALICE, audience, audience.button("Dalej"))
        summary = await skip_optional_steps(bot.api, ALICE, place)
        assert f"Powiat: {shown}\n" in summary.text
        await bot.api.click(ALICE, summary, summary.button("Anuluj"))
    assert bot.api.errors == []


async def test_olsztyn_asks_city_or_powiat_with_two_buttons(bot: BotHarness) -> None:
    await _setup(bot)
    await _to_district_step(bot)
    question = await bot.api.ask(ALICE, "Olsztyn")
    # The two meanings (a form's own back/cancel buttons may follow).
    labels = [label for label, data in question.buttons if ":d:" in data]
    assert len(labels) == 2 and "miasto" in labels[0] and "m. Olsztyn" in labels[0]
    assert labels[1] == "powiat olsztyński"
    category = await bot.api.answer(ALICE, question, question.button("powiat olsztyński"))
    assert "Rodzaj wydarzenia" in category.text
    audience = await bot.api.answer(ALICE, category, category.button("spotkanie"))
    place = await bot.api.answer(ALICE, audience, audience.button("Dalej"))
    summary = await skip_optional_steps(bot.api, ALICE, place)
    assert "Powiat: olsztyński" in summary.text


async def test_a_place_outside_the_region_offers_the_subregions(bot: BotHarness) -> None:
    await _setup(bot)
    await _to_district_step(bot)
    answer = await bot.api.ask(ALICE, "Kraków")
    assert "poza regionem" in answer.text and "Kraków" in answer.text
    labels = [label for label, data in answer.buttons if ":sr:" in data]
    assert [s.name for s in bot.ctx.region.subregions] == labels
    powiaty = await bot.api.click(ALICE, answer, answer.button(bot.ctx.region.subregions[2].name))
    assert powiaty.kind == "edit"
    category = await bot.api.answer(ALICE, powiaty, powiaty.button(
        bot.ctx.region.subregions[2].children[0].name))
    assert "Rodzaj wydarzenia" in category.text


async def test_a_typo_is_answered_with_buttons_not_text(bot: BotHarness) -> None:
    await _setup(bot)
    await _to_district_step(bot)
    answer = await bot.api.ask(ALICE, "ostrodski")
    assert "Czy chodzi o" in answer.text and "ostródzki" not in answer.text
    assert answer.buttons[0][0] == "powiat ostródzki"
    category = await bot.api.answer(ALICE, answer, answer.buttons[0][1])
    assert "Rodzaj wydarzenia" in category.text


async def test_check_asks_which_district_with_buttons(bot: BotHarness) -> None:
    await _setup(bot)
    await _add(bot, BOB, "Forum", datetime(2026, 12, 5, 9, tzinfo=UTC), datetime(2026, 12, 5, 12, tzinfo=UTC),
               district="olsztyński")
    question = await bot.api.ask(ALICE, "/check 5.12 Olsztyn")
    assert len(question.buttons) == 2
    answer = await bot.api.click(ALICE, question, question.button("powiat olsztyński"))
    assert answer.kind == "edit" and "Forum" in answer.text and "olsztyński" in answer.text
    question = await bot.api.ask(ALICE, "/check 5.12 Olsztyn")
    answer = await bot.api.click(ALICE, question, question.button("miasto"))
    assert "wolne" in answer.text and "m. Olsztyn" in answer.text
    outside = await bot.api.ask(ALICE, "/events Kraków")
    assert "poza regionem" in outside.text and len(outside.buttons) == 4


# --- /check with hours ---------------------------------------------------------------------------


async def test_check_accepts_hours(bot: BotHarness) -> None:
    await _setup(bot)
    # 10:00-13:00 in Warsaw on Saturday 5 December 2026, in powiat olsztyński.
    await _add(bot, BOB, "Forum", datetime(2026, 12, 5, 9, tzinfo=UTC), datetime(2026, 12, 5, 12, tzinfo=UTC))
    busy = await bot.api.ask(ALICE, "/check 5.12 10-14 olsztyński")
    assert "Forum" in busy.text and "10:00–14:00" in busy.text
    free = await bot.api.ask(ALICE, "/check 5.12 13:00-14:30 olsztyński")
    assert "wolne" in free.text and "13:00–14:30" in free.text
    assert "wolne" in (await bot.api.ask(ALICE, "/check 5.12 10:00-14:30 ełcki")).text
    assert "Forum" in (await bot.api.ask(ALICE, "/check 5.12 olsztyński")).text
    # A range of days with hours: those hours on each day.
    days = await bot.api.ask(ALICE, "/check 4-6.12 10-14 olsztyński")
    assert "Forum" in days.text and "(1)" in days.text
    assert "wolne" in (await bot.api.ask(ALICE, "/check 4-6.12 14-18 olsztyński")).text
    assert bot.api.errors == []


# --- the autumn hour that happens twice ---------------------------------------------------------


async def test_the_repeated_autumn_hour_is_the_first_with_a_note(bot: BotHarness) -> None:
    await _setup(bot)
    await bot.api.ask(ALICE, "/event")
    await bot.api.ask(ALICE, "Nocny maraton")
    bot.api.send_text(ALICE, "31.10.2027 02:30-03:30")
    note = await bot.api.next_reply(ALICE)
    assert "dwa razy" in note.text and "pierwszą" in note.text and "2 h 00 min" in note.text
    reply = await bot.api.next_reply(ALICE)
    assert "Gdzie" in reply.text
    category = await bot.api.answer(ALICE, reply, reply.button("Całe województwo"))
    audience = await bot.api.answer(ALICE, category, category.button("spotkanie"))
    place = await bot.api.answer(ALICE, audience, audience.button("Dalej"))
    summary = await skip_optional_steps(bot.api, ALICE, place)
    assert "dwa razy" in summary.text  # the summary says it too
    saved = await bot.api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Zapisane" in saved.text
    async with bot.ctx.db.read() as session:
        row = (await session.scalars(select(Event).where(Event.title == "Nocny maraton"))).one()
    # The first 02:30 (summer time, UTC+2) to 03:30 winter time (UTC+1): one stretch of 2 hours.
    assert (row.starts_at, row.ends_at) == (datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
                                            datetime(2027, 10, 31, 2, 30, tzinfo=UTC))


async def test_trainings_listing_asks_which_district_with_buttons(bot: BotHarness) -> None:
    await _setup(bot)
    question = await bot.api.ask(ALICE, "/trainings Olsztyn")
    assert "Które z nich" in question.text and len(question.buttons) == 2
    listing = await bot.api.click(ALICE, question, question.button("powiat olsztyński"))
    assert listing.kind == "edit" and listing.text == "Brak otwartych naborów — olsztyński."
    assert bot.api.errors == []


async def test_a_list_of_districts_says_which_name_is_ambiguous(bot: BotHarness) -> None:
    """Where districts are typed as a list (a new organisation's area), "Olsztyn" is
    answered with both meanings and how to write each, not "I don't know it"."""
    api = bot.api
    await api.ask(USER_NEW, "/join")
    offer = await api.ask(USER_NEW, "Fundacja Zupełnie Nowa")
    ask_name = await api.click(USER_NEW, offer, offer.button("Zgłoś nową"))
    assert "nazwę" in ask_name.text
    kinds = await api.ask(USER_NEW, "Fundacja Zupełnie Nowa")
    ask_area = await api.click(USER_NEW, kinds, kinds.button("OWES"))
    assert "m. Elbląg" in ask_area.text  # the example is not itself ambiguous
    answer = await api.ask(USER_NEW, "Olsztyn, ełcki")
    assert "więcej niż jeden powiat" in answer.text and "m. Olsztyn / olsztyński" in answer.text
    assert "Nie znam" not in answer.text
    assert "e-mail" in (await api.ask(USER_NEW, "m. Olsztyn, ełcki")).text
