"""The coordination figures come from what members and imports did about a clash warning:
each warning with at least one clashing event shown is one `CoordinationDecision`, written
with the save (or the Cancel) that answered it. End to end through the Bot API emulator,
an ICS import, and `coordination_counts` over the period, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from infranet.calendar import events as calendar
from infranet.calendar.coordination import Coordination, coordination_counts
from infranet.calendar.event_input import EventInput
from infranet.calendar.ics_import import import_ics
from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.models import CoordinationDecision, Event, Member, Organisation
from tests.bot_fixtures import BotHarness, skip_optional_steps
from tests.botapi import Sent
from tests.http_app import assembled
from tests.test_bot_durable_forms import restart_after_crash
from tests.test_site_proposal import existing_event, form, shown, site_ctx

__all__ = ["site_ctx"]  # the web proposal's fixture, used below

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw
ALICE, BOB = 1001, 2002
FORUM = "Forum NGO regionu"


async def _setup(bot: BotHarness) -> None:
    """Bob's organisation holds a forum on Saturday 5 December, 10:00–13:00 in Warsaw."""
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja Alfa", contact_email="alfa@example.org")
    await bot.org("Stowarzyszenie Beta", contact_email="beta@example.org")
    await bot.member(ALICE, "Fundacja Alfa", name="Alice")
    await bot.member(BOB, "Stowarzyszenie Beta", name="Bob")
    start = datetime(2026, 12, 5, 9, tzinfo=UTC)
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == BOB))).one()
        await calendar.add_event(session, bot.ctx, Actor.of(member), EventInput(
            title=FORUM, start=start, end=start + timedelta(hours=3), district="region",
            category="meeting", audiences=["ngo"]))


async def _summary(bot: BotHarness, title: str, when: str) -> Sent:
    """Alice's /event form filled in up to its summary."""
    api = bot.api
    await api.ask(ALICE, "/event")
    await api.ask(ALICE, title)
    where = await api.ask(ALICE, when)
    category = await api.answer(ALICE, where, where.button("Całe województwo"))
    audience = await api.answer(ALICE, category, category.button("spotkanie"))
    place = await api.answer(ALICE, audience, audience.button("Dalej"))
    return await skip_optional_steps(api, ALICE, place)


async def _warning(bot: BotHarness, title: str) -> Sent:
    """The conflict screen of Alice's event on the forum's morning."""
    summary = await _summary(bot, title, "5.12.2026 10-11")
    warning = await bot.api.click(ALICE, summary, summary.button("Potwierdź"))
    assert FORUM in warning.text and warning.buttons[0][0] == "Zostaw mój termin"
    return warning


async def _decisions(bot: BotHarness) -> list[CoordinationDecision]:
    async with bot.ctx.db.read() as session:
        return list((await session.scalars(select(CoordinationDecision)
                                           .order_by(CoordinationDecision.id))).all())


async def _ids(bot: BotHarness, title: str) -> tuple[int, int]:
    """(the event's id, its organisation's id)."""
    async with bot.ctx.db.read() as session:
        event = (await session.scalars(select(Event).where(Event.title == title))).one()
        return event.id, event.organisation_id or 0


async def _org(bot: BotHarness, name: str) -> int:
    async with bot.ctx.db.read() as session:
        return (await session.scalars(select(Organisation.id).where(Organisation.name == name))).one()


async def _counts(bot: BotHarness) -> Coordination:
    """The figures over the days around now (decisions are stamped with the real clock)."""
    now = datetime.now(UTC)
    async with bot.ctx.db.read() as session:
        return await coordination_counts(session, now - timedelta(days=1), now + timedelta(days=1))


