"""`infranet events ...` through the real argument parser and handlers: add/list/cancel/
conflicts, export → import round trip, idempotent import, broken files reported with the
line and nothing half-imported, and the demo seed. Both engines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.demo import seed
from infranet.storage.models import Event

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW


async def run(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


async def count_events(ctx: AppContext) -> int:
    async with ctx.db.transaction() as s:
        return await s.scalar(select(func.count()).select_from(Event)) or 0


async def add_sample(ctx: AppContext) -> None:
    assert await run(ctx, "org", "add", "COP Olsztyn", "--email", "cop@example.org") == 0
    assert await run(ctx, "events", "add", "--title", "Szkolenie z RODO; część 1, podstawy",
                     "--start", "15.1.2027 10:00", "--end", "14:00", "--district", "olsztyński",
                     "--category", "training", "--audience", "ngo", "--audience", "youth",
                     "--org", "COP Olsztyn", "--description", "Linia 1\nLinia 2",
                     "--location", "Sala 5, ul. Długa 1", "--url", "https://cop.example.org/rodo") == 0
    assert await run(ctx, "events", "add", "--title", "Targi", "--start", "2027-05-07", "--end",
                     "9.5.2027", "--all-day", "--district", "giżycki", "--category", "fair") == 0
    assert await run(ctx, "events", "add", "--title", "Spotkanie sieci", "--start", "2027-01-20 17:00",
                     "--end", "19:00", "--rrule", "FREQ=MONTHLY;COUNT=6", "--category", "meeting") == 0


def snapshot(rows) -> list[tuple]:
    return sorted((e.uid, e.title, e.description, e.location, e.url, e.starts_at, e.ends_at, e.all_day,
                   e.rrule, e.district_id, e.category, tuple(e.audiences), e.organisation_id, e.status)
                  for e in rows)


async def all_events(ctx: AppContext) -> list[Event]:
    async with ctx.db.transaction() as s:
        return list((await s.scalars(select(Event))).all())


async def test_add_list_conflicts_cancel(ctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    await add_sample(ctx)
    out = capsys.readouterr().out
    assert "added event #1: Szkolenie z RODO; część 1, podstawy — piątek, 15 stycznia 2027, " \
           "10:00–14:00" in out
    assert await run(ctx, "events", "list", "--from", "1.1.2027", "--to", "28.2.2027") == 0
    out = capsys.readouterr().out
    assert out.count("Spotkanie sieci") == 2 and "(olsztyński; COP Olsztyn)" in out
    code = await run(ctx, "events", "conflicts", "--title", "Inne", "--start", "15.1.2027 13:00",
                     "--end", "15:00", "--district", "olsztynski", "--category", "training")
    out = capsys.readouterr().out
    assert code == 1
    assert "CONFLICT (high) #1 Szkolenie z RODO" in out and "cop@example.org" in out
    assert "free dates:" in out and "piątek, 22 stycznia 2027, 13:00–15:00" in out
    assert await run(ctx, "events", "cancel", "1") == 0
    assert await run(ctx, "events", "list", "--from", "15.1.2027", "--to", "15.1.2027", "--cancelled") == 0
    assert "[cancelled]" in capsys.readouterr().out


async def test_export_import_round_trip_and_idempotence(ctx: AppContext, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    await add_sample(ctx)
    before = snapshot(await all_events(ctx))
    out = tmp_path / "out.ics"
    assert await run(ctx, "events", "export", "-o", str(out)) == 0
    # Same file into the same database: nothing changes.
    assert await run(ctx, "events", "import", str(out)) == 0
    assert "0 added, 0 updated, 0 cancelled, 3 unchanged" in capsys.readouterr().out
    assert snapshot(await all_events(ctx)) == before
    # Into an empty calendar: the same events come back, field for field.
    async with ctx.db.transaction() as s:
        await s.execute(delete(Event))
    assert await run(ctx, "events", "import", str(out)) == 0
    assert "3 added" in capsys.readouterr().out
    assert snapshot(await all_events(ctx)) == before
    assert await run(ctx, "events", "import", str(out)) == 0
    assert "3 unchanged" in capsys.readouterr().out
    # A changed event in the file updates the stored one (revision grows).
    changed = out.read_text(encoding="utf-8").replace("SUMMARY:Targi", "SUMMARY:Targi 2027")
    (tmp_path / "changed.ics").write_text(changed, encoding="utf-8")
    assert await run(ctx, "events", "import", str(tmp_path / "changed.ics")) == 0
    assert "1 updated" in capsys.readouterr().out
    targi = next(e for e in await all_events(ctx) if e.title.startswith("Targi"))
    assert (targi.title, targi.revision) == ("Targi 2027", 1)


FOREIGN = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Other//EN\r
BEGIN:VEVENT\r
UID:abc-1@other\r
DTSTAMP:20261101T000000Z\r
DTSTART;TZID=Europe/Warsaw:20270210T100000\r
DTEND;TZID=Europe/Warsaw:20270210T120000\r
SUMMARY:Konsultacje społeczne\r
CATEGORIES:konsultacje\r
LOCATION:Ełk\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:abc-2@other\r
DTSTAMP:20261101T000000Z\r
DTSTART;VALUE=DATE:20270301\r
DTEND;VALUE=DATE:20270303\r
SUMMARY:Dni otwarte\r
END:VEVENT\r
END:VCALENDAR\r
"""


