"""Training notices through the bot go through the /event form's conflict check, conflict
screen, free-date buttons and organiser notices, and can be edited and withdrawn from /my
and /trainings. End to end through the Bot API emulator, on both engines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from infranet.calendar import events as calendar
from infranet.calendar.event_input import EventInput
from infranet.calendar.training_input import TrainingInput
from infranet.calendar.trainings import add_training
from infranet.storage.actors import Actor
from infranet.storage.models import Event, EventStatus, Member, Training, TrainingStatus
from tests.bot_fixtures import BotHarness
from tests.botapi import Sent

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw
ALICE, BOB = 1001, 2002


async def _actor(bot: BotHarness, telegram_id: int) -> Actor:
    async with bot.ctx.db.read() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == telegram_id))).one()
        session.expunge(member)
        return Actor.of(member)


async def _setup(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja Alfa", contact_email="alfa@example.org")
    await bot.org("Stowarzyszenie Beta", contact_email="beta@example.org")
    await bot.member(ALICE, "Fundacja Alfa", name="Alice")
    await bot.member(BOB, "Stowarzyszenie Beta", name="Bob")
    start = datetime(2026, 12, 5, 9, tzinfo=UTC)  # Saturday 10:00–14:00 in Warsaw, the whole region
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == BOB))).one()
        await calendar.add_event(session, bot.ctx, Actor.of(member), EventInput(
            title="Forum NGO regionu", start=start, end=start + timedelta(hours=4), district="region",
            category="training", audiences=["ngo"]))


async def _training_summary(bot: BotHarness) -> Sent:
    """/training filled in up to its summary: two sessions, the first on the Forum's day."""
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
    assert "Sprawdź nabór" in summary.text
    return summary


async def test_a_clashing_session_gets_the_conflict_screen_and_a_free_date(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    summary = await _training_summary(bot)
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Spotkanie 1 z 2" in warning.text and "Forum NGO regionu" in warning.text
    labels = [label for label, _ in warning.buttons]
    assert labels[0] == "Zostaw mój termin" and labels[-1] == "Anuluj" and len(labels) >= 3
    async with bot.ctx.db.read() as session:
        assert (await session.scalars(select(Training))).first() is None  # nothing saved yet
    # the nearest free Saturdays; 12 December is the notice's own second session
    assert "sobota, 12 grudnia 2026, 10:00–14:00" not in labels
    saved = await api.click(ALICE, warning, warning.button("19 grudnia"))
    assert "Opublikowano" in saved.text
    async with bot.ctx.db.read() as session:
        training = (await session.scalars(select(Training))).one()
        sessions = (await session.scalars(select(Event).where(Event.training_id == training.id)
                                          .order_by(Event.starts_at))).all()
        assert len(sessions) == 2
        days = [s.starts_at.astimezone(bot.ctx.tz).date() for s in sessions]
        assert days == [date(2026, 12, 12), date(2026, 12, 19)]
    assert api.errors == []


async def test_keeping_the_date_tells_the_other_organisers(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    summary = await _training_summary(bot)
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    saved = await api.click(ALICE, warning, warning.button("Zostaw mój termin"))
    assert "Opublikowano" in saved.text
    told = await api.next_reply(ALICE)
    assert "Powiadomiłem organizatorów" in told.text and "Stowarzyszenie Beta" in told.text
    notice = await api.next_reply(BOB)
    assert "Fundacja Alfa" in notice.text and "Księgowość dla NGO" in notice.text
    assert "Forum NGO regionu" in notice.text
    async with bot.ctx.db.read() as session:
        training = (await session.scalars(select(Training))).one()
        first = (await session.scalars(select(Event).where(Event.training_id == training.id)
                                       .order_by(Event.starts_at))).first()
        assert first is not None and first.starts_at == datetime(2026, 12, 5, 9, tzinfo=UTC)
    assert api.errors == []


async def test_a_notice_is_edited_and_withdrawn_from_my_and_trainings(bot: BotHarness) -> None:
    await _setup(bot)
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == ALICE))).one()
        view = await add_training(session, bot.ctx, Actor.of(member), TrainingInput(
            title="Fundraising 101", sessions=[(date(2026, 12, 10), date(2026, 12, 10)),
                                               (date(2026, 12, 17), date(2026, 12, 17))],
            deadline=date(2026, 12, 8), target_group="NGO", how_to_apply="https://alfa.example.org",
            district="olsztyński"))
        training_id = view.training.id
    api = bot.api
    # /my: the notice once (not once per session), with Edit and Cancel acting on the notice
    await api.ask(ALICE, "/my")
    item = await api.next_reply(ALICE)
    assert "Fundraising 101" in item.text
    assert [label for label, _ in item.buttons] == ["Zmień nabór", "Odwołaj nabór"]
    await api.silence(ALICE, 0.5)
    summary = await api.click(ALICE, item, item.button("Zmień"))
    assert "Sprawdź nabór" in summary.text and "Fundraising 101" in summary.text
    pick = await api.click(ALICE, summary, summary.button("Zmień"))
    sessions_q = await api.answer(ALICE, pick, pick.button("Terminy"))
    assert "Terminy spotkań" in sessions_q.text
    # the Forum's day: the edit is checked for conflicts like a new notice
    # the deadline (8.12) is now after the first session: it is asked again, then the summary
    deadline_q = await api.ask(ALICE, "5.12 10-12")
    assert "najpóźniej sobota, 5 grudnia 2026" in deadline_q.text
    summary = await api.ask(ALICE, "2.12")
    assert "sobota, 5 grudnia 2026" in summary.text and "Sprawdź nabór" in summary.text
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Forum NGO regionu" in warning.text and "Spotkanie 1 z 1" in warning.text
    saved = await api.click(ALICE, warning, warning.button("Zostaw mój termin"))
    assert "Zmieniono nabór" in saved.text
    assert "Stowarzyszenie Beta" in (await api.next_reply(ALICE)).text  # the organisers were told
    assert "Fundraising 101" in (await api.next_reply(BOB)).text
    async with bot.ctx.db.read() as session:
        rows = (await session.scalars(select(Event).where(Event.training_id == training_id)
                                      .order_by(Event.id))).all()
        live = [e for e in rows if e.status == EventStatus.SCHEDULED]
        assert len(live) == 1 and live[0].starts_at == datetime(2026, 12, 5, 9, tzinfo=UTC)
        assert len(rows) == 2  # the second session is cancelled, not deleted
    # /trainings shows the own notice with Edit and Cancel too; withdrawn from there
    api.send_text(ALICE, "/trainings")
    _listing, own = await api.replies(ALICE, 2)
    labels = [label for label, _ in own.buttons]
    assert labels == ["Zmień nabór", "Odwołaj nabór"]
    confirm = await api.click(ALICE, own, own.button("Odwołaj"))
    done = await api.click(ALICE, confirm, confirm.button("Odwołaj"))
    assert "Odwołano" in done.text
    async with bot.ctx.db.read() as session:
        assert (await session.get(Training, training_id)).status == TrainingStatus.CANCELLED  # type: ignore[union-attr]
    # the old Edit button of a withdrawn notice says so and changes nothing
    api.press(ALICE, item, item.button("Zmień"))
    assert "zamknięty lub odwołany" in (await api.next_reply(ALICE)).text
    assert api.errors == []
