"""Events: validation messages, add/update/cancel/list, recurrence across DST, permissions,
moderation. Every test runs on SQLite and PostgreSQL (the `ctx` fixture)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from infranet.calendar.event_input import EventInput, validate_event
from infranet.calendar.event_queries import first_events, list_events
from infranet.calendar.events import add_event, cancel_event, get_event, moderate_event, update_event
from infranet.context import AppContext
from infranet.errors import NotFound, PermissionDenied, ValidationFailed
from infranet.network.orgs import OrgInput, add_organisation
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, Member, MemberStatus, Organisation, Role
from tests.conftest import make_context

W = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW


def timed(title: str = "Szkolenie", start: datetime | None = None, hours: float = 2, **kw) -> EventInput:
    start = start or datetime(2027, 1, 15, 10, 0, tzinfo=W)
    kw.setdefault("district", "olsztyński")
    kw.setdefault("category", "training")
    kw.setdefault("audiences", ["ngo"])
    return EventInput(title=title, start=start, end=start + timedelta(hours=hours), **kw)


async def org_and_members(ctx: AppContext) -> tuple[Organisation, Organisation, Member, Member, Member]:
    async with ctx.db.transaction() as s:
        a = await add_organisation(s, ctx, Actor.cli(), OrgInput(name="COP A", contact_email="a@example.org"))
        b = await add_organisation(s, ctx, Actor.cli(), OrgInput(name="OWES B"))
        ma = Member(telegram_id=1, organisation_id=a.id, status=MemberStatus.APPROVED)
        mb = Member(telegram_id=2, organisation_id=b.id, status=MemberStatus.APPROVED)
        admin = Member(telegram_id=3, role=Role.ADMIN, status=MemberStatus.APPROVED)
        s.add_all([ma, mb, admin])
        await s.flush()
    return a, b, ma, mb, admin


@pytest.mark.parametrize(("change", "message"), [
    ({"title": "  "}, "Title: this is required"),
    ({"title": "x" * 201}, "Title: 201 characters, at most 200"),
    ({"description": "y" * 4001}, "Description: 4001 characters, at most 4000"),
    ({"title": "\x1b\u202e\x00\x07"}, "Title: this is required"),  # nothing visible in it
    ({"district": "olsztynsky"}, "did you mean: olsztyński"),
    ({"category": "party"}, "'party' is not one of training"),
    ({"audiences": ["aliens"]}, "unknown aliens"),
    ({"url": "javascript:alert(1)"}, "must start with http:// or https://"),
    ({"rrule": "FREQ=HOURLY;COUNT=3"}, "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"),
    ({"rrule": "FREQ=WEEKLY;COUNT=2;UNTIL=20270101"}, "at most one of COUNT"),
    ({"rrule": "FREQ=WEEKLY;COUNT=5000"}, "COUNT must be a number from 1 to 1000"),
])
async def test_validation_messages_name_the_problem(ctx: AppContext, change: dict, message: str) -> None:
    data = timed()
    for key, value in change.items():
        setattr(data, key, value)
    with pytest.raises(ValidationFailed) as info:
        validate_event(ctx, data)
    assert message in str(info.value)


async def test_end_before_start_too_far_and_dst_gap(ctx: AppContext) -> None:
    start = datetime(2027, 1, 15, 10, 0, tzinfo=W)
    with pytest.raises(ValidationFailed, match="is not after the start"):
        validate_event(ctx, EventInput("X", start, start - timedelta(hours=1)))
    with pytest.raises(ValidationFailed, match=r"too far ahead.*23\.11\.2028"):
        validate_event(ctx, timed(start=datetime(2028, 11, 24, 10, tzinfo=W)))
    with pytest.raises(ValidationFailed, match=r"02:30 does not exist on 28\.3\.2027 in Europe/Warsaw"):
        validate_event(ctx, EventInput("X", datetime(2027, 3, 28, 2, 30), datetime(2027, 3, 28, 4, 0)))
    with pytest.raises(ValidationFailed, match="needs a time of day"):
        validate_event(ctx, EventInput("X", date(2027, 1, 1), date(2027, 1, 2)))
    with pytest.raises(ValidationFailed, match="lasts more than 31 days"):
        validate_event(ctx, EventInput("X", date(2027, 1, 1), date(2027, 2, 5), all_day=True))
    # Polish-message variant of an error
    with pytest.raises(ValidationFailed) as info:
        validate_event(ctx, timed(title="x" * 300))
    assert "Tytuł: 300 znaków, najwyżej 200" in info.value.localized("pl")


async def test_all_day_stored_as_local_midnights_with_inclusive_last_day(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        event = await add_event(s, ctx, Actor.cli(), EventInput(
            "Targi", date(2027, 3, 27), date(2027, 3, 28), all_day=True, district="giżycki"))
    # 27 March is CET (+1), the day after the last day (29th) is CEST (+2).
    assert event.starts_at == datetime(2027, 3, 26, 23, 0, tzinfo=UTC)
    assert event.ends_at == datetime(2027, 3, 28, 22, 0, tzinfo=UTC)
    async with ctx.db.transaction() as s:
        occ = await list_events(s, ctx, start=datetime(2027, 3, 28, 12, tzinfo=W),
                                end=datetime(2027, 3, 28, 13, tzinfo=W))
    assert [o.event.id for o in occ] == [event.id]
    assert (occ[0].first_day(W), occ[0].last_day(W)) == (date(2027, 3, 27), date(2027, 3, 28))


async def test_weekly_series_keeps_wall_clock_time_across_both_dst_changes(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        spring = await add_event(s, ctx, Actor.cli(), timed(
            "Dyżur", datetime(2027, 3, 20, 10, 0, tzinfo=W), rrule="FREQ=WEEKLY;COUNT=3"))
        autumn = await add_event(s, ctx, Actor.cli(), timed(
            "Spotkanie", datetime(2027, 10, 23, 18, 0, tzinfo=W), hours=1.5,
            rrule="FREQ=WEEKLY;UNTIL=20271106", district="ełcki"))
    async with ctx.db.transaction() as s:
        occs = await list_events(s, ctx, start=datetime(2027, 3, 1, tzinfo=UTC),
                                 end=datetime(2027, 12, 1, tzinfo=UTC))
    by_event: dict[int, list] = {}
    for o in occs:
        by_event.setdefault(o.event.id, []).append(o)
    local = [(o.start.astimezone(W).strftime("%m-%d %H:%M"), o.end.astimezone(W).strftime("%H:%M"))
             for o in by_event[spring.id]]
    assert local == [("03-20 10:00", "12:00"), ("03-27 10:00", "12:00"), ("04-03 10:00", "12:00")]
    assert [o.start.hour for o in by_event[spring.id]] == [9, 9, 8]  # UTC moves, wall clock stays
    local = [o.start.astimezone(W).strftime("%m-%d %H:%M") for o in by_event[autumn.id]]
    assert local == ["10-23 18:00", "10-30 18:00", "11-06 18:00"]
    assert autumn.rrule == "FREQ=WEEKLY;UNTIL=20271106T225959Z"
    assert autumn.last_ends_at == datetime(2027, 11, 6, 18, 30, tzinfo=UTC)


async def test_list_filters_area_parents_children_category_audience_org(ctx: AppContext) -> None:
    a, b, *_ = await org_and_members(ctx)
    async with ctx.db.transaction() as s:
        ids = {}
        for key, district, category, audiences, org in [
            ("powiat", "olsztyński", "training", ["ngo"], a.id),
            ("sub", "podregion olsztyński", "meeting", ["youth"], b.id),
            ("region", "region", "conference", [], a.id),
            ("other", "ełcki", "training", ["ngo"], b.id),
        ]:
            ev = await add_event(s, ctx, Actor.cli(), timed(key, district=district, category=category,
                                                            audiences=audiences, organisation_id=org))
            ids[key] = ev.id
    window = {"start": datetime(2027, 1, 1, tzinfo=UTC), "end": datetime(2027, 2, 1, tzinfo=UTC)}
    async with ctx.db.transaction() as s:
        def names(occs):
            return sorted(o.event.title for o in occs)
        assert names(await list_events(s, ctx, **window, area="olsztynski")) == ["powiat", "region", "sub"]
        assert names(await list_events(s, ctx, **window, area="podregion-olsztynski")) == [
            "powiat", "region", "sub"]
        assert names(await list_events(s, ctx, **window, area="2805")) == ["other", "region"]
        assert names(await list_events(s, ctx, **window, category="training")) == ["other", "powiat"]
        assert names(await list_events(s, ctx, **window, audience="youth")) == ["region", "sub"]
        assert names(await list_events(s, ctx, **window, organisation_id=b.id)) == ["other", "sub"]
        assert names(await list_events(s, ctx, start=datetime(2027, 1, 15, 11, 59, tzinfo=W),
                                       end=datetime(2027, 1, 15, 12, 0, tzinfo=W))) == [
            "other", "powiat", "region", "sub"]
        assert await list_events(s, ctx, start=datetime(2027, 1, 15, 12, 0, tzinfo=W),
                                 end=datetime(2027, 1, 16, tzinfo=W)) == []


async def test_update_bumps_revision_and_cancel_keeps_the_event(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        event = await add_event(s, ctx, Actor.cli(), timed("Stary tytuł"))
        uid = event.uid
    async with ctx.db.transaction() as s:
        updated = await update_event(s, ctx, Actor.cli(), event.id,
                                     timed("Nowy tytuł", datetime(2027, 1, 16, 9, 0, tzinfo=W)))
        assert (updated.revision, updated.uid, updated.title) == (1, uid, "Nowy tytuł")
    async with ctx.db.transaction() as s:
        cancelled = await cancel_event(s, ctx, Actor.cli(), event.id)
        assert (cancelled.status, cancelled.revision, cancelled.cancelled_at) == ("cancelled", 2, NOW)
    window = {"start": datetime(2027, 1, 1, tzinfo=UTC), "end": datetime(2027, 2, 1, tzinfo=UTC)}
    async with ctx.db.transaction() as s:
        assert await list_events(s, ctx, **window) == []
        kept = await list_events(s, ctx, **window, include_cancelled=True)
        assert [o.event.status for o in kept] == ["cancelled"]
        with pytest.raises(ValidationFailed, match="cancelled and cannot be changed"):
            await update_event(s, ctx, Actor.cli(), event.id, timed("Znowu"))
        actions = (await s.scalars(select(AuditLog.action).order_by(AuditLog.id))).all()
        assert actions == ["event.add", "event.update", "event.cancel"]
        with pytest.raises(NotFound):
            await get_event(s, 999)


async def test_only_the_organisations_members_and_admins_may_change_an_event(ctx: AppContext) -> None:
    a, _b, ma, mb, admin = await org_and_members(ctx)
    async with ctx.db.transaction() as s:
        ma, mb, admin = [await s.get(Member, m.id) for m in (ma, mb, admin)]
        event = await add_event(s, ctx, Actor.of(ma), timed("Nasze"))  # org defaults to the member's
        assert event.organisation_id == a.id and event.member_id == ma.id
        with pytest.raises(PermissionDenied):
            await add_event(s, ctx, Actor.of(mb), timed("Cudze", organisation_id=a.id))
    async with ctx.db.transaction() as s:
        mb = await s.get(Member, mb.id)
        with pytest.raises(PermissionDenied):
            await update_event(s, ctx, Actor.of(mb), event.id, timed("Przejęte"))
        with pytest.raises(PermissionDenied):
            await cancel_event(s, ctx, Actor.of(mb), event.id)
        pending = Member(telegram_id=9, organisation_id=a.id, status=MemberStatus.PENDING)
        s.add(pending)
        await s.flush()
        with pytest.raises(PermissionDenied):
            await cancel_event(s, ctx, Actor.of(pending), event.id)
    async with ctx.db.transaction() as s:
        assert (await get_event(s, event.id)).title == "Nasze"
        admin = await s.get(Member, admin.id)
        await cancel_event(s, ctx, Actor.of(admin), event.id)
        assert (await get_event(s, event.id)).status == "cancelled"


async def test_moderation_new_members_until_the_organisation_is_trusted(db_url: str, tmp_path) -> None:
    ctx = await make_context(db_url, tmp_path, calendar={"moderation": "new_members"})
    ctx.clock = lambda: NOW
    try:
        a, _b, ma, mb, admin = await org_and_members(ctx)
        window = {"start": datetime(2027, 1, 1, tzinfo=UTC), "end": datetime(2027, 2, 1, tzinfo=UTC)}
        async with ctx.db.transaction() as s:
            ma = await s.get(Member, ma.id)
            first = await add_event(s, ctx, Actor.of(ma), timed("Pierwsze"))
            assert first.moderation == "pending"
            assert await list_events(s, ctx, **window) == []
            own = await list_events(s, ctx, **window, include_pending=True, viewer=Actor.of(ma))
            assert [o.event.title for o in own] == ["Pierwsze"]
            mb = await s.get(Member, mb.id)
            assert await list_events(s, ctx, **window, include_pending=True, viewer=Actor.of(mb)) == []
            with pytest.raises(PermissionDenied):
                await moderate_event(s, ctx, Actor.of(ma), first.id, True)
        async with ctx.db.transaction() as s:
            admin = await s.get(Member, admin.id)
            await moderate_event(s, ctx, Actor.of(admin), first.id, True)
            assert (await s.get(Organisation, a.id)).trusted
        async with ctx.db.transaction() as s:
            ma = await s.get(Member, ma.id)
            second = await add_event(s, ctx, Actor.of(ma),
                                     timed("Drugie", datetime(2027, 1, 20, 10, tzinfo=W)))
            assert second.moderation == "published"
            assert [o.event.title for o in await list_events(s, ctx, **window)] == ["Pierwsze", "Drugie"]
    finally:
        await ctx.db.dispose()


async def test_duplicate_uid_is_refused(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        await add_event(s, ctx, Actor.cli(), timed(uid="same@x"))
        with pytest.raises(ValidationFailed, match="UID 'same@x' already exists"):
            await add_event(s, ctx, Actor.cli(), timed(uid="same@x"))


async def test_moderation_all_holds_every_members_event(db_url: str, tmp_path) -> None:
    ctx = await make_context(db_url, tmp_path, calendar={"moderation": "all"})
    ctx.clock = lambda: NOW
    try:
        a, _b, ma, _mb, admin = await org_and_members(ctx)
        async with ctx.db.transaction() as s:
            (await s.get(Organisation, a.id)).trusted = True  # "all" ignores trust
            ma, admin = await s.get(Member, ma.id), await s.get(Member, admin.id)
            held = await add_event(s, ctx, Actor.of(ma), timed("Członek"))
            published = await add_event(s, ctx, Actor.of(admin), timed("Admin", organisation_id=a.id))
            assert (held.moderation, published.moderation) == ("pending", "published")
            await moderate_event(s, ctx, Actor.of(admin), held.id, False)
            window = {"start": datetime(2027, 1, 1, tzinfo=UTC), "end": datetime(2027, 2, 1, tzinfo=UTC)}
            assert [o.event.title for o in await list_events(s, ctx, **window, include_pending=True)] == [
                "Admin"]  # rejected events are shown to nobody
    finally:
        await ctx.db.dispose()


async def test_first_events_is_the_head_of_list_events_with_its_count(ctx: AppContext) -> None:
    """/check shows the first occurrences of a day and "and N more": `first_events` must give
    exactly the head of `list_events` and its length, whatever mix of single, long, all-day,
    recurring, cancelled and pending events and whatever area and limit."""
    a, b, *_ = await org_and_members(ctx)
    rng = random.Random(5122026)
    districts = ["olsztyński", "m-olsztyn", "podregion olsztyński", "region", "ełcki", "podregion ełcki"]
    base = datetime(2027, 3, 20, tzinfo=W)
    async with ctx.db.transaction() as s:
        for i in range(90):
            start = base + timedelta(days=rng.randint(-35, 20), minutes=30 * rng.randint(14, 40))
            kind = rng.random()
            if kind < 0.15:  # all-day, up to three days
                first = start.date()
                last = first + timedelta(days=rng.randint(0, 2))
                data = EventInput(title=f"Całodniowe {i}", start=first, end=last, all_day=True,
                                  district=rng.choice(districts))
            else:
                hours = rng.choice([1, 2, 3]) if kind < 0.9 else 24 * rng.randint(2, 30)  # some long ones
                data = timed(f"Wydarzenie {i}", start=start, hours=hours, district=rng.choice(districts))
            if rng.random() < 0.15:
                data.rrule = rng.choice(["FREQ=WEEKLY;COUNT=5", "FREQ=MONTHLY;COUNT=2"])
            data.organisation_id = rng.choice([a.id, b.id, None])
            ev = await add_event(s, ctx, Actor.cli(), data)
            if rng.random() < 0.1:
                await cancel_event(s, ctx, Actor.cli(), ev.id)
    async with ctx.db.transaction() as s:
        for _ in range(30):
            day = base.date() + timedelta(days=rng.randint(-10, 15))
            start = datetime(day.year, day.month, day.day, tzinfo=W).astimezone(UTC)
            end = start + timedelta(days=rng.choice([1, 1, 3]))
            area = rng.choice([None, None, *districts])
            limit = rng.choice([1, 3, 15])
            full = await list_events(s, ctx, start=start, end=end, area=area)
            page = await first_events(s, ctx, start=start, end=end, area=area, limit=limit)
            assert page.total == len(full), (day, area)
            assert [(o.event.id, o.start, o.end) for o in page.occurrences] == \
                [(o.event.id, o.start, o.end) for o in full[:limit]], (day, area, limit)
            for o in page.occurrences:  # what /check prints is loaded
                assert o.event.district.name
                assert o.event.organisation is None or o.event.organisation.name in ("COP A", "OWES B")
        busy = [await list_events(s, ctx, start=base.astimezone(UTC) + timedelta(days=d),
                                  end=base.astimezone(UTC) + timedelta(days=d + 1)) for d in range(-10, 15)]
        assert max(len(day) for day in busy) > 3  # the data does make heads shorter than the lists
        with pytest.raises(ValueError):
            await first_events(s, ctx, start=base, end=base + timedelta(days=1), limit=0)
