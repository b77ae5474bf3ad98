"""Importing the calendars members already keep (calendar/ics_*.py): files shaped like Google's,
Outlook's and hand-written exports (tests/data/ics/), each refused or misread by the importer
before; skipped events with their line and reason; a second, changed copy of a calendar
synced per source; two sources with the same UIDs. Both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from infranet.calendar import ics_import, recurrence
from infranet.calendar.ics_file import file_source, import_file
from infranet.calendar.ics_import import import_ics
from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.errors import InfranetError, ValidationFailed
from infranet.network.orgs import OrgInput, add_organisation
from infranet.storage.actors import Actor
from infranet.storage.models import CalendarSource, Event, EventStatus

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "ics"


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


async def stored(ctx: AppContext) -> list[Event]:
    async with ctx.db.read() as s:
        return list((await s.scalars(select(Event).order_by(Event.id))).all())


def by_uid(rows: list[Event]) -> dict[str, Event]:
    return {e.source_uid or e.uid: e for e in rows if e.series_id is None}


async def organisation(ctx: AppContext, name: str) -> int:
    async with ctx.db.transaction() as s:
        return (await add_organisation(s, ctx, Actor.cli(), OrgInput(name=name))).id


async def run(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


@pytest.fixture(autouse=True)
def _now(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW


async def test_a_google_export(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        report = await import_ics(s, ctx, Actor.cli(), fixture("google.ics"))
    assert (report.added, report.updated, report.skipped) == (4, 0, [])
    rows = by_uid(await stored(ctx))
    training = rows["0a1b2c3d4e5f@google.com"]
    # A title is text; the HTML description is readable text with its link.
    assert training.title == "Szkolenie <b>nie</b> dla wszystkich"
    assert training.description is not None and "<br>" not in training.description
    assert "Zapisy: [formularz](https://example.org/zapisy?a=1&b=2)" in training.description
    assert "Uwaga: liczba miejsc ograniczona" in training.description
    assert training.district.slug == "elcki"  # from LOCATION "Ełk, ul. …"
    series = rows["series1@google.com"]
    assert series.description is not None and "* KRS" in series.description
    spans = recurrence.expand(series.rrule, series.starts_at, series.ends_at, False, ctx.tz)
    starts = [span.start for span in spans]
    assert datetime(2027, 1, 26, 16, 0, tzinfo=UTC) not in starts  # EXDATE
    assert datetime(2027, 1, 28, 16, 0, tzinfo=UTC) in starts  # RDATE, a Thursday
    assert datetime(2027, 1, 19, 16, 0, tzinfo=UTC) not in starts  # moved by the override
    [moved] = [e for e in await stored(ctx) if e.series_id == series.id]
    assert moved.title == "Dyżur doradczy (w środę)"
    assert moved.starts_at == datetime(2027, 1, 20, 9, tzinfo=UTC)
    # Floating time in the calendar's X-WR-TIMEZONE (London), not in Warsaw's.
    assert rows["floating1@google.com"].starts_at == datetime(2027, 3, 1, 18, 0, tzinfo=UTC)


async def test_an_outlook_export(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        report = await import_ics(s, ctx, Actor.cli(), fixture("outlook.ics"))
    assert (report.added, report.skipped) == (2, [])
    rows = by_uid(await stored(ctx))
    first = rows["040000008200E00074C5B7101A82E0080000000010000000000000000100000001@outlook"]
    assert first.starts_at == datetime(2027, 2, 10, 9, 0, tzinfo=UTC)  # Central European Standard Time
    assert first.description == "Konsultacje programu"  # the plain DESCRIPTION, not X-ALT-DESC
    second = rows["outlook-2@outlook"]
    assert second.starts_at == datetime(2027, 2, 11, 8, 0, tzinfo=UTC)  # W. Europe = Berlin
    assert second.ends_at - second.starts_at == timedelta(minutes=90)  # DURATION
    assert second.description == "Sala [B](https://example.org/sala)"  # X-ALT-DESC as text


async def test_a_hand_written_file_and_what_is_skipped(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        report = await import_ics(s, ctx, Actor.cli(), fixture("handwritten.ics"))
    rows = by_uid(await stored(ctx))
    assert set(rows) == {"hand-1", "hand-2"} and report.added == 2
    day = rows["hand-1"]  # BOM, LF line ends, a fold splitting "ł", no DTEND: one day
    assert day.title.startswith("Dzień otwarty w szkole – zapraszamy całe rodziny")
    assert day.all_day and day.ends_at - day.starts_at == timedelta(days=1)
    assert day.district.slug == "ketrzynski"  # "Szkoła, 11-400 Kętrzyn"
    instant = rows["hand-2"]  # a DATE-TIME start without DTEND is an instant
    assert instant.title == "a < b & c > d" and instant.ends_at - instant.starts_at == timedelta(minutes=1)
    assert instant.district.slug == "gizycki"  # X-INFRANET-DISTRICT: a TERYT code
    reasons = {(s.line, s.uid): s.reason for s in report.skipped}
    assert reasons[(19, "hand-3")] == "unknown time zone TZID='Mars/Olympus'"
    assert "VTODO" in reasons[(26, "hand-todo")] and "VJOURNAL" in reasons[(31, "hand-journal")]
    assert "past event" in reasons[(36, "hand-past")]
    assert "too far" in reasons[(42, "hand-far")] or "plans until" in reasons[(42, "hand-far")], reasons
    assert "200" in reasons[(48, "hand-long")]
    assert "nothing to show" in reasons[(54, "hand-empty")]
    assert len(report.skipped) == 7


@pytest.mark.parametrize(("name", "label"),
                         [("cp1250.ics", "Windows-1250"), ("iso-8859-2.ics", "ISO-8859-2")])
async def test_polish_legacy_encodings_are_read_with_a_note(ctx: AppContext, name: str, label: str) -> None:
    async with ctx.db.transaction() as s:
        report = await import_ics(s, ctx, Actor.cli(), fixture(name))
    assert report.added == 1 and report.note is not None and label in report.note
    [row] = await stored(ctx)
    assert "świetlica, źródła, żółw" in row.title and row.location == "Świętajno"


async def test_a_file_that_is_not_a_calendar_is_refused_naming_the_line(ctx: AppContext) -> None:
    unreadable = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n\xff\xfe\x00\x81\r\n"
    for data, line in ((b"hello", "line 1"), (unreadable, "line 3")):
        with pytest.raises(ValidationFailed) as caught:
            async with ctx.db.transaction() as s:
                await import_ics(s, ctx, Actor.cli(), data)
        assert caught.value.params["field"] == line
    assert await stored(ctx) == []


async def test_a_changed_copy_of_a_source_updates_cancels_and_keeps_the_newer(ctx: AppContext) -> None:
    org = await organisation(ctx, "COP Ełk")
    source = await file_source(ctx, org, "google")
    async with ctx.db.transaction() as s:
        first = await import_ics(s, ctx, Actor.cli(), fixture("google.ics"), organisation_id=org,
                                 source_id=source)
    assert first.added == 4
    async with ctx.db.transaction() as s:
        again = await import_ics(s, ctx, Actor.cli(), fixture("google.ics"), organisation_id=org,
                                 source_id=source)
    assert (again.added, again.updated, again.cancelled, again.unchanged) == (0, 0, 0, 4)
    async with ctx.db.transaction() as s:
        second = await import_ics(s, ctx, Actor.cli(), fixture("google-v2.ics"), organisation_id=org,
                                  source_id=source)
    # moved (SEQUENCE 1), deleted (cancelled), the stale override (SEQUENCE 0) left as it was
    assert (second.added, second.updated, second.cancelled, second.unchanged) == (0, 1, 1, 2)
    rows = by_uid(await stored(ctx))
    assert rows["0a1b2c3d4e5f@google.com"].starts_at == datetime(2027, 1, 16, 9, tzinfo=UTC)
    assert rows["0a1b2c3d4e5f@google.com"].source_sequence == 1
    assert rows["floating1@google.com"].status == EventStatus.CANCELLED
    [moved] = [e for e in await stored(ctx) if e.series_id is not None]
    assert moved.title == "Dyżur doradczy (w środę)"
    assert {e.source_id for e in await stored(ctx)} == {source}


async def test_two_sources_with_the_same_uids_never_touch_each_other(ctx: AppContext) -> None:
    a, b = await organisation(ctx, "COP A"), await organisation(ctx, "OWES B")
    sa, sb = await file_source(ctx, a, "google"), await file_source(ctx, b, "google")
    for org, source in ((a, sa), (b, sb)):
        async with ctx.db.transaction() as s:
            report = await import_ics(s, ctx, Actor.cli(), fixture("google.ics"), organisation_id=org,
                                      source_id=source)
        assert report.added == 4
    async with ctx.db.transaction() as s:
        await import_ics(s, ctx, Actor.cli(), fixture("google-v2.ics"), organisation_id=a, source_id=sa)
    rows = await stored(ctx)
    theirs = {e.source_uid: e for e in rows if e.source_id == sb and e.series_id is None}
    mine = {e.source_uid: e for e in rows if e.source_id == sa and e.series_id is None}
    uids = {"0a1b2c3d4e5f@google.com", "series1@google.com", "floating1@google.com"}
    assert set(theirs) == set(mine) == uids
    assert theirs["0a1b2c3d4e5f@google.com"].starts_at == datetime(2027, 1, 15, 9, tzinfo=UTC)
    assert theirs["floating1@google.com"].status == EventStatus.SCHEDULED
    assert mine["floating1@google.com"].status == EventStatus.CANCELLED
    assert {e.organisation_id for e in theirs.values()} == {b}
    assert len({e.uid for e in rows}) == len(rows)  # the stored UIDs stay unique


async def test_nothing_is_half_written(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = ics_import.add_event

    async def failing(*args: Any, **kwargs: Any) -> Event:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise InfranetError("error.not_found.event", id=0)
        return await real(*args, **kwargs)

    monkeypatch.setattr(ics_import, "add_event", failing)
    with pytest.raises(ValidationFailed):
        async with ctx.db.transaction() as s:
            await import_ics(s, ctx, Actor.cli(), fixture("google.ics"))
    assert await stored(ctx) == []


async def test_the_cli_imports_a_file_as_a_source_and_tells_the_other_organisers(
        ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = await organisation(ctx, "COP Ełk"), await organisation(ctx, "OWES B")
    told: list[tuple[int, str, dict[str, Any]]] = []

    async def listener(org_id: int, key: str, params: dict[str, Any]) -> int:
        told.append((org_id, key, params))
        return 1

    ctx.notices.register(listener)
    theirs = tmp_path / "theirs.ics"
    theirs.write_bytes(fixture("google.ics").replace(b"@google.com", b"@b.example"))
    assert await run(ctx, "events", "import", str(theirs), "--org", "OWES B") == 0
    path = tmp_path / "cop.ics"
    path.write_bytes(fixture("handwritten.ics"))
    assert await run(ctx, "events", "import", str(path), "--org", "COP Ełk") == 0
    out = capsys.readouterr().out
    assert "2 added, 0 updated, 0 cancelled, 0 unchanged, 7 skipped" in out
    assert "skipped: line 19, UID hand-3: unknown time zone TZID='Mars/Olympus'" in out
    assert "as the organisation's source #2 'cop.ics'" in out
    async with ctx.db.read() as s:
        sources = (await s.scalars(select(CalendarSource).order_by(CalendarSource.id))).all()
    assert [(x.organisation_id, x.name, x.url) for x in sources] == [(b, "theirs.ics", None),
                                                                      (a, "cop.ics", None)]
    # The same name again is the same source: unchanged; --source names another.
    assert await run(ctx, "events", "import", str(path), "--org", "COP Ełk") == 0
    assert "0 added, 0 updated, 0 cancelled, 2 unchanged" in capsys.readouterr().out
    # A changed copy clashing with B's training (same day, same district): listed and told to B.
    clash = fixture("google.ics").replace(b"@google.com", b"@a.example")
    path.write_bytes(clash)
    assert await run(ctx, "events", "import", str(path), "--org", "COP Ełk", "--source", "google") == 0
    out = capsys.readouterr().out
    assert "conflict: 'Szkolenie <b>nie</b> dla wszystkich'" in out and "(OWES B)" in out
    assert [(org, key) for org, key, _ in told] == [(b, "sources.conflicts_theirs")]
    assert told[0][2]["org"] == "COP Ełk" and "Szkolenie <b>nie</b>" in told[0][2]["items"]
    assert await run(ctx, "events", "import", str(path), "--source", "x") == 2


async def test_a_batched_import_that_fails_half_way_is_undone(ctx: AppContext, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """One event per transaction (BUDGET 0): a failure in a later batch undoes the earlier ones,
    rows added deleted and rows changed restored."""
    from infranet.calendar import ics_batches

    org = await organisation(ctx, "COP Ełk")
    path = tmp_path / "google.ics"
    path.write_bytes(fixture("google.ics"))
    await import_file(ctx, Actor.cli(), path, fixture("google.ics"), organisation_id=org)
    before = {e.id: (e.starts_at, e.status, e.revision, e.rrule) for e in await stored(ctx)}
    monkeypatch.setattr(ics_batches, "BUDGET", 0.0)
    monkeypatch.setattr(ics_batches, "PAUSE", 0.0)
    real = ics_import.update_event

    async def failing(*args: Any, **kwargs: Any) -> Event:
        raise InfranetError("error.not_found.event", id=0)

    changed = fixture("google-v2.ics").replace("SUMMARY:Dyżur doradczy\r\n".encode(),
                                               "SUMMARY:Dyżur zmieniony\r\n".encode())
    # the training moves (batch 1), then the series' change fails (batch 2)
    calls = 0

    async def second_fails(*args: Any, **kwargs: Any) -> Event:
        nonlocal calls
        calls += 1
        if calls == 2:
            return await failing(*args, **kwargs)
        return await real(*args, **kwargs)

    monkeypatch.setattr(ics_import, "update_event", second_fails)
    with pytest.raises(ValidationFailed):
        await import_file(ctx, Actor.cli(), path, changed, organisation_id=org)
    assert calls == 2
    after = {e.id: (e.starts_at, e.status, e.revision, e.rrule) for e in await stored(ctx)}
    assert after == before
    # And a first import failing half-way leaves nothing of its own.
    calls_add = 0
    real_add = ics_import.add_event

    async def add_fails(*args: Any, **kwargs: Any) -> Event:
        nonlocal calls_add
        calls_add += 1
        if calls_add == 3:
            raise InfranetError("error.not_found.event", id=0)
        return await real_add(*args, **kwargs)

    monkeypatch.setattr(ics_import, "add_event", add_fails)
    other = tmp_path / "outlook.ics"
    other.write_bytes(fixture("handwritten.ics"))
    with pytest.raises(ValidationFailed):
        await import_file(ctx, Actor.cli(), other, fixture("google.ics").replace(b"@google", b"@x"),
                          organisation_id=org)
    assert {e.id for e in await stored(ctx)} == set(before)


@pytest.mark.parametrize("ahead", [False, True])
async def test_a_followed_calendar_tells_the_organisations_it_clashes_with(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ahead: bool) -> None:
    """Through the refresh round (source_sync.sync_source): the clash is told to the importing
    organisation and to the other one; a Windows-1250 calendar is read. `ahead`: written
    before the recording transaction in batches of one event (as a big one is on SQLite)."""
    from infranet.calendar import ics_batches, source_sync

    batched: list[int] = []
    if ahead:
        monkeypatch.setattr(source_sync, "AHEAD_FROM", 1)
        monkeypatch.setattr(ics_batches, "BUDGET", 0.0)
        monkeypatch.setattr(ics_batches, "PAUSE", 0.0)
        real = source_sync.write_in_batches

        async def counted(*args: Any) -> float:
            batched.append(1)
            return await real(*args)

        monkeypatch.setattr(source_sync, "write_in_batches", counted)
    from infranet.calendar.source_refresh import refresh_due
    from infranet.calendar.sources import add_source
    from tests.calendar_server import calendar_server
    from tests.conftest import make_context

    sctx = await make_context(db_url, tmp_path / "data", sources={"allow_private": True})
    sctx.clock = lambda: NOW
    try:
        a, b = await organisation(sctx, "COP Ełk"), await organisation(sctx, "OWES B")
        told: list[tuple[int, str, dict[str, Any]]] = []

        async def listener(org_id: int, key: str, params: dict[str, Any]) -> int:
            told.append((org_id, key, params))
            return 1

        sctx.notices.register(listener)
        theirs = await file_source(sctx, b, "theirs")
        async with sctx.db.transaction() as s:
            await import_ics(s, sctx, Actor.cli(), fixture("google.ics").replace(b"@google.com", b"@b"),
                             organisation_id=b, source_id=theirs)
        async with calendar_server() as server:
            server.ics("cop.ics", fixture("google.ics").decode())
            async with sctx.db.transaction() as s:
                await add_source(s, sctx, Actor.cli(), a, server.url("cop.ics"))
            [outcome] = await refresh_due(sctx)
            # A Polish calendar served in Windows-1250 (no usable charset) is read too.
            server.raw("pl.ics", fixture("cp1250.ics"), **{"Content-Type": "text/calendar"})
            async with sctx.db.transaction() as s:
                await add_source(s, sctx, Actor.cli(), a, server.url("pl.ics"))
            [polish] = await refresh_due(sctx)
            assert polish.state == "imported" and polish.report is not None and polish.report.added == 1
            async with sctx.db.read() as s:
                row = await s.scalar(select(Event).where(Event.source_uid == "win-1"))
                assert row is not None and "świetlica, źródła, żółw" in row.title
        assert outcome.state == "imported" and outcome.report is not None
        assert outcome.report.added == 4 and outcome.report.conflicts
        assert sorted((org, key) for org, key, _ in told) == [(a, "sources.conflicts"),
                                                            (b, "sources.conflicts_theirs")]
        assert len(batched) == (2 if ahead and sctx.db.is_sqlite else 0)
    finally:
        await sctx.db.dispose()


async def test_a_date_no_longer_moved_or_cancelled_in_the_source_is_the_series_own_again(
        ctx: AppContext) -> None:
    org = await organisation(ctx, "COP Ełk")
    source = await file_source(ctx, org, "google")
    async with ctx.db.transaction() as s:
        await import_ics(s, ctx, Actor.cli(), fixture("google.ics"), organisation_id=org, source_id=source)
    text = fixture("google.ics").decode()
    start = text.index("BEGIN:VEVENT\r\nDTSTART;TZID=Europe/Warsaw:20270120T100000")
    end = text.index("END:VEVENT\r\n", start) + len("END:VEVENT\r\n")
    text = text[:start] + text[end:]  # the override gone
    text = text.replace("EXDATE;TZID=Europe/Warsaw:20270126T170000\r\n", "")  # the EXDATE gone
    async with ctx.db.transaction() as s:
        report = await import_ics(s, ctx, Actor.cli(), text.encode(), organisation_id=org, source_id=source)
    assert (report.added, report.updated, report.cancelled) == (0, 1, 0)
    rows = await stored(ctx)
    assert [e for e in rows if e.series_id is not None] == []  # the override row deleted
    series = by_uid(rows)["series1@google.com"]
    spans = recurrence.expand(series.rrule, series.starts_at, series.ends_at, False, ctx.tz)
    starts = {span.start for span in spans}
    assert {datetime(2027, 1, 19, 16, tzinfo=UTC), datetime(2027, 1, 26, 16, tzinfo=UTC)} <= starts
    # and again: nothing more to do
    async with ctx.db.transaction() as s:
        again = await import_ics(s, ctx, Actor.cli(), text.encode(), organisation_id=org, source_id=source)
    assert (again.added, again.updated, again.cancelled) == (0, 0, 0)


async def test_an_event_icalendar_cannot_read_is_skipped_not_the_file(ctx: AppContext) -> None:
    text = fixture("outlook.ics").replace(b"DTSTART;TZID=W. Europe Standard Time:20270211T090000",
                                          b"DTSTART:2027021")
    async with ctx.db.transaction() as s:
        report = await import_ics(s, ctx, Actor.cli(), text)
    assert report.added == 1
    [skipped] = report.skipped
    assert skipped.uid == "outlook-2@outlook" and skipped.reason.startswith("cannot read the event: ")


async def test_events_back_in_their_source_are_scheduled_again(ctx: AppContext) -> None:
    """A copy that lacked events (a glitch of the calendar's server) cancels them; the next,
    whole copy brings them back, a series with its moved date."""
    org = await organisation(ctx, "COP Ełk")
    source = await file_source(ctx, org, "google")
    whole = fixture("google.ics")
    empty = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//PL\r\nEND:VCALENDAR\r\n"
    reports = []
    for data in (whole, empty, whole):
        async with ctx.db.transaction() as s:
            reports.append(await import_ics(s, ctx, Actor.cli(), data, organisation_id=org, source_id=source))
    assert reports[1].cancelled == 3
    assert (reports[2].added, reports[2].updated, reports[2].cancelled) == (0, 4, 0)
    rows = await stored(ctx)
    assert {e.status for e in rows} == {EventStatus.SCHEDULED} and len(rows) == 4
