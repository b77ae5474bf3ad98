"""Events through the bot, end to end: the real Application against the Bot API emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from infranet.calendar import events as calendar
from infranet.calendar import service as calendar_service
from infranet.calendar.event_input import EventInput
from infranet.calendar.event_links import event_url
from infranet.http import create_app
from infranet.storage.actors import Actor
from infranet.storage.models import Event, EventStatus, Member, MemberStatus
from tests.bot_fixtures import BotHarness, skip_optional_steps
from tests.botapi import BotApi, Sent

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw
ALICE, BOB, BOB2, STRANGER = 1001, 2002, 2003, 7007


def page(bot: BotHarness, event: Event) -> str:
    """The event's page on the public site, as the bot links to it."""
    return event_url(bot.ctx.settings.http.public_base_url, event.id, event.title)


def exact(message: object, label: str) -> str:
    """The callback data of the button labelled exactly `label`."""
    return next(data for text, data in message.buttons if text == label)  # type: ignore[attr-defined]


async def _add_event(bot: BotHarness, telegram_id: int, title: str, start: datetime, end: datetime,
                     district: str = "olsztyński", **fields: object) -> Event:
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == telegram_id))).one()
        return await calendar.add_event(session, bot.ctx, Actor.of(member), EventInput(
            title=title, start=start, end=end, district=district, **fields))  # type: ignore[arg-type]


async def _setup(bot: BotHarness) -> Event:
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja Alfa", contact_email="alfa@example.org")
    await bot.org("Stowarzyszenie Beta", contact_email="beta@example.org", phone="+48 89 000 00 00")
    await bot.member(ALICE, "Fundacja Alfa", name="Alice")
    await bot.member(BOB, "Stowarzyszenie Beta", name="Bob")
    await bot.member(BOB2, "Stowarzyszenie Beta", name="Basia", language="en")
    return await _add_event(bot, BOB, "Forum <3 NGO & przyjaciele", datetime(2026, 12, 5, 9, tzinfo=UTC),
                            datetime(2026, 12, 5, 12, tzinfo=UTC), category="meeting",
                            audiences=["ngo"], location="Sala & Co")


