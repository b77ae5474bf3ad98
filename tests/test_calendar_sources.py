"""Member calendars followed by URL (calendar/sources.py, source_refresh.py): who may add and
remove, and rounds of fetches against a real HTTP server on 127.0.0.1 whose calendars change
between fetches (an event moved, one deleted, an occurrence overridden, a 304, a 500, a
timeout, a 50 MB body). Both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from infranet.calendar import source_refresh
from infranet.calendar.source_refresh import backoff, check_source, refresh_due
from infranet.calendar.sources import add_source, list_sources, remove_source
from infranet.context import AppContext
from infranet.errors import NotFound, PermissionDenied, ValidationFailed
from infranet.network.orgs import OrgInput, add_organisation
from infranet.storage.actors import Actor
from infranet.storage.models import CalendarSource, Event, EventStatus, Member, MemberStatus, Role
from tests.calendar_server import CalendarServer, calendar_server
from tests.conftest import make_context

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def vevent(uid: str, title: str, start: str, end: str, *extra: str) -> str:
    return "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", f"SUMMARY:{title}",
                        f"DTSTART;TZID=Europe/Warsaw:{start}", f"DTEND;TZID=Europe/Warsaw:{end}",
                        "DTSTAMP:20261101T000000Z", *extra, "END:VEVENT"])


def calendar(*events: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//COP A//cal//PL",
                        *events, "END:VCALENDAR"]) + "\r\n"


FIRST = calendar(
    vevent("a@cop", "Szkolenie z RODO", "20270110T100000", "20270110T140000"),
    vevent("b@cop", "Targi NGO", "20270202T090000", "20270202T150000"),
    vevent("s@cop", "Dyżur", "20270105T170000", "20270105T180000", "RRULE:FREQ=WEEKLY;COUNT=4"))
# A moved two days on, B gone from the file, the second Dyżur moved by an hour.
SECOND = calendar(
    vevent("a@cop", "Szkolenie z RODO", "20270112T100000", "20270112T140000",
           "SEQUENCE:1", "LAST-MODIFIED:20261201T080000Z"),
    vevent("s@cop", "Dyżur", "20270105T170000", "20270105T180000", "RRULE:FREQ=WEEKLY;COUNT=4"),
    vevent("s@cop", "Dyżur (później)", "20270112T180000", "20270112T190000",
           "RECURRENCE-ID;TZID=Europe/Warsaw:20270112T170000"))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def sctx(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    context = await make_context(db_url, tmp_path / "data",
                                 sources={"allow_private": True, "timeout_seconds": 2,
                                          "max_bytes": 1024 * 1024})
    context.clock = Clock()
    yield context
    await context.db.dispose()


@pytest.fixture
async def server() -> AsyncIterator[CalendarServer]:
    async with calendar_server() as running:
        yield running


@pytest.fixture
def told(sctx: AppContext) -> list[tuple[int, str, dict[str, Any]]]:
    """What the organisations' members were told (the bot's side of `ctx.notices`)."""
    heard: list[tuple[int, str, dict[str, Any]]] = []

    async def listen(org_id: int, key: str, params: dict[str, Any]) -> int:
        heard.append((org_id, key, params))
        return 1

    sctx.notices.register(listen)
    return heard


async def people(ctx: AppContext) -> tuple[int, int, Actor, Actor, Actor]:
    async with ctx.db.transaction() as s:
        a = await add_organisation(s, ctx, Actor.cli(), OrgInput(name="COP A"))
        b = await add_organisation(s, ctx, Actor.cli(), OrgInput(name="OWES B"))
        ma = Member(telegram_id=1, organisation_id=a.id, status=MemberStatus.APPROVED)
        mb = Member(telegram_id=2, organisation_id=b.id, status=MemberStatus.APPROVED)
        admin = Member(telegram_id=3, role=Role.ADMIN, status=MemberStatus.APPROVED)
        s.add_all([ma, mb, admin])
        await s.flush()
    return a.id, b.id, Actor.of(ma), Actor.of(mb), Actor.of(admin)


async def follow(ctx: AppContext, org_id: int, url: str, **options: Any) -> int:
    async with ctx.db.transaction() as s:
        return (await add_source(s, ctx, Actor.cli(), org_id, url, **options)).id


async def source(ctx: AppContext, source_id: int) -> CalendarSource:
    async with ctx.db.read() as s:
        row = await s.get(CalendarSource, source_id)
        assert row is not None
        return row


async def events(ctx: AppContext) -> dict[str, Event]:
    async with ctx.db.read() as s:
        rows = (await s.scalars(select(Event).order_by(Event.id))).all()
    return {e.uid: e for e in rows}


async def due_round(ctx: AppContext, source_id: int) -> list[source_refresh.Outcome]:
    """The clock moved on to the source's next fetch, then a round."""
    row = await source(ctx, source_id)
    assert row.next_fetch_at is not None
    ctx.clock.now = max(ctx.clock.now, row.next_fetch_at)  # type: ignore[attr-defined]
    return await refresh_due(ctx)