async def test_keep_the_date_counts_one_kept_and_a_replayed_keep_nothing_more(bot: BotHarness) -> None:
    await _setup(bot)
    warning = await _warning(bot, "Spotkanie sieci")
    keep = bot.api.press(ALICE, warning, warning.button("Zostaw"))
    assert "Zapisane" in (await bot.api.next_reply(ALICE)).text
    await bot.api.next_reply(ALICE)  # whom we told
    event_id, org_id = await _ids(bot, "Spotkanie sieci")
    assert org_id == await _org(bot, "Fundacja Alfa")
    [row] = await _decisions(bot)
    assert (row.outcome, row.source, row.conflicts, row.event_id, row.organisation_id) == \
        ("kept", "bot", 1, event_id, org_id)
    # Telegram offers the press again after a crash: "already saved", and nothing counted twice.
    await restart_after_crash(bot)
    bot.api.redeliver(keep)
    assert "już zapisany" in (await bot.api.next_reply(ALICE)).text
    assert len(await _decisions(bot)) == 1
    # A second press of the same button on the screen changes nothing either.
    bot.api.press(ALICE, warning, warning.button("Zostaw"))
    await bot.api.silence(ALICE, 0.5)
    assert len(await _decisions(bot)) == 1
    assert await _counts(bot) == Coordination(warned=1, moved_suggested=0, moved_other=0, kept=1,
                                              dropped=0)


async def test_a_free_date_button_counts_moved_to_a_suggested_date(bot: BotHarness) -> None:
    await _setup(bot)
    warning = await _warning(bot, "Spotkanie przeniesione")
    _label, free = warning.buttons[1]
    assert free.startswith("ev:sug:")
    saved = await bot.api.click(ALICE, warning, free)
    assert "Zapisane" in saved.text
    event_id, org_id = await _ids(bot, "Spotkanie przeniesione")
    [row] = await _decisions(bot)
    assert (row.outcome, row.source, row.conflicts, row.event_id, row.organisation_id) == \
        ("moved_suggested", "bot", 1, event_id, org_id)


