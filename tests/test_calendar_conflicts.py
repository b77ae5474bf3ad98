"""Date conflicts: overlap rules at DST changes and midnight, all-day vs timed, multi-day,
recurring, places and scope, severity, duplicates, holidays, suggestions — and a property
test comparing find_conflicts with a brute-force oracle on random data. Both engines."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import create_async_engine

from infranet.calendar.conflicts import find_conflicts
from infranet.calendar.event_input import EventInput, validate_event
from infranet.calendar.events import add_event, cancel_event, update_event
from infranet.calendar.free_dates import suggest_dates
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.network.orgs import OrgInput, add_organisation
from infranet.storage.actors import Actor
from infranet.storage.models import Base, Event
from tests.conftest import make_context

W = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(request: pytest.FixtureRequest) -> None:
    if "ctx" in request.fixturenames:
        request.getfixturevalue("ctx").clock = lambda: NOW


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=W)


def ev(title: str, start, end, *, all_day: bool = False, district: str = "olsztyński",
       category: str = "training", audiences: list[str] | None = None, **kw) -> EventInput:
    return EventInput(title=title, start=start, end=end, all_day=all_day, district=district,
                      category=category, audiences=["ngo"] if audiences is None else audiences, **kw)


async def store(ctx: AppContext, *events: EventInput) -> list[int]:
    async with ctx.db.transaction() as s:
        return [(await add_event(s, ctx, Actor.cli(), e)).id for e in events]


async def check(ctx: AppContext, candidate: EventInput, **kw):
    async with ctx.db.transaction() as s:
        return await find_conflicts(s, ctx, candidate, **kw)


async def conflict_titles(ctx: AppContext, candidate: EventInput) -> list[str]:
    return sorted(c.event.title for c in (await check(ctx, candidate)).conflicts)


async def test_overlap_half_open_and_midnight(ctx: AppContext) -> None:
    await store(ctx,
                ev("rano", at(2027, 2, 10, 8), at(2027, 2, 10, 10)),
                ev("do północy", at(2027, 2, 10, 20), at(2027, 2, 11, 0)),
                ev("przez północ", at(2027, 2, 11, 23), at(2027, 2, 12, 1)))
    assert await conflict_titles(ctx, ev("x", at(2027, 2, 10, 10), at(2027, 2, 10, 12))) == []
    assert await conflict_titles(ctx, ev("x", at(2027, 2, 10, 9, 59), at(2027, 2, 10, 12))) == ["rano"]
    assert await conflict_titles(ctx, ev("x", at(2027, 2, 11, 0), at(2027, 2, 11, 2))) == []
    assert await conflict_titles(ctx, ev("x", at(2027, 2, 12, 0, 30), at(2027, 2, 12, 3))) == [
        "przez północ"]
    # An all-day event overlaps every event on its days, and nothing the day after.
    assert await conflict_titles(ctx, ev("x", date(2027, 2, 10), date(2027, 2, 10), all_day=True)) == [
        "do północy", "rano"]
    assert await conflict_titles(ctx, ev("x", date(2027, 2, 12), date(2027, 2, 12), all_day=True)) == [
        "przez północ"]


async def test_dst_days_last_sundays_of_march_and_october(ctx: AppContext) -> None:
    # 28 March 2027 has 23 hours, 31 October 2027 has 25.
    await store(ctx,
                ev("marzec cały dzień", date(2027, 3, 28), date(2027, 3, 28), all_day=True),
                ev("październik 01:30-02:30 CEST", datetime(2027, 10, 30, 23, 30, tzinfo=UTC),
                   datetime(2027, 10, 31, 0, 30, tzinfo=UTC)))
    # 23:30 local on 28 March (21:30 UTC) is still that day: conflict; 00:00 on the 29th is not.
    assert await conflict_titles(ctx, ev("x", at(2027, 3, 28, 23, 30), at(2027, 3, 29, 0))) == [
        "marzec cały dzień"]
    assert await conflict_titles(ctx, ev("x", at(2027, 3, 29, 0), at(2027, 3, 29, 1))) == []
    assert await conflict_titles(ctx, ev("x", at(2027, 3, 27, 23), at(2027, 3, 28, 0))) == []
    # The repeated hour: 02:10 CET (01:10 UTC) is after 02:30 CEST (00:30 UTC) ended.
    later = datetime(2027, 10, 31, 2, 10, tzinfo=W).replace(fold=1)
    assert await conflict_titles(ctx, ev("x", later, later + timedelta(minutes=30))) == []
    earlier = datetime(2027, 10, 31, 2, 10, tzinfo=W)  # fold=0: CEST, 00:10 UTC
    assert await conflict_titles(ctx, ev("x", earlier, earlier + timedelta(minutes=30))) == [
        "październik 01:30-02:30 CEST"]


async def test_multi_day_and_recurring(ctx: AppContext) -> None:
    await store(ctx,
                ev("targi", date(2027, 5, 7), date(2027, 5, 9), all_day=True, district="region"),
                ev("cykl", at(2027, 3, 10, 17), at(2027, 3, 10, 19), rrule="FREQ=WEEKLY;COUNT=6"))
    assert await conflict_titles(ctx, ev("x", at(2027, 5, 9, 22), at(2027, 5, 9, 23))) == ["targi"]
    assert await conflict_titles(ctx, ev("x", at(2027, 5, 10, 0), at(2027, 5, 10, 1))) == []
    # The 4th meeting, after the DST change, is still at 17:00 local.
    report = await check(ctx, ev("x", at(2027, 3, 31, 18), at(2027, 3, 31, 20)))
    assert [(c.event.title, c.start) for c in report.conflicts] == [
        ("cykl", datetime(2027, 3, 31, 15, 0, tzinfo=UTC))]
    assert await conflict_titles(ctx, ev("x", at(2027, 4, 21, 17), at(2027, 4, 21, 19))) == []  # after COUNT
    # A recurring candidate collides through any of its occurrences.
    series = ev("x", at(2027, 4, 30, 9), at(2027, 4, 30, 10), rrule="FREQ=WEEKLY;COUNT=2")
    assert await conflict_titles(ctx, series) == ["targi"]


async def test_events_up_to_a_day_and_longer_ones_are_found_at_their_edges(ctx: AppContext) -> None:
    """Checks look back a day for most events and a month only among the longer ones
    (`long_span`): an event of exactly the 25-hour DST day is one of the first, one an hour
    longer is one of the others, and both collide up to their last minute."""
    ids = await store(ctx,
                      ev("doba zmiany czasu", date(2027, 10, 31), date(2027, 10, 31), all_day=True),
                      ev("nocne, 26 godzin", at(2027, 10, 30, 20), at(2027, 10, 31, 21)),
                      ev("cały miesiąc", date(2027, 10, 2), date(2027, 10, 31), all_day=True,
                         category="fair"))
    async with ctx.db.read() as s:
        flags = [(await s.get(Event, i)).long_span for i in ids]
    assert flags == [False, True, True]
    assert await conflict_titles(ctx, ev("x", at(2027, 10, 31, 20, 30), at(2027, 10, 31, 23, 30))) == [
        "cały miesiąc", "doba zmiany czasu", "nocne, 26 godzin"]
    assert await conflict_titles(ctx, ev("x", at(2027, 10, 31, 22), at(2027, 10, 31, 23, 30))) == [
        "cały miesiąc", "doba zmiany czasu"]
    assert await conflict_titles(ctx, ev("x", at(2027, 11, 1, 0), at(2027, 11, 1, 1))) == []
    # Shortened to an evening, the overnight event is one of the many again.
    async with ctx.db.transaction() as s:
        await update_event(s, ctx, Actor.cli(), ids[1], ev("nocne, 26 godzin", at(2027, 10, 31, 20),
                                                          at(2027, 10, 31, 23)))
    async with ctx.db.read() as s:
        assert (await s.get(Event, ids[1])).long_span is False
    assert await conflict_titles(ctx, ev("x", at(2027, 10, 31, 22), at(2027, 10, 31, 23, 30))) == [
        "cały miesiąc", "doba zmiany czasu", "nocne, 26 godzin"]
    # Free dates skip the month the long fair fills, in its district: the nearest Wednesday
    # after it comes first.
    async with ctx.db.read() as s:
        found = await suggest_dates(s, ctx, ev("x", at(2027, 10, 20, 10), at(2027, 10, 20, 12)))
    assert found[0] == (at(2027, 11, 3, 10), at(2027, 11, 3, 12))
    assert not any(date(2027, 10, 2) <= start.date() <= date(2027, 10, 31) for start, _end in found)


async def test_places_scope_and_severity(db_url: str, tmp_path: Path) -> None:
    for scope, expected in [("powiat", ["powiat"]), ("subregion", ["powiat", "subregion"]),
                            ("region", ["powiat", "region", "subregion"])]:
        ctx = await make_context(db_url, tmp_path, calendar={"conflicts": {"scope": scope}})
        ctx.clock = lambda: NOW
        try:
            async with ctx.db.transaction() as s:
                await s.execute(delete(Event))
            t = (at(2027, 2, 3, 10), at(2027, 2, 3, 12))
            await store(ctx, ev("powiat", *t), ev("subregion", *t, district="podregion olsztyński"),
                        ev("region", *t, district="region"), ev("obok", *t, district="m. Olsztyn"),
                        ev("inny podregion", *t, district="ełcki"))
            assert await conflict_titles(ctx, ev("x", *t)) == expected, scope
        finally:
            await ctx.db.dispose()


async def test_severity_depends_on_audience_category_and_setting(db_url: str, tmp_path: Path) -> None:
    for sensitive in (True, False):
        ctx = await make_context(db_url, tmp_path, calendar={"conflicts": {"audience_sensitive": sensitive}})
        ctx.clock = lambda: NOW
        try:
            async with ctx.db.transaction() as s:
                await s.execute(delete(Event))
            t = (at(2027, 2, 3, 10), at(2027, 2, 3, 12))
            await store(ctx, ev("ta sama grupa", *t, category="meeting", audiences=["youth"]),
                        ev("ta sama kategoria", *t, category="training", audiences=["seniors"]),
                        ev("nic wspólnego", *t, category="fair", audiences=["seniors"]),
                        ev("region", *t, district="region", category="training", audiences=["youth"]))
            report = await check(ctx, ev("x", *t, category="training", audiences=["youth"]))
            severity = {c.event.title: c.severity for c in report.conflicts}
            assert severity == {"ta sama grupa": "high", "ta sama kategoria": "high",
                                "nic wspólnego": "low" if sensitive else "high", "region": "low"}
            assert [c.severity for c in report.conflicts][:2] == ["high", "high"]  # high first
        finally:
            await ctx.db.dispose()


async def test_conflict_carries_the_organisers_contact(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        org = await add_organisation(s, ctx, Actor.cli(), OrgInput(
            name="LGD Mazury", contact_email="lgd@example.org", phone="+48 87 000 00 00"))
    await store(ctx, ev("Warsztaty", at(2027, 2, 3, 10), at(2027, 2, 3, 12), organisation_id=org.id))
    report = await check(ctx, ev("Moje", at(2027, 2, 3, 11), at(2027, 2, 3, 13)))
    (c,) = report.conflicts
    assert (c.organisation_name, c.contact_email, c.phone, c.relation) == (
        "LGD Mazury", "lgd@example.org", "+48 87 000 00 00", "powiat")


async def test_duplicates_are_not_conflicts_and_cancelled_pending_are_ignored(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        org = await add_organisation(s, ctx, Actor.cli(), OrgInput(name="COP"))
    ids = await store(ctx,
                      ev("Szkolenie z RODO dla NGO", at(2027, 2, 3, 10), at(2027, 2, 3, 12)),
                      ev("Zupełnie inne", at(2027, 2, 3, 15), at(2027, 2, 3, 16), organisation_id=org.id),
                      ev("Odwołane", at(2027, 2, 3, 10), at(2027, 2, 3, 12)))
    async with ctx.db.transaction() as s:
        await cancel_event(s, ctx, Actor.cli(), ids[2])
    # Very similar title, same day and district, other hours: a probable duplicate.
    report = await check(ctx, ev("Szkolenie z RODO dla NGO!", at(2027, 2, 3, 13), at(2027, 2, 3, 14)))
    assert [d.event.id for d in report.duplicates] == [ids[0]] and report.conflicts == []
    # Same organisation, overlapping times, same district: duplicate too.
    report = await check(ctx, ev("Coś", at(2027, 2, 3, 15, 30), at(2027, 2, 3, 17), organisation_id=org.id))
    assert [d.event.id for d in report.duplicates] == [ids[1]] and report.conflicts == []
    # Excluding the event itself (editing it) reports nothing.
    report = await check(ctx, ev("Szkolenie z RODO dla NGO", at(2027, 2, 3, 10), at(2027, 2, 3, 12)),
                         exclude_event_id=ids[0])
    assert report.duplicates == [] and report.conflicts == []


async def test_holiday_and_bridge_day_warnings(ctx: AppContext) -> None:
    # 11 November 2027 is a Thursday: Friday the 12th is a bridge day.
    report = await check(ctx, ev("x", at(2027, 11, 11, 10), at(2027, 11, 11, 12)))
    assert [(w.kind, w.name) for w in report.warnings] == [("holiday", "Narodowe Święto Niepodległości")]
    assert "public holiday: National Independence Day" in report.warnings[0].message("en")
    report = await check(ctx, ev("x", at(2027, 11, 12, 10), at(2027, 11, 12, 12)))
    assert [(w.kind, w.day) for w in report.warnings] == [("bridge", date(2027, 11, 12))]
    assert "dzień pomostowy" in report.warnings[0].message("pl")
    # Monday 2 Nov 2026? No: 1 Nov 2026 is a Sunday, so 2 Nov is an ordinary working day.
    assert (await check(ctx, ev("x", at(2026, 12, 2, 10), at(2026, 12, 2, 12)))).warnings == []
    # A multi-day all-day event warns about each such day once.
    report = await check(ctx, ev("x", date(2027, 4, 30), date(2027, 5, 3), all_day=True))
    assert [w.day for w in report.warnings] == [date(2027, 5, 1), date(2027, 5, 3)]


async def test_suggestions_same_weekday_first_avoid_conflicts_and_holidays(ctx: AppContext) -> None:
    # Wednesdays 3 and 10 Feb are taken; 17 Feb free.
    await store(ctx, ev("a", at(2027, 2, 3, 10), at(2027, 2, 3, 12)),
                ev("b", at(2027, 2, 10, 9), at(2027, 2, 10, 11)),
                ev("c", at(2027, 1, 27, 11), at(2027, 1, 27, 13)))
    async with ctx.db.transaction() as s:
        found = await suggest_dates(s, ctx, ev("x", at(2027, 2, 3, 10), at(2027, 2, 3, 12)), n=3)
    assert found == [(at(2027, 2, 17, 10), at(2027, 2, 17, 12)), (at(2027, 1, 20, 10), at(2027, 1, 20, 12)),
                     (at(2027, 2, 24, 10), at(2027, 2, 24, 12))]
    # All-day candidate on 11 November: suggestions are dates and avoid the bridge day.
    async with ctx.db.transaction() as s:
        found = await suggest_dates(s, ctx, ev("x", date(2027, 11, 11), date(2027, 11, 11), all_day=True))
    assert found[:2] == [(date(2027, 11, 18), date(2027, 11, 18)), (date(2027, 11, 4), date(2027, 11, 4))]
    assert all(d.weekday() == 3 for d, _ in found)
    assert (date(2027, 11, 12), date(2027, 11, 12)) not in found
    # A suggestion across the DST change keeps the wall-clock time.
    async with ctx.db.transaction() as s:
        found = await suggest_dates(s, ctx, ev("x", at(2027, 3, 24, 10), at(2027, 3, 24, 12)), n=1)
    assert found == [(at(2027, 3, 31, 10), at(2027, 3, 31, 12))]
    assert found[0][0].utcoffset() == timedelta(hours=2)
    # Naive times (the CLI, the API) are wall-clock times in the region's zone there too.
    naive = ev("x", datetime(2027, 3, 24, 10), datetime(2027, 3, 24, 12))
    async with ctx.db.read() as s:
        assert await suggest_dates(s, ctx, naive, n=1) == found


# --- property test: find_conflicts against a brute-force oracle ---------------------------

DISTRICTS = ["olsztyński", "m-olsztyn", "podregion-olsztynski", "warminsko-mazurskie", "elcki",
             "podregion-elcki"]
BASE_DAY = date(2027, 3, 26)  # the days around the spring DST change


@st.composite
def events(draw: st.DrawFn) -> EventInput:
    all_day = draw(st.booleans())
    day = BASE_DAY + timedelta(days=draw(st.integers(0, 3)))
    district = draw(st.sampled_from(DISTRICTS))
    category = draw(st.sampled_from(["training", "meeting"]))
    audiences = draw(st.lists(st.sampled_from(["ngo", "youth"]), max_size=2, unique=True))
    rrule = draw(st.sampled_from([None, None, None, "FREQ=WEEKLY;COUNT=2"]))
    title = draw(st.sampled_from(["Szkolenie", "Warsztaty", "Forum", "Spotkanie"]))
    if all_day:
        last = day + timedelta(days=draw(st.integers(0, 2)))
        return ev(title, day, last, all_day=True, district=district, category=category,
                  audiences=audiences, rrule=rrule)
    start_min = draw(st.integers(0, 47)) * 30
    if day == date(2027, 3, 28) and 120 <= start_min < 180:
        start_min += 60  # skip the hour that does not exist
    start = datetime.combine(day, time()) + timedelta(minutes=start_min)
    end = start + timedelta(minutes=draw(st.integers(1, 60)) * 30)
    if end.date() == date(2027, 3, 28) and end.hour == 2:
        end += timedelta(hours=1)
    return ev(title, start.replace(tzinfo=W), end.replace(tzinfo=W), district=district,
              category=category, audiences=audiences, rrule=rrule)


def oracle(ctx: AppContext, stored: list[tuple[int, EventInput]], cand: EventInput) -> set[tuple[int, str]]:
    """Brute force: expand every event by stepping the calendar itself, compare everything."""
    region = ctx.region

    def spans(e: EventInput) -> list[tuple[datetime, datetime]]:
        out = []
        repeats = 2 if e.rrule else 1
        for k in range(repeats):
            if e.all_day:
                first = e.start + timedelta(weeks=k)
                last = e.end + timedelta(weeks=k)
                out.append((datetime.combine(first, time(), W).astimezone(UTC),
                            datetime.combine(last + timedelta(days=1), time(), W).astimezone(UTC)))
            else:
                s = (e.start.replace(tzinfo=None) + timedelta(weeks=k)).replace(tzinfo=W)
                f = (e.end.replace(tzinfo=None) + timedelta(weeks=k)).replace(tzinfo=W)
                out.append((s.astimezone(UTC), f.astimezone(UTC)))
        return out

    def days(a: datetime, b: datetime) -> set[date]:
        found, moment = set(), a
        while moment < b:
            found.add(moment.astimezone(W).date())
            moment += timedelta(minutes=30)
        return found

    cd = region.match(cand.district)
    result = set()
    for event_id, e in stored:
        d = region.match(e.district)
        if not (cd.contains(d) or d.contains(cd)):
            continue
        similar_or_same = cand.title == e.title
        for s2, e2 in spans(e):
            for s1, e1 in spans(cand):
                overlap = s1 < e2 and s2 < e1
                if cd is d and similar_or_same and days(s1, e1) & days(s2, e2):
                    result.add((event_id, "duplicate"))
                    break
                if overlap:
                    same_powiat = cd is d and cd.kind == "powiat"
                    shared = (not cand.audiences or not e.audiences
                              or set(cand.audiences) & set(e.audiences) or cand.category == e.category)
                    result.add((event_id, "high" if same_powiat and shared else "low"))
                    break
    return result


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=st.lists(events(), min_size=1, max_size=12), cand=events())
def test_find_conflicts_matches_brute_force_oracle(engine: str, stored: list[EventInput], cand: EventInput,
                                                   request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if engine == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'prop.db'}"
    else:
        url = request.getfixturevalue("pg_url")

    async def run() -> tuple[set, set]:
        if engine == "sqlite":
            engine_ = create_async_engine(url)
            async with engine_.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.run_sync(Base.metadata.create_all)
            await engine_.dispose()
        ctx = await make_context(url, tmp_path)
        ctx.clock = lambda: NOW
        try:
            async with ctx.db.transaction() as s:
                await s.execute(delete(Event))
            ids = await store(ctx, *stored)
            report = await check(ctx, cand)
            got = {(c.event.id, c.severity) for c in report.conflicts + report.duplicates}
            return got, oracle(ctx, list(zip(ids, stored, strict=True)), cand)
        finally:
            await ctx.db.dispose()

    got, expected = asyncio.run(run())
    assert got == expected


# --- suggestions: one window query gives what a check per candidate date gives -------------


async def per_candidate_suggestions(ctx: AppContext, candidate: EventInput, n: int,
                                    exclude: int | None = None) -> list[tuple]:
    """The plain definition: shift the candidate day by day (same weekday first, then days of
    the same kind, nearest first), run the full `find_conflicts` for each, keep the free ones."""
    tz = ctx.tz
    weekday = validate_event(ctx, candidate).starts_at.astimezone(tz).weekday()
    window = ctx.settings.calendar.suggestion_window_days

    def rank(d: int) -> tuple[int, int, int, int]:
        day = (weekday + d) % 7
        return (day != weekday, (day >= 5) != (weekday >= 5), abs(d), d < 0)

    found: list[tuple] = []
    for d in sorted((d for d in range(-window, window + 1) if d), key=rank):
        if candidate.all_day:
            shifted = replace(candidate, start=candidate.start + timedelta(days=d),
                              end=candidate.end + timedelta(days=d))
        else:
            shifted = replace(candidate, start=(candidate.start.replace(tzinfo=None)
                                                + timedelta(days=d)).replace(tzinfo=W),
                              end=(candidate.end.replace(tzinfo=None) + timedelta(days=d)).replace(tzinfo=W))
        try:
            norm = validate_event(ctx, shifted)
        except ValidationFailed:
            continue
        if norm.starts_at < ctx.now():
            continue
        report = await check(ctx, shifted, exclude_event_id=exclude)
        if report.conflicts or report.duplicates or report.warnings:
            continue
        if norm.all_day:
            found.append((shifted.start, shifted.end))
        else:
            found.append((norm.starts_at.astimezone(tz), norm.ends_at.astimezone(tz)))
        if len(found) >= n:
            break
    return found


def random_event(rng: random.Random, base: date, title: str) -> EventInput:
    day = base + timedelta(days=rng.randint(-30, 30))
    district = rng.choice(DISTRICTS)
    audiences = rng.sample(["ngo", "youth", "seniors"], rng.randint(0, 2))
    category = rng.choice(["training", "meeting"])
    rrule = rng.choice([None] * 6 + ["FREQ=WEEKLY;COUNT=3", "FREQ=MONTHLY;COUNT=2"])
    if rng.random() < 0.2:
        return ev(title, day, day + timedelta(days=rng.randint(0, 5)), all_day=True, district=district,
                  category=category, audiences=audiences, rrule=rrule)
    start = datetime.combine(day, time(rng.randint(7, 18), rng.choice([0, 30])), W)
    end = start + timedelta(minutes=30 * rng.randint(1, 8))
    return ev(title, start, end, district=district, category=category, audiences=audiences, rrule=rrule)


async def test_suggestions_equal_a_conflict_check_per_candidate_date(ctx: AppContext, tmp_path: Path) -> None:
    rng = random.Random(20261123)
    base = date(2027, 4, 14)  # Easter Monday 2027 is 29 March; 1 and 3 May are holidays too
    titles = ["Szkolenie", "Warsztaty", "Forum", "Spotkanie", "Konsultacje"]
    stored = [random_event(rng, base, rng.choice(titles)) for _ in range(70)]
    ids = await store(ctx, *stored)
    async with ctx.db.transaction() as s:  # a cancelled one must be ignored in both
        await cancel_event(s, ctx, Actor.cli(), ids[0])
    compared = 0
    # The same stored events under every conflict scope: which districts' overlaps count
    # changes which dates the suggestions' probe may rule out at once.
    for scope in ("region", "subregion", "powiat"):
        scoped = await make_context(ctx.db.url, tmp_path / scope, calendar={"conflicts": {"scope": scope}})
        scoped.clock = ctx.clock
        try:
            for i in range(8):
                cand = random_event(rng, base, rng.choice(titles))
                exclude = ids[rng.randrange(len(ids))] if i % 4 == 0 else None
                n = rng.choice([1, 3, 6])
                async with scoped.db.read() as s:
                    got = await suggest_dates(s, scoped, cand, n=n, exclude_event_id=exclude)
                expected = await per_candidate_suggestions(scoped, cand, n, exclude)
                assert got == expected, (scope, cand, exclude)
                compared += len(got)
        finally:
            await scoped.db.dispose()
    assert compared > 10  # the data leaves free dates to compare, not only empty lists