async def test_who_may_add_list_and_remove(sctx: AppContext) -> None:
    a, b, member_a, member_b, admin = await people(sctx)
    async with sctx.db.transaction() as s:
        mine = await add_source(s, sctx, member_a, a, "webcal://calendar.example/cop.ics",
                                district="olsztyński", category="training")
        assert (mine.url, mine.name, mine.district, mine.category) == (
            "https://calendar.example/cop.ics", "calendar.example", "olsztynski", "training")
        assert mine.added_by == member_a.member.id and mine.next_fetch_at == NOW
        theirs = await add_source(s, sctx, admin, b, "https://b.example/k.ics", name="Kalendarz B")
    for actor, org, url, error in [
        (member_b, a, "https://b.example/x.ics", PermissionDenied),  # not their organisation
        (member_a, a, "https://calendar.example/cop.ics", ValidationFailed),  # followed already
        (member_a, a, "ftp://calendar.example/cop.ics", ValidationFailed),
        (member_a, a, "https://calendar.example/c.ics", ValidationFailed),  # with category below
    ]:
        with pytest.raises(error):
            async with sctx.db.transaction() as s:
                await add_source(s, sctx, actor, org, url,
                                 category="party" if url.endswith("/c.ics") else None)
    async with sctx.db.read() as s:
        assert [x.id for x in await list_sources(s, member_a)] == [mine.id]
        assert [x.id for x in await list_sources(s, admin)] == [mine.id, theirs.id]
        with pytest.raises(PermissionDenied):
            await list_sources(s, member_a, b)
    with pytest.raises(PermissionDenied):
        async with sctx.db.transaction() as s:
            await remove_source(s, sctx, member_b, mine.id)
    async with sctx.db.transaction() as s:
        await remove_source(s, sctx, member_a, mine.id)
    with pytest.raises(NotFound):
        async with sctx.db.transaction() as s:
            await remove_source(s, sctx, member_a, mine.id)
    # Added again: the same source (and so the same events) comes back.
    async with sctx.db.transaction() as s:
        again = await add_source(s, sctx, member_a, a, "https://calendar.example/cop.ics")
        assert again.id == mine.id and again.district is None