async def test_stepping_back_and_typing_another_date_counts_moved_to_another_date(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    warning = await _warning(bot, "Spotkanie w innym dniu")
    summary = await api.click(ALICE, warning, warning.button("Wstecz"))
    assert "Potwierdź" in [label for label, _ in summary.buttons]
    assert await _decisions(bot) == []  # nothing decided yet
    pick = await api.click(ALICE, summary, summary.button("Zmień"))
    prompt, _picked = await api.step(ALICE, pick, exact(pick, "Termin"))
    assert "Kiedy" in prompt.text
    summary = await api.ask(ALICE, "8.12.2026 10-11")  # a Tuesday with nothing else on
    assert "8 grudnia 2026" in summary.text
    saved = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Zapisane" in saved.text and "8 grudnia 2026" in saved.text
    event_id, org_id = await _ids(bot, "Spotkanie w innym dniu")
    [row] = await _decisions(bot)
    assert (row.outcome, row.source, row.conflicts, row.event_id, row.organisation_id) == \
        ("moved_other", "bot", 1, event_id, org_id)


async def test_cancel_on_the_conflict_screen_counts_dropped(bot: BotHarness) -> None:
    await _setup(bot)
    warning = await _warning(bot, "Spotkanie odwołane")
    cancelled = await bot.api.click(ALICE, warning, exact(warning, "Anuluj"))
    assert "Anulowano" in cancelled.text
    [row] = await _decisions(bot)
    assert (row.outcome, row.source, row.conflicts, row.event_id, row.organisation_id) == \
        ("dropped", "bot", 1, None, await _org(bot, "Fundacja Alfa"))
    bot.api.press(ALICE, warning, exact(warning, "Anuluj"))  # pressed again: over already
    await bot.api.silence(ALICE, 0.5)
    assert len(await _decisions(bot)) == 1


async def test_no_clash_and_a_holiday_alone_count_nothing(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    summary = await _summary(bot, "Spotkanie wolne", "8.12.2026 10-11")
    assert "Zapisane" in (await api.click(ALICE, summary, summary.button("Potwierdź"))).text
    # Christmas Day: the screen warns of the holiday, but no other event clashes.
    summary = await _summary(bot, "Spotkanie świąteczne", "25.12.2026 10-11")
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Boże Narodzenie" in warning.text and FORUM not in warning.text
    assert "Zapisane" in (await api.click(ALICE, warning, warning.button("Zostaw"))).text
    assert await _decisions(bot) == []
    assert (await _counts(bot)).warned == 0


async def _training_warning(bot: BotHarness) -> Sent:
    """/training with two sessions, the first on the forum's day: its conflict screen."""
    api = bot.api
    await api.ask(ALICE, "/training")
    await api.ask(ALICE, "Księgowość dla NGO")
    await api.ask(ALICE, "5.12, 12.12 10:00-14:00")
    await api.ask(ALICE, "1.12")
    places = await api.ask(ALICE, "skarbnicy")
    cost = await api.answer(ALICE, places, places.button("Pomiń"))
    await api.answer(ALICE, cost, cost.button("Bezpłatne"))
    district = await api.ask(ALICE, "zapisy@alfa.example.org")
    description = await api.answer(ALICE, district, district.button("Całe województwo"))
    summary = await api.answer(ALICE, description, description.button("Pomiń"))
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Spotkanie 1 z 2" in warning.text and FORUM in warning.text
    return warning


async def test_a_training_session_kept_counts_kept_with_that_session(bot: BotHarness) -> None:
    await _setup(bot)
    warning = await _training_warning(bot)
    saved = await bot.api.click(ALICE, warning, warning.button("Zostaw"))
    assert "Opublikowano" in saved.text
    [row] = await _decisions(bot)
    async with bot.ctx.db.read() as session:
        first = (await session.scalars(select(Event).where(Event.title == "Księgowość dla NGO")
                                       .order_by(Event.starts_at))).first()
    assert first is not None and first.starts_at.astimezone(bot.ctx.tz).day == 5
    assert (row.outcome, row.source, row.conflicts, row.event_id, row.organisation_id) == \
        ("kept", "bot", 1, first.id, await _org(bot, "Fundacja Alfa"))


async def test_a_training_session_moved_to_a_free_date_counts_moved_suggested(bot: BotHarness) -> None:
    await _setup(bot)
    warning = await _training_warning(bot)
    saved = await bot.api.click(ALICE, warning, warning.button("19 grudnia"))
    assert "Opublikowano" in saved.text
    async with bot.ctx.db.read() as session:
        sessions = (await session.scalars(select(Event).where(Event.title == "Księgowość dla NGO")
                                          .order_by(Event.starts_at))).all()
    assert [e.starts_at.astimezone(bot.ctx.tz).day for e in sessions] == [12, 19]
    [row] = await _decisions(bot)
    assert (row.outcome, row.source, row.conflicts, row.event_id) == \
        ("moved_suggested", "bot", 1, sessions[1].id)


async def test_a_training_cancelled_on_its_conflict_screen_counts_dropped(bot: BotHarness) -> None:
    await _setup(bot)
    warning = await _training_warning(bot)
    cancelled = await bot.api.click(ALICE, warning, exact(warning, "Anuluj"))
    assert "Anulowano" in cancelled.text
    [row] = await _decisions(bot)
    assert (row.outcome, row.source, row.event_id) == ("dropped", "bot", None)


CLASHING_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Test//Coordination//PL
BEGIN:VEVENT
UID:clash-1@example.org
DTSTAMP:20261120T100000Z
DTSTART:20261205T093000Z
DTEND:20261205T103000Z
SUMMARY:Warsztaty w dniu forum
END:VEVENT
BEGIN:VEVENT
UID:free-1@example.org
DTSTAMP:20261120T100000Z
DTSTART:20261208T093000Z
DTEND:20261208T103000Z
SUMMARY:Warsztaty we wtorek
END:VEVENT
END:VCALENDAR
"""


async def test_an_import_counts_each_clashing_event_kept_and_the_period_adds_up(bot: BotHarness) -> None:
    await _setup(bot)
    alfa = await _org(bot, "Fundacja Alfa")
    async with bot.ctx.db.transaction() as session:
        report = await import_ics(session, bot.ctx, Actor.cli(), CLASHING_ICS, organisation_id=alfa,
                                  district="region", category="training")
    assert report.added == 2 and [c.other_title for c in report.conflicts] == [FORUM]
    clashing, _org_id = await _ids(bot, "Warsztaty w dniu forum")
    [row] = await _decisions(bot)
    assert (row.outcome, row.source, row.conflicts, row.event_id, row.organisation_id) == \
        ("kept", "import", 1, clashing, alfa)
    # The same file again changes nothing, so it counts nothing again.
    async with bot.ctx.db.transaction() as session:
        await import_ics(session, bot.ctx, Actor.cli(), CLASHING_ICS, organisation_id=alfa,
                         district="region", category="training")
    assert len(await _decisions(bot)) == 1
    # With the bot's decisions, the period's figures.
    warning = await _warning(bot, "Spotkanie zostaje")
    assert "Zapisane" in (await bot.api.click(ALICE, warning, warning.button("Zostaw"))).text
    await bot.api.next_reply(ALICE)  # whom we told
    warning = await _warning(bot, "Spotkanie na wolny termin")
    assert "Zapisane" in (await bot.api.click(ALICE, warning, warning.buttons[1][1])).text
    warning = await _warning(bot, "Spotkanie zarzucone")
    assert "Anulowano" in (await bot.api.click(ALICE, warning, exact(warning, "Anuluj"))).text
    assert await _counts(bot) == Coordination(warned=4, moved_suggested=1, moved_other=0, kept=2,
                                              dropped=1)
    assert [r.source for r in await _decisions(bot)] == ["import", "bot", "bot", "bot"]
    now = datetime.now(UTC)
    async with bot.ctx.db.read() as session:  # a period before any of this: nothing
        assert (await coordination_counts(session, now - timedelta(days=400),
                                          now - timedelta(days=1))).warned == 0


def exact(message: Sent, label: str) -> str:
    """The callback data of the button labelled exactly `label`."""
    return next(data for text, data in message.buttons if text == label)


async def test_a_web_proposal_counts_what_the_proposer_did_after_the_check(site_ctx: AppContext) -> None:
    """Checked on a busy day, then sent as it was (kept), moved by a free date's button
    (moved_suggested) or with another day typed (moved_other); sent without a check, or
    on a free day, it counts nothing; a token sent again counts nothing again."""
    await existing_event(site_ctx, "Forum Organizacji Pozarządowych")

    async def decisions() -> list[tuple[str, str, int, int | None]]:
        async with site_ctx.db.read() as session:
            rows = (await session.scalars(select(CoordinationDecision)
                                          .order_by(CoordinationDecision.id))).all()
            return [(r.outcome, r.source, r.conflicts, r.event_id) for r in rows]

    async def event_titled(title: str) -> int:
        async with site_ctx.db.read() as session:
            return (await session.scalars(select(Event.id).where(Event.title == title))).one()

    async with assembled(site_ctx) as app, app.client() as client:
        token = await shown(client, site_ctx)
        checked = await client.post("/events/new", data=form(step="check", token=token, title="Zostaje"))
        assert "Forum Organizacji Pozarządowych" in checked.text
        assert (await client.post("/events/new", data=form(token=token, title="Zostaje"))).status_code == 200
        assert (await client.post("/events/new", data=form(token=token, title="Zostaje"))).status_code == 409
        assert await decisions() == [("kept", "web", 1, await event_titled("Zostaje"))]

        token = await shown(client, site_ctx)
        await client.post("/events/new", data=form(step="check", token=token, title="Przeniesione"))
        moved = await client.post("/events/new", data=form(step="check", token=token, title="Przeniesione",
                                                            pick="2027-03-17/2027-03-17"))
        assert 'name="start_date" value="2027-03-17"' in moved.text
        await client.post("/events/new", data=form(token=token, title="Przeniesione",
                                                    start_date="2027-03-17"))
        token = await shown(client, site_ctx)
        await client.post("/events/new", data=form(step="check", token=token, title="Inny dzień"))
        await client.post("/events/new", data=form(token=token, title="Inny dzień", start_date="2027-03-24"))
        token = await shown(client, site_ctx)  # sent without a check: no warning was shown
        await client.post("/events/new", data=form(token=token, title="Bez sprawdzenia"))
        assert await decisions() == [
            ("kept", "web", 1, await event_titled("Zostaje")),
            ("moved_suggested", "web", 1, await event_titled("Przeniesione")),
            ("moved_other", "web", 1, await event_titled("Inny dzień"))]
    now = datetime.now(UTC)
    async with site_ctx.db.read() as session:
        assert await coordination_counts(session, now - timedelta(days=1), now + timedelta(days=1)) == \
            Coordination(warned=3, moved_suggested=1, moved_other=1, kept=1, dropped=0)
