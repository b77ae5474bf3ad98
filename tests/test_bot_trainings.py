"""Training recruitment through the bot, end to end, and the deadline jobs' messages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select

from infranet.bot.handlers.training_deadlines import run_deadline_jobs
from infranet.calendar.event_queries import list_events
from infranet.calendar.training_input import TrainingInput
from infranet.calendar.trainings import add_training
from infranet.storage.actors import Actor
from infranet.storage.models import Event, Member, Training, TrainingStatus
from tests.bot_fixtures import BotHarness

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw
ALICE, BOB, STRANGER = 1001, 2002, 7007


def exact(message: object, label: str) -> str:
    return next(data for text, data in message.buttons if text == label)  # type: ignore[attr-defined]


async def _setup(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja Alfa", contact_email="alfa@example.org")
    await bot.org("Stowarzyszenie Beta")
    await bot.member(ALICE, "Fundacja Alfa", name="Alice")
    await bot.member(BOB, "Stowarzyszenie Beta", name="Bob", language="en")


async def test_training_notice_journey_and_deadline_messages(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    assert "Tytuł szkolenia" in (await api.ask(ALICE, "/training")).text
    assert "wymagane" in (await api.ask(ALICE, "\u202e\u2066\x07")).text  # nothing visible
    assert "Terminy spotkań" in (await api.ask(ALICE, "Księgowość & sprawozdania")).text
    assert "30 dni" in (await api.ask(ALICE, "5.12, 31.11.2026 10-14")).text
    assert "nakładają" in (await api.ask(ALICE, "5.12 10-14, 5.12 12-16")).text
    deadline_prompt = await api.ask(ALICE, "5.12, 12.12, 19.12 10:00-14:00")
    assert "sobota, 5 grudnia 2026, 10:00–14:00" in deadline_prompt.text
    assert "najpóźniej sobota, 5 grudnia 2026" in deadline_prompt.text
    assert "po pierwszym spotkaniu" in (await api.ask(ALICE, "6.12.2026")).text
    assert "minęła" in (await api.ask(ALICE, "20.11")).text
    assert "Dla kogo" in (await api.ask(ALICE, "1.12")).text
    places_prompt = await api.ask(ALICE, "skarbnicy & księgowi <3")
    assert "Ile miejsc" in places_prompt.text
    assert "od 1 do" in (await api.ask(ALICE, "dużo")).text
    cost_prompt = await api.ask(ALICE, "20")
    assert "Koszt" in cost_prompt.text
    assert "150" in (await api.ask(ALICE, "tanio")).text
    assert "Jak się zgłosić" in (await api.ask(ALICE, "99,50 zł")).text
    assert "nie jest adresem" in (await api.ask(ALICE, "zadzwoń")).text
    district_prompt = await api.ask(ALICE, "zapisy@alfa.example.org")
    assert "Gdzie" in district_prompt.text
    sub = await api.click(ALICE, district_prompt, district_prompt.button("olsztyński"))
    description = await api.answer(ALICE, sub, exact(sub, "m. Olsztyn"))
    summary = await api.answer(ALICE, description, description.button("Pomiń"))
    assert "Sprawdź nabór" in summary.text and "Fundacja Alfa" in summary.text
    assert "99,50 zł" in summary.text and "skarbnicy & księgowi <3" in summary.text
    assert "wtorek, 1 grudnia 2026" in summary.text and "m. Olsztyn" in summary.text
    saved = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Opublikowano" in saved.text

    async with bot.ctx.db.transaction() as session:
        training = (await session.scalars(select(Training))).one()
        assert training.cost_pln == Decimal("99.50") and training.places == 20
        assert training.apply_email == "zapisy@alfa.example.org"
        sessions = (await session.scalars(select(Event).where(Event.training_id == training.id))).all()
        assert len(sessions) == 3 and {e.category for e in sessions} == {"training"}

    listing = await api.ask(STRANGER, "/trainings")
    assert "Otwarte nabory" in listing.text and "Księgowość & sprawozdania" in listing.text
    assert "(+2 kolejne)" in listing.text and "zapisy@alfa.example.org" in listing.text
    in_group = await api.ask(STRANGER, "/trainings podregion olsztyński", chat_id=-100600, chat_type="group")
    assert "Księgowość" in in_group.text
    assert "Brak otwartych naborów" in (await api.ask(STRANGER, "/trainings ełcki")).text

    application = bot.runtime.application
    assert application is not None
    assert await run_deadline_jobs(bot.ctx, application.bot) == (0, 0)
    bot.ctx.clock = lambda: datetime(2026, 11, 30, 7, 5, tzinfo=UTC)
    assert await run_deadline_jobs(bot.ctx, application.bot) == (1, 0)
    reminder = await api.next_reply(ALICE)
    assert "jutro" in reminder.text and "wtorek, 1 grudnia 2026" in reminder.text
    assert await run_deadline_jobs(bot.ctx, application.bot) == (0, 0)  # once only
    bot.ctx.clock = lambda: datetime(2026, 12, 2, 7, 5, tzinfo=UTC)
    assert await run_deadline_jobs(bot.ctx, application.bot) == (0, 1)
    closed = await api.next_reply(ALICE)
    assert "zamknięty" in closed.text and "Księgowość & sprawozdania" in closed.text
    assert "Brak otwartych naborów" in (await api.ask(STRANGER, "/trainings")).text
    async with bot.ctx.db.transaction() as session:
        assert (await session.scalars(select(Training))).one().status == TrainingStatus.CLOSED
        found = await list_events(session, bot.ctx, start=bot.ctx.now(),
                                           end=datetime(2027, 1, 1, tzinfo=UTC), category="training")
        assert len(found) == 3
    assert api.errors == []


async def test_cancel_notice_and_forged_buttons(bot: BotHarness) -> None:
    await _setup(bot)
    async with bot.ctx.db.transaction() as session:
        alice = (await session.scalars(select(Member).where(Member.telegram_id == ALICE))).one()
        view = await add_training(session, bot.ctx, Actor.of(alice), TrainingInput(
            title="Fundraising 101", sessions=[(date(2026, 12, 10), date(2026, 12, 10))],
            deadline=date(2026, 12, 8), target_group="NGO", how_to_apply="https://alfa.example.org"))
        training_id = view.training.id
    api = bot.api
    api.send_text(ALICE, "/trainings")
    listing, own = await api.replies(ALICE, 2)
    assert "Fundraising 101" in listing.text and "Bezpłatne" in listing.text
    # Bob (another organisation) forges the cancel button: refused, nothing changes
    api.press(BOB, own, f"tr:c:{training_id}:y")
    assert "Not allowed" in (await api.next_reply(ALICE)).text
    api.press(ALICE, own, "tr:c:notanumber:y")
    await api.silence(ALICE, 0.4)
    confirm = await api.click(ALICE, own, own.button("Odwołaj"))
    assert "Odwołać nabór" in confirm.text
    done = await api.click(ALICE, confirm, confirm.button("Odwołaj"))
    assert "Odwołano" in done.text
    async with bot.ctx.db.transaction() as session:
        assert (await session.get(Training, training_id)).status == TrainingStatus.CANCELLED  # type: ignore[union-attr]
    assert "Brak otwartych" in (await api.ask(STRANGER, "/trainings")).text
    assert "/join" in (await api.ask(STRANGER, "/training")).text
    assert api.errors == []


async def test_training_listing_paginates(bot: BotHarness) -> None:
    await _setup(bot)
    async with bot.ctx.db.transaction() as session:
        alice = (await session.scalars(select(Member).where(Member.telegram_id == ALICE))).one()
        for i in range(8):
            await add_training(session, bot.ctx, Actor.of(alice), TrainingInput(
                title=f"Kurs {i} <3", sessions=[(date(2026, 12, 10 + i), date(2026, 12, 10 + i))],
                deadline=date(2026, 12, 1 + i), target_group="NGO", how_to_apply="+48 600 100 200"))
    api = bot.api
    first = await api.ask(STRANGER, "/trainings")
    assert "Kurs 0 <3" in first.text and "Kurs 6 <3" not in first.text and "Strona 1 z 2" in first.text
    second = await api.click(STRANGER, first, first.button("Dalej"))
    assert second.kind == "edit" and "Kurs 7 <3" in second.text
    api.press(STRANGER, second, first.button("Dalej"))  # the page on screen: no edit
    await api.silence(STRANGER, 0.4)
    english = await api.ask(BOB, "/trainings")
    assert "Open recruitments" in english.text and "Apply by" in english.text
    assert api.errors == []


async def test_scheduled_deadline_job_without_the_runtime(bot: BotHarness) -> None:
    """The job registered on the scheduler reminds through a Bot of its own when it is
    given no running Application (e.g. another process's scheduler)."""

    from infranet.bot.handlers.training_deadlines import deadline_job
    from infranet.bot.handlers.trainings import jobs

    await _setup(bot)
    async with bot.ctx.db.transaction() as session:
        alice = (await session.scalars(select(Member).where(Member.telegram_id == ALICE))).one()
        await add_training(session, bot.ctx, Actor.of(alice), TrainingInput(
            title="Kurs RODO", sessions=[(date(2026, 12, 10), date(2026, 12, 10))],
            deadline=date(2026, 11, 24), target_group="NGO", how_to_apply="https://alfa.example.org"))
    job = next(j for j in jobs(bot.ctx) if j.id == "bot.training_deadlines")
    assert str(job.trigger.fields[5]) == "8" and str(job.trigger.fields[6]) == "5"
    assert await deadline_job(bot.ctx) == (1, 0)
    assert "Kurs RODO" in (await bot.api.next_reply(ALICE)).text
    assert await deadline_job(bot.ctx, bot.runtime) == (0, 0)