async def test_internal_addresses_are_refused_when_added(sctx: AppContext) -> None:
    a, *_ = await people(sctx)
    sctx.settings.sources.allow_private = False
    for url in ("http://127.0.0.1:8080/cal.ics", "http://[::1]/x", "http://10.0.0.1/x",
                "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(ValidationFailed) as refused:
            await follow(sctx, a, url)
        assert refused.value.key == "fetch.blocked"
    await follow(sctx, a, "https://calendar.example/cop.ics")  # names are judged when fetched


async def test_rounds_follow_a_calendar_as_it_changes(sctx: AppContext, server: CalendarServer,
                                                     told: list[Any]) -> None:
    a, *_ = await people(sctx)
    server.ics("cop.ics", FIRST)
    sid = await follow(sctx, a, server.url("cop.ics"), district="olsztyński", category="training")
    [first] = await refresh_due(sctx)
    assert first.state == "imported" and first.report is not None and first.report.added == 3
    stored = await events(sctx)
    assert set(stored) == {"a@cop", "b@cop", "s@cop"}
    assert {e.source_id for e in stored.values()} == {sid}
    assert {e.organisation_id for e in stored.values()} == {a}
    assert stored["a@cop"].district.slug == "olsztynski" and stored["a@cop"].category == "training"
    row = await source(sctx, sid)
    assert row.etag and row.content_hash and row.last_ok_at == NOW and row.failures == 0
    assert row.next_fetch_at == NOW + HOUR

    # Not due yet: a round fetches nothing.
    assert await refresh_due(sctx) == [] and server.count("cop.ics") == 1
    # Due, unchanged: a conditional GET answered 304, nothing imported.
    [second] = await due_round(sctx, sid)
    assert second.state == "not_modified" and server.hits[-1][1]["if-none-match"] == row.etag

    server.ics("cop.ics", SECOND)
    [third] = await due_round(sctx, sid)
    assert third.state == "imported", third.error("en")
    stored = await events(sctx)
    assert stored["a@cop"].starts_at == datetime(2027, 1, 12, 9, 0, tzinfo=UTC)  # moved
    [override] = [e for e in stored.values() if e.recurrence_id is not None]
    assert override.recurrence_id == datetime(2027, 1, 12, 16, 0, tzinfo=UTC)
    assert override.series_id == stored["s@cop"].id
    assert override.starts_at == datetime(2027, 1, 12, 17, 0, tzinfo=UTC)
    # Gone from the file: cancelled (kept, published as CANCELLED), the per-source sync's rule.
    assert stored["b@cop"].status == EventStatus.CANCELLED
    assert third.report is not None and third.report.cancelled == 1
    assert told == []


async def test_same_body_without_validators_is_not_imported_again(sctx: AppContext,
                                                                  server: CalendarServer) -> None:
    a, *_ = await people(sctx)
    server.ics("plain.ics", FIRST, etag=False)
    sid = await follow(sctx, a, server.url("plain.ics"))
    assert [o.state for o in await refresh_due(sctx)] == ["imported"]
    assert [o.state for o in await due_round(sctx, sid)] == ["unchanged"]
    assert server.count("plain.ics") == 2


async def test_failures_back_off_and_the_members_hear_once(sctx: AppContext, server: CalendarServer,
                                                           told: list[Any]) -> None:
    a, *_ = await people(sctx)
    server.status("cop.ics", 500)
    sid = await follow(sctx, a, server.url("cop.ics"))
    waits = []
    for _ in range(5):
        [outcome] = await due_round(sctx, sid)
        assert outcome.state == "failed" and outcome.failure is not None
        assert outcome.failure.key == "fetch.status"
        waits.append(outcome.next_fetch_at - sctx.now())
    assert waits == [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 16 * HOUR]
    row = await source(sctx, sid)
    assert row.failures == 5 and row.failure_notified
    assert row.last_error == "127.0.0.1 answered with HTTP error 500"
    # Told once, after the third failure, in each member's language.
    [(org_id, key, params)] = told
    assert (org_id, key, params["count"], params["name"]) == (a, "sources.failing", 3, "127.0.0.1")
    assert params["error"].localized("pl") == "127.0.0.1 odpowiedział błędem HTTP 500"

    server.ics("cop.ics", FIRST)
    [recovered] = await due_round(sctx, sid)
    assert recovered.state == "imported"
    assert [key for _, key, _ in told] == ["sources.failing", "sources.recovered"]
    row = await source(sctx, sid)
    assert (row.failures, row.failure_notified, row.last_error) == (0, False, None)

    server.status("cop.ics", 503)
    for _ in range(3):
        await due_round(sctx, sid)
    assert [key for _, key, _ in told] == ["sources.failing", "sources.recovered", "sources.failing"]


def test_backoff_is_capped_at_a_day() -> None:
    assert backoff(HOUR, 0) == HOUR
    assert backoff(HOUR, 30) == timedelta(days=1)
    assert backoff(timedelta(days=2), 3) == timedelta(days=2)  # never sooner than the interval


async def test_timeout_huge_body_and_a_refused_file_are_failures(sctx: AppContext,
                                                                 server: CalendarServer) -> None:
    a, *_ = await people(sctx)
    server.slow("slow.ics", 10)
    server.huge("huge.ics", 50 * 1024 * 1024, declared=False)
    server.ics("broken.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nthis is no line\r\n"
                             "END:VEVENT\r\nEND:VCALENDAR\r\n")
    ids = [await follow(sctx, a, server.url(name)) for name in ("slow.ics", "huge.ics", "broken.ics")]
    outcomes = {o.source_id: o for o in await refresh_due(sctx)}
    assert {o.state for o in outcomes.values()} == {"failed"}
    slow, huge, broken = (outcomes[i] for i in ids)
    assert slow.failure is not None and slow.failure.key == "fetch.timeout"
    assert huge.failure is not None and huge.failure.key == "fetch.too_large"
    assert server.sent["huge.ics"] < 12 * 1024 * 1024
    assert broken.failure is not None and "line 4" in broken.error("en")
    row = await source(sctx, ids[2])
    assert row.content_hash is None and "line 4" in (row.last_error or "")
    assert await events(sctx) == {}


async def test_two_rounds_at_once_fetch_each_source_once(sctx: AppContext,
                                                          server: CalendarServer) -> None:
    a, *_ = await people(sctx)
    server.ics("cop.ics", FIRST)
    await follow(sctx, a, server.url("cop.ics"))
    first, second = await asyncio.gather(refresh_due(sctx), refresh_due(sctx))
    assert sorted(len(x) for x in (first, second)) == [0, 1]
    assert server.count("cop.ics") == 1


async def test_check_now_for_the_organisation_only(sctx: AppContext, server: CalendarServer) -> None:
    a, _b, member_a, member_b, _admin = await people(sctx)
    server.ics("cop.ics", FIRST)
    sid = await follow(sctx, a, server.url("cop.ics"))
    with pytest.raises(PermissionDenied):
        await check_source(sctx, member_b, sid)
    outcome = await check_source(sctx, member_a, sid)
    assert outcome.state == "imported" and outcome.report is not None and outcome.report.added == 3
    again = await check_source(sctx, member_a, sid)  # whenever it is due
    assert again.state == "not_modified"
    with pytest.raises(NotFound):
        await check_source(sctx, member_a, 999)


async def test_a_calendar_cannot_move_another_organisations_events(sctx: AppContext,
                                                                   server: CalendarServer) -> None:
    """UIDs are public (every feed shows them): a calendar that names another organisation's
    event, or names another organisation as ORGANIZER, changes nothing of theirs."""
    a, b, *_ = await people(sctx)
    server.ics("theirs.ics", FIRST)
    theirs = await follow(sctx, b, server.url("theirs.ics"))
    assert [o.state for o in await refresh_due(sctx)] == ["imported"]
    def of_theirs(stored: dict[str, Event]) -> dict[str, tuple[Any, ...]]:
        return {e.uid: (e.starts_at, e.status, e.organisation_id) for e in stored.values()
                if e.source_id == theirs}

    before = of_theirs(await events(sctx))
    assert len(before) == 3 and {org for *_, org in before.values()} == {b}
    server.ics("mine.ics", SECOND)  # a@cop moved, b@cop gone: B's UIDs in A's calendar
    mine = await follow(sctx, a, server.url("mine.ics"))
    [outcome] = await refresh_due(sctx)
    assert outcome.source_id == mine
    # Refused whole (today's import), or imported as A's own events (the per-source sync):
    # either way nothing of B's moved, was cancelled or changed hands.
    assert outcome.state in ("failed", "imported"), outcome
    if outcome.state == "failed":
        assert "UID a@cop" in outcome.error("en")
    assert of_theirs(await events(sctx)) == before

    server.ics("named.ics", calendar(vevent("n@cop", "Spotkanie", "20270301T100000", "20270301T120000",
                                            "ORGANIZER;CN=OWES B:mailto:b@example.org")))
    named = await follow(sctx, a, server.url("named.ics"))
    sctx.clock.now += timedelta(days=2)  # type: ignore[attr-defined]
    outcomes = {o.source_id: o for o in await refresh_due(sctx)}
    assert outcomes[named].state == "imported"
    stored = (await events(sctx))["n@cop"]
    assert (stored.organisation_id, stored.source_id) == (a, named)