async def test_journey_conflict_then_suggested_date_lands_in_the_feed(bot: BotHarness) -> None:
    theirs = await _setup(bot)
    api = bot.api
    assert "Jak się nazywa" in (await api.ask(ALICE, "/event")).text
    # malformed and over-long answers are answered clearly and the step repeats
    # a title of invisible characters only is empty once they are removed
    assert "wymagane" in (await api.ask(ALICE, "\u202e\u2066\x07")).text
    too_long = await api.ask(ALICE, "x" * 300)
    assert "300" in too_long.text and "200" in too_long.text
    assert "Kiedy" in (await api.ask(ALICE, "Warsztaty grantowe & R<D")).text
    assert "30 dni" in (await api.ask(ALICE, "31.11.2026")).text
    assert "minęła" in (await api.ask(ALICE, "1.1.2020")).text
    assert "W jakich godzinach" in (await api.ask(ALICE, "5 grudnia")).text
    assert "musi być po początku" in (await api.ask(ALICE, "14-10")).text
    reply = await api.ask(ALICE, "10:00-14:00")
    assert "Gdzie" in reply.text
    assert "Całe województwo" in reply.buttons[0][0]
    reply = await api.click(ALICE, reply, reply.button("olsztyński"))
    assert reply.buttons[0][0] == "Cały podregion olsztyński"
    reply, edited = await api.step(ALICE, reply, exact(reply, "olsztyński"))
    assert edited.text.startswith("✓ olsztyński\n\nRodzaj wydarzenia?")
    reply = await api.answer(ALICE, reply, reply.button("szkolenie"))
    ticked = await api.click(ALICE, reply, reply.button("organizacje"))
    assert "Miejsce" in (await api.answer(ALICE, ticked, ticked.button("Dalej"))).text
    link_prompt = await api.ask(ALICE, "Sala <3>")
    assert "Link" in link_prompt.text
    assert "https://" in (await api.ask(ALICE, "not a link")).text
    description_prompt, skipped = await api.step(ALICE, link_prompt, link_prompt.button("Pomiń"))
    assert "opis" in description_prompt.text.lower() and skipped.text.startswith("✓ Pomiń\n\n")
    summary = await api.ask(ALICE, "Jak pisać wnioski.")
    assert "Sprawdź wydarzenie" in summary.text
    assert "Warsztaty grantowe & R<D" in summary.text and "Sala <3>" in summary.text
    assert "sobota, 5 grudnia 2026, 10:00–14:00" in summary.text

    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert warning.kind == "edit"
    assert "Forum <3 NGO & przyjaciele" in warning.text and "Stowarzyszenie Beta" in warning.text
    assert "beta@example.org" in warning.text and "Sala & Co" in warning.text
    assert "‼️ Forum" in warning.text and "ten sam powiat" in warning.text  # same powiat and audience
    assert f'<a href="{page(bot, theirs)}">Forum &lt;3 NGO &amp; przyjaciele</a>' in warning.raw
    labels = [label for label, _ in warning.buttons]
    assert labels[0] == "Zostaw mój termin" and labels[-1] == "Anuluj"
    suggestions = labels[1:-1]
    assert suggestions and suggestions[0].startswith("sobota, 12 grudnia 2026, 10:00")

    saved = await api.click(ALICE, warning, warning.buttons[1][1])
    assert saved.kind == "edit" and "Zapisane w kalendarzu" in saved.text
    assert "12 grudnia 2026" in saved.text
    await api.silence(BOB, 0.3)  # a suggested date clashes with nobody: nobody is told
    async with bot.ctx.db.transaction() as session:
        mine = (await session.scalars(select(Event).where(Event.id != theirs.id))).one()
        assert mine.starts_at == datetime(2026, 12, 12, 9, tzinfo=UTC)
        assert mine.location == "Sala <3>" and mine.audiences == ["ngo"] and mine.category == "training"

    app = create_app(bot.ctx, [calendar_service.build(bot.ctx)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        feed = await client.get("/calendar.ics")
    assert feed.status_code == 200
    body = feed.text.replace("\r\n ", "")
    assert "SUMMARY:Warsztaty grantowe & R<D" in body
    assert "DTSTART;TZID=Europe/Warsaw:20261212T100000" in body
    assert api.errors == []


async def test_keeping_a_conflicting_date_tells_the_other_organisers(bot: BotHarness) -> None:
    theirs = await _setup(bot)
    api = bot.api
    await api.ask(ALICE, "/event")
    await api.ask(ALICE, "Spotkanie sieci")
    reply = await api.ask(ALICE, "5.12.2026 10-11")  # date and hours at once
    assert "Gdzie" in reply.text
    category = await api.answer(ALICE, reply, reply.button("Całe województwo"))
    audience = await api.answer(ALICE, category, category.button("spotkanie"))
    place = await api.answer(ALICE, audience, audience.button("Dalej"))
    summary = await skip_optional_steps(api, ALICE, place)
    assert "Całe województwo" not in summary.text  # the region's own name is shown
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Forum <3 NGO" in warning.text
    saved = await api.click(ALICE, warning, warning.button("Zostaw"))
    assert "Zapisane" in saved.text
    told = await api.next_reply(ALICE)
    assert "Stowarzyszenie Beta" in told.text
    to_bob = await api.next_reply(BOB)
    assert "Fundacja Alfa" in to_bob.text and "Spotkanie sieci" in to_bob.text
    assert "Forum <3 NGO & przyjaciele" in to_bob.text and "alfa@example.org" in to_bob.text
    async with bot.ctx.db.read() as session:
        mine = (await session.scalars(select(Event).where(Event.id != theirs.id))).one()
    # both events link to their pages on the site
    assert f'<a href="{page(bot, theirs)}">Forum &lt;3 NGO &amp; przyjaciele</a>' in to_bob.raw
    assert f'<a href="{page(bot, mine)}">Spotkanie sieci</a>' in to_bob.raw
    to_bob2 = await api.next_reply(BOB2)
    assert "Same date" in to_bob2.text and "Saturday, 5 December 2026" in to_bob2.text
    assert api.errors == []


async def test_cancel_edit_and_timeout_free_paths(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    await api.ask(ALICE, "/event")
    assert "Anulowano" in (await api.ask(ALICE, "/cancel")).text
    # stale buttons of a finished form change nothing
    await api.ask(ALICE, "/event")
    await api.ask(ALICE, "Dzień otwarty")
    reply = await api.ask(ALICE, "7.12.2026 cały dzień")
    category = await api.answer(ALICE, reply, reply.button("Całe województwo"))
    audience = await api.answer(ALICE, category, category.button("inne"))
    place = await api.answer(ALICE, audience, audience.button("Dalej"))
    summary = await skip_optional_steps(api, ALICE, place)
    assert "poniedziałek, 7 grudnia 2026" in summary.text
    pick = await api.click(ALICE, summary, summary.button("Zmień"))
    title_prompt, picked = await api.step(ALICE, pick, pick.button("Tytuł"))
    assert "Jak się nazywa" in title_prompt.text and picked.text.startswith("✓ Tytuł\n\n")
    summary = await api.ask(ALICE, "Dzień otwarty NGO")
    assert "Dzień otwarty NGO" in summary.text
    saved = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Zapisane" in saved.text and "7 grudnia 2026" in saved.text
    api.press(ALICE, summary, "ev:ok")
    await api.silence(ALICE, 0.5)
    assert api.answered_callbacks[-1].get("text") == "Ten przycisk jest już nieaktualny."
    async with bot.ctx.db.transaction() as session:
        rows = (await session.scalars(select(Event).where(Event.title == "Dzień otwarty NGO"))).all()
        assert len(rows) == 1 and rows[0].all_day


async def test_check_answers_at_once_also_in_groups(bot: BotHarness) -> None:
    theirs = await _setup(bot)
    api = bot.api
    busy = await api.ask(STRANGER, "/check 5.12.2026")
    assert f'<b><a href="{page(bot, theirs)}">Forum &lt;3 NGO &amp; przyjaciele</a></b>' in busy.raw
    assert "sobota, 5 grudnia 2026" in busy.text and "Forum <3 NGO & przyjaciele" in busy.text
    assert "Stowarzyszenie Beta" in busy.text
    assert "beta@example.org" not in busy.text  # not published: a stranger does not see it
    assert "beta@example.org" in (await api.ask(ALICE, "/check 5.12.2026")).text  # a member does
    free = await api.ask(STRANGER, "/check 6.12.2026 ełcki")
    assert "wolne" in free.text and "ełcki" in free.text
    elsewhere = await api.ask(STRANGER, "/check 5 grudnia ełcki")
    assert "wolne" in elsewhere.text
    group = await api.ask(STRANGER, "/check 5.12.2026 olsztyński", chat_id=-100500, chat_type="group")
    assert "Forum <3 NGO" in group.text
    holiday = await api.ask(STRANGER, "/check 24.12.2026")
    assert "Wigilia" in holiday.text or "wolny" in holiday.text
    unknown = await api.ask(STRANGER, "/check 5.12 Gotham")
    assert "Gotham" in unknown.text and "poza regionem" in unknown.text  # with subregion buttons
    assert "30 dni" in (await api.ask(STRANGER, "/check 31.11.2026")).text
    assert "/check 5.12.2026" in (await api.ask(STRANGER, "/check")).text
    english = await api.ask(STRANGER + 1, "/check Dec 5", language_code="en")
    assert "Saturday, 5 December 2026" in english.text
    assert api.errors == []


async def test_check_on_a_busy_day_lists_fifteen_and_counts_the_rest(bot: BotHarness) -> None:
    await _setup(bot)  # the forum on 5 December, olsztyński
    day = datetime(2026, 12, 5, 7, tzinfo=UTC)
    for i in range(15):  # single events in the order they start, and a weekly series
        await _add_event(bot, ALICE, f"Warsztat {i:02d}", day + timedelta(minutes=20 * i),
                         day + timedelta(minutes=20 * i + 60), district="ełcki" if i % 2 else "region")
    await _add_event(bot, ALICE, "Cykl sobotni", datetime(2026, 11, 28, 6, tzinfo=UTC),
                     datetime(2026, 11, 28, 7, tzinfo=UTC), rrule="FREQ=WEEKLY;COUNT=3")
    busy = await bot.api.ask(STRANGER, "/check 5.12.2026")
    assert "zaplanowane wydarzenia (17)" in busy.text and "…i jeszcze 2." in busy.text
    shown = [line for line in busy.text.splitlines() if line.startswith(("Warsztat", "Cykl", "Forum"))]
    alfa = [f"Warsztat {i:02d} — Fundacja Alfa" for i in range(13)]  # the forum starts with no. 06
    forum = "Forum <3 NGO & przyjaciele — Stowarzyszenie Beta"
    assert shown == ["Cykl sobotni — Fundacja Alfa", *alfa[:6], forum, *alfa[6:]]
    area = await bot.api.ask(STRANGER, "/check 5.12.2026 olsztyński")  # region-wide ones count there too
    assert "zaplanowane wydarzenia (10)" in area.text and "jeszcze" not in area.text
    assert "Forum <3 NGO" in area.text and "Warsztat 01" not in area.text
    assert bot.api.errors == []


async def test_events_listing_paginates_without_empty_edits(bot: BotHarness) -> None:
    await _setup(bot)
    start = datetime(2026, 11, 24, 8, tzinfo=UTC)
    for i in range(18):
        await _add_event(bot, BOB, f"Spotkanie {i:02d} & <3", start + timedelta(hours=3 * i),
                         start + timedelta(hours=3 * i + 1), district="ełcki")
    api = bot.api
    first = await api.ask(STRANGER, "/events ełcki")
    assert "Spotkanie 00 & <3" in first.text and "Strona 1 z 3" in first.text
    assert first.raw.count('<a href="http://127.0.0.1:8080/events/') == 8  # each item links to its page
    assert [label for label, _ in first.buttons] == ["Dalej »"]
    second = await api.click(STRANGER, first, first.button("Dalej"))
    assert second.kind == "edit" and "Strona 2 z 3" in second.text and "Spotkanie 08 & <3" in second.text
    assert [label for label, _ in second.buttons] == ["« Wstecz", "Dalej »"]
    third = await api.click(STRANGER, second, second.button("Dalej"))
    assert "Strona 3 z 3" in third.text and "Spotkanie 17 & <3" in third.text
    assert "Spotkanie 15" not in third.text and [label for label, _ in third.buttons] == ["« Wstecz"]
    second = await api.click(STRANGER, third, third.button("Wstecz"))
    # pressing a button that shows the page already on screen answers, never edits
    api.press(STRANGER, second, first.button("Dalej"))
    await api.silence(STRANGER, 0.5)
    forged = "ev:p:99:week:9999"
    api.press(STRANGER, second, forged)
    await api.silence(STRANGER, 0.5)
    # a page far beyond the last shows the last one; a number no page can have is refused
    # quietly: the press is answered, nothing is edited
    area_key = first.button("Dalej").rsplit(":", 1)[1]
    last = await api.click(STRANGER, second, f"ev:p:99999:week:{area_key}")
    assert "Strona 3 z 3" in last.text and "Spotkanie 17 & <3" in last.text
    await api.silence(STRANGER, 0.3)  # the press of that page is answered too
    answered = len(api.answered_callbacks)
    api.press(STRANGER, last, f"ev:p:{'9' * 40}:week:{area_key}")
    await api.silence(STRANGER, 0.5)
    assert len(api.answered_callbacks) == answered + 1
    month = await api.ask(STRANGER, "/events month")
    assert "najbliższy miesiąc" in month.text and "Strona 1 z 3" in month.text
    group = await api.ask(STRANGER, "/events", chat_id=-100500, chat_type="group")
    assert "Wydarzenia" in group.text
    empty = await api.ask(STRANGER, "/events nidzicki")
    assert "Brak wydarzeń" in empty.text
    assert all(len(text) <= 4096 for text in api.sent_texts())
    assert api.errors == []


async def test_my_events_edit_rechecks_and_cancel(bot: BotHarness) -> None:
    theirs = await _setup(bot)
    mine = await _add_event(bot, ALICE, "Nasze szkolenie", datetime(2026, 12, 8, 9, tzinfo=UTC),
                            datetime(2026, 12, 8, 11, tzinfo=UTC), district="olsztyński")
    api = bot.api
    header = await api.ask(ALICE, "/my")
    assert "Fundacja Alfa" in header.text
    item = await api.next_reply(ALICE)
    assert "Nasze szkolenie" in item.text
    summary = await api.click(ALICE, item, item.button("Zmień"))
    assert "Sprawdź wydarzenie" in summary.text
    pick = await api.click(ALICE, summary, summary.button("Zmień"))
    assert "Kiedy" in (await api.answer(ALICE, pick, pick.button("Termin"))).text
    summary = await api.ask(ALICE, "5.12.2026 10:00-11:00")
    assert "sobota, 5 grudnia 2026, 10:00–11:00" in summary.text
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Forum <3 NGO" in warning.text  # the edit re-ran the conflict check
    cancelled = await api.click(ALICE, warning, warning.button("Anuluj"))
    assert "Anulowano" in cancelled.text
    async with bot.ctx.db.transaction() as session:
        again = await session.get(Event, mine.id)
        assert again is not None and again.starts_at == datetime(2026, 12, 8, 9, tzinfo=UTC)
    # a member of another organisation forging Edit/Cancel payloads changes nothing
    api.press(ALICE, item, f"ev:del:{theirs.id}:y")
    refusal = await api.next_reply(ALICE)
    assert "Brak uprawnień" in refusal.text
    api.press(ALICE, item, f"ev:e:{theirs.id}")
    assert "Brak uprawnień" in (await api.next_reply(ALICE)).text
    api.press(STRANGER, item, f"ev:del:{mine.id}:y")
    assert "/join" in (await api.next_reply(ALICE)).text  # answered where the button was
    # the real Cancel asks first, then cancels
    confirm = await api.click(ALICE, item, item.button("Odwołaj"))
    assert "Odwołać" in confirm.text
    kept = await api.click(ALICE, confirm, confirm.button("Nie odwołuj"))
    assert "Nasze szkolenie" in kept.text
    confirm = await api.click(ALICE, kept, kept.button("Odwołaj"))
    done = await api.click(ALICE, confirm, confirm.button("Odwołaj"))
    assert "Odwołane" in done.text
    async with bot.ctx.db.transaction() as session:
        assert (await session.get(Event, mine.id)).status == EventStatus.CANCELLED  # type: ignore[union-attr]
        assert (await session.get(Event, theirs.id)).status == EventStatus.SCHEDULED  # type: ignore[union-attr]
    assert api.errors == []


async def test_non_members_and_groups(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    assert "/join" in (await api.ask(STRANGER, "/event")).text
    assert "/join" in (await api.ask(STRANGER, "/my")).text
    group = await api.ask(ALICE, "/event", chat_id=-100500, chat_type="group")
    assert "prywatnej" in group.text and group.buttons[0][1].startswith("https://t.me/")


async def test_moderated_event_waits_for_an_admin(bot: BotHarness) -> None:
    await _setup(bot)
    bot.ctx.settings.calendar = bot.ctx.settings.calendar.model_copy(update={"moderation": "all"})
    api = bot.api
    await api.ask(ALICE, "/event")
    await api.ask(ALICE, "Targi NGO")
    reply = await api.ask(ALICE, "10.12.2026 cały dzień")
    category = await api.answer(ALICE, reply, reply.button("Całe województwo"))
    audience = await api.answer(ALICE, category, category.button("targi"))
    place = await api.answer(ALICE, audience, audience.button("Dalej"))
    summary = await skip_optional_steps(api, ALICE, place)
    waiting, saved = await api.step(ALICE, summary, summary.button("Potwierdź"))
    assert "Zapisane" in saved.text
    assert "zatwierdzenie" in waiting.text


async def test_form_survives_a_restart_at_the_conflict_screen(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    await api.ask(ALICE, "/event")
    await api.ask(ALICE, "Walne zebranie")
    first_level = await api.ask(ALICE, "5.12.2026 9:30-10:30")
    reply = await api.click(ALICE, first_level, first_level.button("olsztyński"))
    api.press(ALICE, reply, first_level.button("olsztyński"))  # pressed twice: no empty edit
    await api.silence(ALICE, 0.4)
    category = await api.answer(ALICE, reply, exact(reply, "olsztyński"))
    audience = await api.answer(ALICE, category, category.button("spotkanie"))
    place = await api.answer(ALICE, audience, audience.button("Dalej"))
    summary = await skip_optional_steps(api, ALICE, place)
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Forum <3 NGO" in warning.text
    await bot.restart()
    saved = await api.click(ALICE, warning, warning.buttons[1][1])
    assert "Zapisane" in saved.text and "09:30–10:30" in saved.text
    assert api.errors == []
    async with bot.ctx.db.transaction() as session:
        row = (await session.scalars(select(Event).where(Event.title == "Walne zebranie"))).one()
        assert row.starts_at.astimezone(bot.ctx.tz).strftime("%H:%M") == "09:30"
        assert row.starts_at.date() != datetime(2026, 12, 5).date()


async def test_long_fields_keep_a_page_in_one_message(bot: BotHarness) -> None:
    await _setup(bot)
    await bot.org("O" * 200, contact_email="long@example.org")
    await bot.member(3003, "O" * 200)
    start = datetime(2026, 11, 24, 8, tzinfo=UTC)
    for i in range(10):
        await _add_event(bot, 3003, f"{i} " + "T&" * 99, start + timedelta(hours=i),
                         start + timedelta(hours=i, minutes=30), district="ełcki", location="L<" * 150)
    api = bot.api
    page = await api.ask(STRANGER, "/events ełcki")
    assert "Strona 1 z 2" in page.text and len(page.text) <= 4096 and page.buttons
    second = await api.click(STRANGER, page, page.button("Dalej"))
    assert "Strona 2 z 2" in second.text
    await api.silence(STRANGER, 0.3)
    assert api.errors == []


async def test_time_skipped_by_dst_is_refused_in_the_form(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    await api.ask(ALICE, "/event")
    await api.ask(ALICE, "Nocny maraton")
    refusal = await api.ask(ALICE, "28.3.2027 2:30-4:00")
    assert "02:30" in refusal.text and "nie istnieje" in refusal.text and "03:30" in refusal.text
    assert "Gdzie" in (await api.ask(ALICE, "28.3.2027 3:30-5:00")).text


async def test_english_member_gets_english_form(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    assert "What is it called" in (await api.ask(BOB2, "/event")).text
    assert "When?" in (await api.ask(BOB2, "Open day")).text
    ambiguous = await api.ask(BOB2, "05/12/2026")
    assert "could mean" in ambiguous.text and "5 December" in ambiguous.text
    hours = await api.ask(BOB2, "Dec 7")
    assert "Monday, 7 December 2026" in hours.text and "What time" in hours.text
    where = await api.ask(BOB2, "10am-2pm")
    assert "Where?" in where.text and where.buttons[0][0] == "Whole region"
    category = await api.answer(BOB2, where, where.button("Whole region"))
    assert "conference" in [label for label, _ in category.buttons]
    assert "Cancelled" in (await api.ask(BOB2, "/cancel")).text
    assert api.errors == []


async def _workshop_to_summary(api: BotApi) -> Sent:
    """Alice's /event form for a workshop on 5 December in powiat olsztyński, up to its summary."""
    await api.ask(ALICE, "/event")
    await api.ask(ALICE, "Warsztaty grantowe")
    where = await api.ask(ALICE, "5.12.2026 10:00-14:00")
    subregion = await api.click(ALICE, where, where.button("olsztyński"))
    category = await api.answer(ALICE, subregion, exact(subregion, "olsztyński"))
    audience = await api.answer(ALICE, category, category.button("szkolenie"))
    place = await api.answer(ALICE, audience, audience.button("Dalej"))
    summary = await skip_optional_steps(api, ALICE, place)
    return summary


async def test_free_dates_are_those_free_when_the_form_is_confirmed(bot: BotHarness) -> None:
    """A date taken while the form was being filled in is not offered, and a date changed
    at the summary gets suggestions of its own."""
    await _setup(bot)
    api = bot.api
    summary = await _workshop_to_summary(api)
    # Bob takes the nearest free Saturday (12 December) meanwhile.
    await _add_event(bot, BOB, "Zebranie Beta", datetime(2026, 12, 12, 9, tzinfo=UTC),
                     datetime(2026, 12, 12, 11, tzinfo=UTC))
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    offered = [label for label, _ in warning.buttons][1:-1]
    assert offered and not any("12 grudnia" in label for label in offered)
    assert offered[0].startswith("sobota, 28 listopada 2026, 10:00")
    # Back to the summary with another date: its suggestions, not the old ones.
    cancelled = await api.click(ALICE, warning, warning.button("Anuluj"))
    assert "Anulowano" in cancelled.text
    summary = await _workshop_to_summary(api)
    pick = await api.click(ALICE, summary, summary.button("Zmień"))
    date_prompt = await api.answer(ALICE, pick, pick.button("Termin"))
    assert "Kiedy" in date_prompt.text
    summary = await api.ask(ALICE, "12.12.2026 10:00-12:00")
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Zebranie Beta" in warning.text
    offered = [label for label, _ in warning.buttons][1:-1]
    assert offered and offered[0].startswith("sobota, 19 grudnia 2026, 10:00")
    assert api.errors == []


async def test_a_member_blocked_elsewhere_cannot_save_the_form(bot: BotHarness) -> None:
    """The steps of a form know who speaks from memory (bot/people.py), which hears of a
    change made by another process only within 30 seconds; the save reads them again."""
    await _setup(bot)
    api = bot.api
    summary = await _workshop_to_summary(api)
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))  # Bob's forum that day
    # The CLI or another instance blocks Alice: a connection of its own, unseen by this process.
    elsewhere = create_async_engine(bot.ctx.db.url)
    async with elsewhere.begin() as conn:
        await conn.execute(update(Member).where(Member.telegram_id == ALICE)
                           .values(status=MemberStatus.BLOCKED))
    await elsewhere.dispose()
    refused = await api.click(ALICE, warning, warning.button("Zostaw"))
    assert "tylko zatwierdzeni" in refused.text
    async with bot.ctx.db.read() as session:
        titles = (await session.scalars(select(Event.title))).all()
    assert "Warsztaty grantowe" not in titles
