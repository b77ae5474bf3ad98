"""fetch_rows gives the rows SQLAlchemy's execute gives, on both engines.

Conflict checks and suggestion probes send their statements straight to the SQLite driver;
a value bound differently there (a timestamp as "…+00:00" instead of SQLite's stored text,
an enum, an expanding list) would silently move the boundaries of every check.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event
from infranet.calendar.summary import POOL_COLUMNS, pool_row
from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.hotpath import fetch_rows
from infranet.storage.models import Event, EventStatus

AT = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
BOUNDARY = (select(*POOL_COLUMNS)
            .where(Event.district_id.in_(bindparam("districts", expanding=True)),
                   Event.status == EventStatus.SCHEDULED,
                   Event.starts_at < bindparam("hi"), Event.last_ends_at > bindparam("lo"))
            .order_by(Event.id))


async def test_rows_and_boundaries_match_sqlalchemy(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        for hours, district in ((0, "olsztynski"), (2, "olsztynski"), (4, "elcki"), (6, "region")):
            start = AT + timedelta(hours=hours)
            await add_event(s, ctx, Actor.cli(), EventInput(
                f"Spotkanie {hours}", start, start + timedelta(hours=2), district=district,
                category="meeting", audiences=["ngo", "youth"]))
    async with ctx.db.read() as s:
        connection = await s.connection()
        ids = [i for (i,) in (await connection.execute(select(Event.district_id).distinct())).all()]
        # [lo, hi) touching events exactly at their ends: a timestamp bound as other text than
        # SQLite stores would let the event ending at `lo` in (or the one starting at `hi`).
        for lo, hi in ((AT + timedelta(hours=2), AT + timedelta(hours=4)),
                       (AT, AT + timedelta(hours=8)), (AT - timedelta(hours=1), AT)):
            for districts in (ids, ids[:1]):
                params = {"districts": districts, "lo": lo, "hi": hi}
                expected = [pool_row(r) for r in (await connection.execute(BOUNDARY, params)).all()]
                got = [pool_row(r) for r in await fetch_rows(connection, BOUNDARY, params)]
                assert got == expected, (lo, hi, districts)
        everything = {"districts": ids, "lo": AT - timedelta(days=1), "hi": AT + timedelta(days=1)}
        rows = [pool_row(r) for r in await fetch_rows(connection, BOUNDARY, everything)]
    assert [r.title for r in rows] == ["Spotkanie 0", "Spotkanie 2", "Spotkanie 4", "Spotkanie 6"]
    assert rows[0].audiences == ["ngo", "youth"] and rows[0].all_day is False
    assert rows[0].starts_at == AT and rows[0].starts_at.tzinfo is UTC