async def test_import_foreign_file_and_broken_files(ctx: AppContext, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.ics"
    good.write_text(FOREIGN, encoding="utf-8")
    assert await run(ctx, "events", "import", str(good), "--district", "ełcki") == 0
    events = {e.title: e for e in await all_events(ctx)}
    assert events["Konsultacje społeczne"].category == "consultation"
    assert events["Dni otwarte"].all_day and events["Dni otwarte"].district.slug == "elcki"
    capsys.readouterr()
    cases = {
        "garbage line": (FOREIGN.replace("SUMMARY:Dni otwarte", "SUMMARY:Dni otwarte\r\nthis is garbage"),
                         "line 19: 'this is garbage' is not an iCalendar line"),
        "cut short": (FOREIGN[:FOREIGN.index("END:VEVENT")], "line 4: BEGIN:VEVENT is never closed"),
        "wrong nesting": (FOREIGN.replace("END:VEVENT\r\nBEGIN:VEVENT", "END:VTODO\r\nBEGIN:VEVENT", 1),
                          "line 12: END:VTODO does not close anything"),
    }
    before = snapshot(await all_events(ctx))
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name}.ics"
        path.write_text(text, encoding="utf-8")
        assert await run(ctx, "events", "import", str(path)) == 1, name
        err = capsys.readouterr().err
        assert message in err and "nothing was imported" in err, (name, err)
        assert snapshot(await all_events(ctx)) == before, name  # nothing half-imported
    # An event that cannot be imported is skipped with its line and reason; the rest is imported.
    path = tmp_path / "bad event.ics"
    path.write_text(FOREIGN.replace("DTEND;VALUE=DATE:20270303", "DTEND;VALUE=DATE:20260101")
                    .replace("abc-", "new-"), encoding="utf-8")
    assert await run(ctx, "events", "import", str(path)) == 0
    out = capsys.readouterr().out
    assert "1 added" in out and "1 skipped" in out and "skipped: line 13, UID new-2@other: " in out


async def test_demo_seed_adds_events_once(ctx: AppContext) -> None:
    first = await seed(ctx)
    assert first["events"] == 10 and await count_events(ctx) == 10
    assert (await seed(ctx))["events"] == 0 and await count_events(ctx) == 10
    from infranet.calendar.conflicts import find_conflicts
    from infranet.calendar.event_input import EventInput

    rows = {e.uid: e for e in await all_events(ctx)}
    grants = rows["demo-granty@infranet.demo"]
    async with ctx.db.transaction() as s:
        report = await find_conflicts(s, ctx, EventInput(
            grants.title, grants.starts_at, grants.ends_at, district="m-olsztyn", category="training",
            audiences=["ngo"]), exclude_event_id=grants.id)
    assert [c.event.uid for c in report.high] == ["demo-rodo@infranet.demo"]
    assert rows["demo-targi@infranet.demo"].all_day and rows["demo-siec@infranet.demo"].rrule
