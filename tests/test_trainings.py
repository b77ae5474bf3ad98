"""Training recruitment notices on both storage engines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from infranet.calendar.dateparse_when import parse_sessions
from infranet.calendar.event_queries import list_events
from infranet.calendar.training_input import TrainingInput, parse_apply, parse_cost, parse_places
from infranet.calendar.trainings import (
    add_training,
    cancel_training,
    close_expired,
    due_reminders,
    get_training,
    list_open_trainings,
)
from infranet.context import AppContext
from infranet.errors import PermissionDenied, ValidationFailed
from infranet.network.orgs import OrgInput, add_organisation
from infranet.storage.actors import Actor
from infranet.storage.models import (
    AuditLog,
    Event,
    EventStatus,
    Member,
    MemberStatus,
    Moderation,
    Training,
    TrainingStatus,
)
from tests.conftest import make_context

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 10:00 in Warsaw
TODAY = date(2026, 11, 23)


async def _setup(ctx: AppContext) -> tuple[Member, Member, Member]:
    """Two organisations with one approved member each, and a pending member."""
    ctx.clock = lambda: NOW
    async with ctx.db.transaction() as session:
        org_a = await add_organisation(session, ctx, Actor.cli(), OrgInput(
            name="Fundacja Alfa", districts=["olsztyński"], contact_email="alfa@example.org"))
        org_b = await add_organisation(session, ctx, Actor.cli(), OrgInput(name="Stowarzyszenie Beta"))
        alice = Member(telegram_id=101, display_name="Alice", organisation_id=org_a.id,
                       status=MemberStatus.APPROVED, language="pl")
        bob = Member(telegram_id=202, display_name="Bob", organisation_id=org_b.id,
                     status=MemberStatus.APPROVED, language="en")
        pending = Member(telegram_id=303, display_name="Pending", organisation_id=org_a.id,
                         status=MemberStatus.PENDING)
        session.add_all([alice, bob, pending])
    return alice, bob, pending


def _input(**overrides: object) -> TrainingInput:
    values: dict[str, object] = dict(
        title="Księgowość dla NGO", deadline=date(2026, 12, 1), target_group="skarbnicy organizacji",
        how_to_apply="https://alfa.example.org/zapisy", district="olsztyński", places=20,
        cost=None, description="Trzy spotkania o sprawozdaniach.",
        sessions=parse_sessions("5.12, 12.12, 19.12 10:00-14:00", TODAY, calendar_tz()),
    )
    values.update(overrides)
    return TrainingInput(**values)  # type: ignore[arg-type]


def calendar_tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Warsaw")


async def _add(ctx: AppContext, member: Member, **overrides: object):
    async with ctx.db.transaction() as session:
        fresh = await session.get(Member, member.id)
        assert fresh is not None
        return await add_training(session, ctx, Actor.of(fresh), _input(**overrides))


async def test_notice_creates_training_sessions_in_calendar(ctx: AppContext) -> None:
    alice, _, _ = await _setup(ctx)
    view = await _add(ctx, alice)
    assert view.training.status == TrainingStatus.OPEN
    assert view.training.apply_url == "https://alfa.example.org/zapisy"
    assert view.training.apply_email is None and view.training.cost_pln is None
    assert len(view.sessions) == 3
    async with ctx.db.transaction() as session:
        found = await list_events(session, ctx, start=NOW, end=NOW + timedelta(days=60),
                                           category="training")
        assert [o.start for o in found] == [datetime(2026, 12, d, 9, tzinfo=UTC) for d in (5, 12, 19)]
        assert {o.event.training_id for o in found} == {view.training.id}
        assert {o.event.organisation.name for o in found} == {"Fundacja Alfa"}
        assert found[0].event.district.slug == ctx.region.match("olsztyński").slug
        assert found[0].event.registration_url == "https://alfa.example.org/zapisy"
        audit = (await session.scalars(select(AuditLog.action).where(
            AuditLog.entity == "training"))).all()
        assert audit == ["training.add"]


async def test_all_day_range_and_paid_notice(ctx: AppContext) -> None:
    alice, _, _ = await _setup(ctx)
    view = await _add(ctx, alice, sessions=[(date(2026, 12, 5), date(2026, 12, 7))],
                      cost=parse_cost("1 200,50 zł"), how_to_apply="Zapisy@Alfa.example.org",
                      deadline=date(2026, 12, 5))
    assert view.training.cost_pln == Decimal("1200.50")
    assert view.training.apply_email == "Zapisy@alfa.example.org"
    (event_row,) = view.sessions
    assert event_row.all_day and event_row.category == "training"
    async with ctx.db.transaction() as session:
        again = await get_training(session, view.training.id)
        assert again.training.cost_pln == Decimal("1200.50")
        assert len(again.sessions) == 1


async def test_spans_from_parser_with_all_day_sessions(ctx: AppContext) -> None:
    alice, _, _ = await _setup(ctx)
    view = await _add(ctx, alice, sessions=parse_sessions("5.12, 12.12", TODAY, calendar_tz()),
                      how_to_apply="+48 89 123 45 67")
    assert [e.all_day for e in view.sessions] == [True, True]
    assert view.training.apply_phone == "+48 89 123 45 67"
    assert view.sessions[0].starts_at == datetime(2026, 12, 4, 23, tzinfo=UTC)
    assert view.sessions[0].ends_at == datetime(2026, 12, 5, 23, tzinfo=UTC)


@pytest.mark.parametrize(("overrides", "key", "fragment"), [
    ({"deadline": date(2026, 11, 20)}, "training.error.deadline_past", "20.11.2026"),
    ({"deadline": date(2026, 12, 6)}, "training.error.deadline_after_start", "5.12.2026"),
    ({"title": "  "}, "error.empty", "Tytuł"),
    ({"title": "x" * 201}, "error.too_long", "201"),
    ({"target_group": "\u202e\x00"}, "error.empty", "Dla kogo"),
    ({"places": 0}, "training.error.places", "10000"),
    ({"cost": Decimal("-5")}, "training.error.cost", "-5"),
    ({"cost": Decimal("10.555")}, "training.error.cost", "10.555"),
    ({"how_to_apply": "zadzwoń do nas"}, "training.error.apply", "zadzwoń"),
    ({"how_to_apply": "jan@@example"}, "error.email", "jan@@example"),
    ({"sessions": []}, "training.error.no_sessions", "5.12"),
    ({"sessions": [(datetime(2026, 11, 20, 9, tzinfo=UTC), datetime(2026, 11, 20, 12, tzinfo=UTC))]},
     "training.error.session_past", "20.11.2026"),
])
async def test_invalid_notices_store_nothing(ctx: AppContext, overrides: dict, key: str,
                                             fragment: str) -> None:
    alice, _, _ = await _setup(ctx)
    with pytest.raises(ValidationFailed) as info:
        await _add(ctx, alice, **overrides)
    assert info.value.key == key
    assert fragment in info.value.localized("pl")
    assert info.value.localized("en") != info.value.localized("pl")
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Training)) == 0
        assert await session.scalar(select(func.count()).select_from(Event)) == 0


async def test_calendar_refusal_rolls_back_the_notice(ctx: AppContext) -> None:
    alice, _, _ = await _setup(ctx)
    with pytest.raises(ValidationFailed):
        await _add(ctx, alice, district="Gotham")
    far = [(datetime(2030, 1, 5, 9, tzinfo=UTC), datetime(2030, 1, 5, 12, tzinfo=UTC))]
    with pytest.raises(ValidationFailed) as info:
        await _add(ctx, alice, sessions=far, deadline=date(2029, 12, 1))
    assert info.value.key == "calendar.error.too_far"
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Training)) == 0
        assert await session.scalar(select(func.count()).select_from(Event)) == 0


async def test_only_approved_members_post_for_their_own_organisation(ctx: AppContext) -> None:
    alice, bob, pending = await _setup(ctx)
    with pytest.raises(PermissionDenied):
        await _add(ctx, pending)
    async with ctx.db.transaction() as session:
        fresh_alice = await session.get(Member, alice.id)
        other_org = fresh_alice.organisation_id  # type: ignore[union-attr]
    with pytest.raises(PermissionDenied):
        await _add(ctx, bob, organisation_id=other_org)
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Training)) == 0


async def test_cancel_by_organisation_members_only(ctx: AppContext) -> None:
    alice, bob, _ = await _setup(ctx)
    view = await _add(ctx, alice)
    async with ctx.db.transaction() as session:
        with pytest.raises(PermissionDenied):
            await cancel_training(session, ctx, Actor.of(await session.get(Member, bob.id)),
                                  view.training.id)
    async with ctx.db.transaction() as session:
        assert (await get_training(session, view.training.id)).training.status == TrainingStatus.OPEN
        cancelled = await cancel_training(session, ctx, Actor.of(await session.get(Member, alice.id)),
                                          view.training.id)
        assert cancelled.training.status == TrainingStatus.CANCELLED
    async with ctx.db.transaction() as session:
        again = await get_training(session, view.training.id)
        assert {e.status for e in again.sessions} == {EventStatus.CANCELLED}
        assert await list_open_trainings(session, ctx) == []
        found = await list_events(session, ctx, start=NOW, end=NOW + timedelta(days=60))
        assert found == []


async def test_admin_cancels_any_notice(ctx: AppContext) -> None:
    alice, _, _ = await _setup(ctx)
    view = await _add(ctx, alice)
    async with ctx.db.transaction() as session:
        result = await cancel_training(session, ctx, Actor.cli(), view.training.id)
        assert result.training.status == TrainingStatus.CANCELLED


async def test_open_list_by_deadline_and_area(ctx: AppContext) -> None:
    alice, bob, _ = await _setup(ctx)
    later = await _add(ctx, alice, title="Późny nabór", deadline=date(2026, 12, 4))
    sooner = await _add(ctx, bob, title="Szybki nabór", deadline=date(2026, 11, 25), district="ełcki",
                        sessions=parse_sessions("26.11 9-12", TODAY, calendar_tz()))
    async with ctx.db.transaction() as session:
        listed = await list_open_trainings(session, ctx)
        assert [v.training.id for v in listed] == [sooner.training.id, later.training.id]
        assert [len(v.sessions) for v in listed] == [1, 3]
        local = await list_open_trainings(session, ctx, area="olsztyński")
        assert [v.training.title for v in local] == ["Późny nabór"]
        subregion = await list_open_trainings(session, ctx, area="podregion-elcki")
        assert [v.training.title for v in subregion] == ["Szybki nabór"]
    ctx.clock = lambda: datetime(2026, 11, 25, 22, 59, tzinfo=UTC)  # 25.11, 23:59 local
    async with ctx.db.transaction() as session:
        assert len(await list_open_trainings(session, ctx)) == 2
    ctx.clock = lambda: datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # 26.11 00:00 local
    async with ctx.db.transaction() as session:
        assert [v.training.title for v in await list_open_trainings(session, ctx)] == ["Późny nabór"]


async def test_close_expired_once(ctx: AppContext) -> None:
    alice, _, _ = await _setup(ctx)
    view = await _add(ctx, alice, deadline=date(2026, 11, 30))
    async with ctx.db.transaction() as session:
        assert await close_expired(session, ctx) == []
    ctx.clock = lambda: datetime(2026, 12, 1, 7, tzinfo=UTC)
    async with ctx.db.transaction() as session:
        closed = await close_expired(session, ctx)
        assert [c.training.id for c in closed] == [view.training.id]
        assert closed[0].poster_id == alice.id
        assert closed[0].training.status == TrainingStatus.CLOSED
        assert closed[0].training.closed_at is not None
    async with ctx.db.transaction() as session:
        assert await close_expired(session, ctx) == []
        assert await list_open_trainings(session, ctx) == []
        # the sessions stay in the calendar: the training still happens
        found = await list_events(session, ctx, start=ctx.now(), end=ctx.now() + timedelta(40))
        assert len(found) == 3


async def test_reminder_the_day_before_the_deadline_once(ctx: AppContext) -> None:
    alice, bob, _ = await _setup(ctx)
    view = await _add(ctx, alice, deadline=date(2026, 11, 30))
    await _add(ctx, bob, title="Inny nabór", deadline=date(2026, 12, 2))
    async with ctx.db.transaction() as session:
        assert await due_reminders(session, ctx) == []
    ctx.clock = lambda: datetime(2026, 11, 29, 8, tzinfo=UTC)
    async with ctx.db.transaction() as session:
        due = await due_reminders(session, ctx)
        assert [d.training.id for d in due] == [view.training.id]
        assert due[0].poster_id == alice.id and due[0].training.reminded_at is not None
    async with ctx.db.transaction() as session:
        assert await due_reminders(session, ctx) == []


async def test_reminder_skips_cancelled_notices(ctx: AppContext) -> None:
    alice, _, _ = await _setup(ctx)
    view = await _add(ctx, alice, deadline=date(2026, 11, 30))
    async with ctx.db.transaction() as session:
        await cancel_training(session, ctx, Actor.cli(), view.training.id)
    ctx.clock = lambda: datetime(2026, 11, 29, 8, tzinfo=UTC)
    async with ctx.db.transaction() as session:
        assert await due_reminders(session, ctx) == []
    ctx.clock = lambda: datetime(2026, 12, 2, 8, tzinfo=UTC)
    async with ctx.db.transaction() as session:
        assert await close_expired(session, ctx) == []


async def test_moderated_notice_waits_with_its_sessions(db_url: str, tmp_path: Path) -> None:
    ctx = await make_context(db_url, tmp_path / "data", calendar={"moderation": "all"})
    try:
        alice, _, _ = await _setup(ctx)
        view = await _add(ctx, alice)
        assert view.training.moderation == Moderation.PENDING
        assert {e.moderation for e in view.sessions} == {Moderation.PENDING}
        async with ctx.db.transaction() as session:
            assert await list_open_trainings(session, ctx) == []
            assert len(await list_open_trainings(session, ctx, include_pending=True)) == 1
    finally:
        await ctx.db.dispose()


@pytest.mark.parametrize(("text", "expected"), [
    ("", None), ("bezpłatne", None), ("Free", None), ("0", None), ("0,00", None),
    ("150", Decimal("150.00")), ("99,50 zł", Decimal("99.50")), ("1 200 PLN", Decimal("1200.00")),
    ("12.5", Decimal("12.50")),
])
def test_parse_cost(text: str, expected: Decimal | None) -> None:
    assert parse_cost(text) == expected


@pytest.mark.parametrize("text", ["dużo", "-10", "1e3x", "NaN", "100001", "1.999"])
def test_parse_cost_refusals(text: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_cost(text)
    assert info.value.key == "training.error.cost"
    assert "150" in info.value.localized("pl")


def test_parse_places_and_apply() -> None:
    assert parse_places("") is None and parse_places("25") == 25
    for bad in ("abc", "0", "-3", "20000"):
        with pytest.raises(ValidationFailed):
            parse_places(bad)
    assert parse_apply("www.alfa.org/zapisy").value == "https://www.alfa.org/zapisy"
    assert parse_apply("https://alfa.org").kind == "url"
    assert parse_apply("biuro@alfa.org").kind == "email"
    assert parse_apply("89 523 45 67").kind == "phone"
    for bad in ("https://", "123", "http://x y.org", "napisz do nas"):
        with pytest.raises(ValidationFailed):
            parse_apply(bad)


async def test_deadline_job_without_a_bot_closes_but_keeps_reminders(ctx: AppContext) -> None:
    from infranet.bot.handlers.training_deadlines import deadline_job

    alice, _, _ = await _setup(ctx)
    await _add(ctx, alice, deadline=date(2026, 11, 30))
    await _add(ctx, alice, title="Wcześniejszy", deadline=date(2026, 11, 24),
               sessions=parse_sessions("25.11 9-12", TODAY, calendar_tz()))
    ctx.clock = lambda: datetime(2026, 11, 29, 8, tzinfo=UTC)  # no Telegram token configured
    assert await deadline_job(ctx) == (0, 1)
    async with ctx.db.transaction() as session:
        rows = (await session.scalars(select(Training).order_by(Training.id))).all()
        assert [r.status for r in rows] == [TrainingStatus.OPEN, TrainingStatus.CLOSED]
        assert rows[0].reminded_at is None  # the reminder waits for a bot
