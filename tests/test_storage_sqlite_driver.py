"""The SQLite engine's one-trip driver (storage/sqlite_driver.py) behaves as SQLAlchemy's own.

Every storage test of the suite runs on it; these pin what a one-trip cursor could get
wrong: what a write reports (new ids, counts of changed rows), a failing statement leaving
nothing behind, and the point of it all, one trip to the driver's thread per statement.
The behaviour tests run on PostgreSQL too, as the contract the rest of the code relies on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event
from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.models import Organisation
from tests.conftest import _create_all as create_all
from tests.conftest import make_context

AT = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


def org(name: str) -> Organisation:
    return Organisation(name=name, name_folded=name.lower(), type="COP")


async def test_writes_report_new_ids_and_changed_rows(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        first, second = org("Alfa"), org("Beta")
        s.add_all([first, second])
        await s.flush()
        assert first.id and second.id and first.id != second.id  # lastrowid
        connection = await s.connection()
        await connection.execute(insert(Organisation), [  # executemany
            {"name": n, "name_folded": n.lower(), "type": "LGD"} for n in ("Gamma", "Delta", "Epsilon")])
        changed = await connection.execute(update(Organisation).where(Organisation.type == "LGD")
                                  .values(type="OWES"))
        assert changed.rowcount == 3
        gone = await connection.execute(delete(Organisation).where(Organisation.name == "Nobody"))
        assert gone.rowcount == 0
    async with ctx.db.read() as s:
        by_name = select(Organisation.name, Organisation.type).order_by(Organisation.name)
        rows = (await s.execute(by_name)).all()
        empty = (await s.execute(select(Organisation.id).where(Organisation.name == "Nobody"))).all()
    assert [tuple(r) for r in rows] == [("Alfa", "COP"), ("Beta", "COP"), ("Delta", "OWES"),
                                        ("Epsilon", "OWES"), ("Gamma", "OWES")]
    assert empty == []


async def test_a_failing_statement_rolls_back_the_whole_transaction(ctx: AppContext) -> None:
    with pytest.raises(IntegrityError):
        async with ctx.db.transaction() as s:
            s.add(org("Alfa"))
            await s.flush()
            await s.execute(insert(Organisation), [{"name": "Alfa", "name_folded": "alfa", "type": "COP"}])
    async with ctx.db.transaction() as s:  # the connection went back to the pool usable
        assert await s.scalar(select(func.count()).select_from(Organisation)) == 0
        s.add(org("Alfa"))
    async with ctx.db.read() as s:
        assert await s.scalar(select(Organisation.name)) == "Alfa"


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the functions run in aiosqlite's thread, in order."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield seen


async def test_each_statement_is_one_trip_to_the_driver_thread(tmp_path: Path, trips: list[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"  # SQLite only: asyncpg has no thread
    await create_all(url)
    ctx = await make_context(url, tmp_path / "data")
    try:
        await _one_trip_each(ctx, trips)
    finally:
        await ctx.db.dispose()


async def _one_trip_each(ctx: AppContext, trips: list[str]) -> None:
    async with ctx.db.read() as s:
        await s.execute(select(Organisation.id))  # the connection is checked out and ready
    trips.clear()
    async with ctx.db.read() as s:
        await s.execute(select(Organisation.id).where(Organisation.name == "Alfa"))
    # SQLAlchemy's adapter: cursor, execute, fetchall, close; then a commit and the pool's
    # rollback, with no transaction to end (reads send no BEGIN)
    assert len(trips) == 1, trips
    trips.clear()
    async with ctx.db.transaction() as s:
        s.add(org("Alfa"))
    assert trips == ["_run", "_run", "commit"], trips  # BEGIN IMMEDIATE, INSERT, COMMIT
    async with ctx.db.transaction() as s:
        await s.execute(select(Organisation.id))
        trips.clear()
        row = await add_event(s, ctx, Actor.cli(), EventInput(
            "Spotkanie", AT, AT + timedelta(hours=2), district="olsztynski", category="meeting"))
        # the district row, the event, its words for the site's search, the audit entry
        assert len(trips) == 4, trips
        assert row.district.slug == "olsztynski" and row.organisation is None  # loaded, no query
        assert len(trips) == 4
