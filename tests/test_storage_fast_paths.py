"""The SQLite fast paths give what SQLAlchemy's public API gives; when they stop, they say so.

Two fast paths of `storage/` go past SQLAlchemy's public API on SQLite, each behind one seam:
`sqlite_driver.one_trip_dbapi()` (the engine's DBAPI module: one trip to aiosqlite's thread per
statement) and `hotpath.fetch_rows()` (compiled SQL run on the aiosqlite driver, raw rows back).
Their docstrings give the gain measured. Here the same statements go through the fast path
and through the public one, on the same data, with every kind of value the calendar stores
(aware datetimes to the microsecond, JSON lists, booleans, NULLs, IN lists, literals, LIMIT),
and must come back equal. A failure names SQLAlchemy's, aiosqlite's and SQLite's versions:
an upgrade has changed what a fast path relies on. The private names themselves (classes,
slots, methods) are checked one by one, by name, in `test_dependency_internals.py`.
On PostgreSQL each seam is the public path, which the last test pins.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import JSON, Boolean, DateTime, bindparam, delete, false, func, insert, select, update
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

import infranet.storage.engine as storage_engine
from infranet.context import AppContext
from infranet.storage.hotpath import fetch_rows
from infranet.storage.models import District, Event, EventStatus, Organisation
from infranet.storage.sqlite_driver import OneTripDBAPI
from infranet.storage.types import UTCDateTime, parse_timestamp
from tests.conftest import _create_all as create_all
from tests.conftest import make_context

AT = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
COLUMNS = (Event.id, Event.title, Event.starts_at, Event.ends_at, Event.all_day, Event.long_span,
           Event.audiences, Event.rrule, Event.organisation_id, Event.cancelled_at, Event.location,
           Event.status)

# Long-lived statements, as the callers of fetch_rows keep theirs (it caches their SQL).
STATEMENTS: dict[str, tuple[Select[Any], list[dict[str, Any]]]] = {
    "range, IN lists of ids and of strings": (
        select(*COLUMNS).where(Event.starts_at >= bindparam("lo"), Event.starts_at < bindparam("hi"),
                               Event.category.in_(bindparam("categories", expanding=True)),
                               Event.id.in_(bindparam("ids", expanding=True))).order_by(Event.id),
        [{"lo": AT - timedelta(days=1), "hi": AT + timedelta(days=9), "categories": c, "ids": i}
         for c in (["meeting"], ["meeting", "training", "fair"]) for i in ([1], [1, 2, 3, 4], [99])]),
    "booleans bound and literal, IS NULL, an enum literal, LIMIT": (
        select(*COLUMNS).where(Event.all_day == bindparam("all_day"), Event.long_span.is_(false()),
                               Event.rrule.is_(None), Event.status == EventStatus.SCHEDULED)
        .order_by(Event.starts_at.desc(), Event.id).limit(bindparam("limit")),
        [{"all_day": flag, "limit": n} for flag in (True, False) for n in (1, 10)]),
    "a timestamp to the microsecond, on both sides of a boundary": (
        select(Event.id, Event.starts_at).where(Event.starts_at == bindparam("at")).order_by(Event.id),
        [{"at": AT + timedelta(microseconds=us)} for us in (0, 1, 123456, 123457)]),
    "aggregates: a count and the latest timestamp (NULL when nothing matches)": (
        select(func.count(), func.max(Event.starts_at), func.max(Event.cancelled_at))
        .where(Event.district_id.in_(bindparam("districts", expanding=True))),
        [{"districts": d} for d in ([1], [1, 2], [-1])]),
}


def versions() -> str:
    return (f"SQLAlchemy {version('SQLAlchemy')}, aiosqlite {version('aiosqlite')}, "
            f"SQLite {sqlite3.sqlite_version}")


def as_read(statement: Select[Any], row: Sequence[Any]) -> tuple[Any, ...]:
    """A raw row of `fetch_rows` as its callers read it (`storage.types.parse_timestamp`,
    `json.loads` of text, `bool` of 0/1), by the type of each selected column."""
    out = []
    for column, value in zip(statement.selected_columns, row, strict=True):
        kind = column.type
        if value is not None and isinstance(kind, DateTime | UTCDateTime):
            value = parse_timestamp(value)
        elif isinstance(value, str) and isinstance(kind, JSON):
            value = json.loads(value)
        elif value is not None and isinstance(kind, Boolean):
            value = bool(value)
        out.append(value)
    return tuple(out)


async def store_events(ctx: AppContext) -> None:
    """Four events with every kind of value: NULLs and not, booleans both ways, a timestamp
    with microseconds, JSON empty and not (with Polish letters), a series, a cancelled one."""
    async with ctx.db.transaction() as s:
        organisation = Organisation(name="Fundacja Ąę", name_folded="fundacja ae", type="COP")
        s.add(organisation)
        await s.flush()
        districts = (await s.execute(select(District.id).order_by(District.id).limit(2))).scalars().all()
        values: list[dict[str, Any]] = [
            {"title": "Spotkanie", "starts_at": AT, "all_day": False, "audiences": ["ngo", "youth"],
             "rrule": None, "organisation_id": None, "cancelled_at": None, "location": None},
            {"title": "Zażółć gęślą jaźń", "starts_at": AT + timedelta(microseconds=123456),
             "all_day": True, "audiences": [], "rrule": None, "organisation_id": organisation.id,
             "cancelled_at": None, "location": "ul. Długa 1"},
            {"title": "Cykl", "starts_at": AT + timedelta(days=1), "all_day": False,
             "audiences": ["seniorzy – ąę"], "rrule": "FREQ=WEEKLY;COUNT=3",
             "organisation_id": organisation.id, "cancelled_at": None, "location": None},
            {"title": "Odwołane", "starts_at": AT + timedelta(days=2), "all_day": True,
             "audiences": ["ngo"], "rrule": None, "organisation_id": None, "status": EventStatus.CANCELLED,
             "cancelled_at": AT - timedelta(hours=1, microseconds=7), "location": None},
        ]
        for n, row in enumerate(values):
            end = row["starts_at"] + timedelta(hours=2)
            row.update(uid=f"fast-{n}@test", title_folded=row["title"].lower(), ends_at=end,
                       last_ends_at=end, long_span=False, category=("meeting", "training")[n % 2],
                       district_id=districts[n % 2])
        await s.execute(insert(Event), values)


# --- storage/hotpath.py: fetch_rows against execute() ------------------------------------------

async def test_fetch_rows_reads_what_execute_reads(ctx: AppContext) -> None:
    await store_events(ctx)
    compared = 0
    async with ctx.db.read() as s:
        connection = await s.connection()
        for name, (statement, cases) in STATEMENTS.items():
            for params in cases:
                expected = [tuple(r) for r in (await connection.execute(statement, params)).all()]
                got = [as_read(statement, r) for r in await fetch_rows(connection, statement, params)]
                assert got == expected, (
                    f"{versions()} on {ctx.db.dialect}: storage/hotpath.fetch_rows reads other rows than "
                    f"execute() for {name} with {params}: {got} instead of {expected}")
                compared += len(expected)
    assert compared >= 15, f"only {compared} rows compared: the cases no longer match the events"


# --- storage/sqlite_driver.py: one trip per statement against SQLAlchemy's own adapter ---------

async def sqlite_context(tmp_path: Path, name: str) -> AppContext:
    url = f"sqlite+aiosqlite:///{tmp_path / name / 'test.db'}"
    (tmp_path / name).mkdir()
    await create_all(url)
    return await make_context(url, tmp_path / name / "data")


async def a_session_of_everything(ctx: AppContext) -> list[Any]:
    """What a caller of the engine sees, step by step: new ids, counts of changed rows,
    RETURNING, rows of every type, a streamed (server-side) result, a failed transaction
    and the state after it, reads without BEGIN."""
    seen: list[Any] = []
    await store_events(ctx)
    async with ctx.db.transaction() as s:
        first, second = (Organisation(name=n, name_folded=n.lower(), type="LGD") for n in ("Alfa", "Beta"))
        s.add_all([first, second])
        await s.flush()
        seen.append(("ids from lastrowid", first.id, second.id))
        connection = await s.connection()
        many = await connection.execute(insert(Organisation), [
            {"name": n, "name_folded": n.lower(), "type": "OWES"} for n in ("Gamma", "Delta")])
        seen.append(("executemany", many.rowcount))
        changed = await connection.execute(update(Event).where(Event.all_day.is_(True))
                                           .values(location=None, audiences=["x"]))
        seen.append(("update", changed.rowcount))
        gone = await connection.execute(delete(Organisation).where(Organisation.name == "Nobody"))
        seen.append(("delete nothing", gone.rowcount))
        returned = await connection.execute(
            update(Event).where(Event.title == "Cykl").values(cancelled_at=AT)
            .returning(Event.id, Event.cancelled_at, Event.audiences, Event.all_day))
        seen.append(("returning", [tuple(r) for r in returned.all()]))
    with pytest.raises(IntegrityError):
        async with ctx.db.transaction() as s:
            s.add(Organisation(name="Omega", name_folded="omega", type="COP"))
            await s.flush()
            await s.execute(insert(Organisation), [{"name": "Alfa", "name_folded": "alfa", "type": "COP"}])
    async with ctx.db.read() as s:
        for name, (statement, cases) in STATEMENTS.items():
            for params in cases:
                seen.append((name, params, [tuple(r) for r in (await s.execute(statement, params)).all()]))
        seen.append(("after the failed transaction", (await s.execute(
            select(Organisation.name).order_by(Organisation.name))).scalars().all()))
        seen.append(("ORM objects", [(e.title, e.starts_at, e.audiences, e.all_day, e.organisation_id)
                                     for e in (await s.execute(select(Event).order_by(Event.id))).scalars()]))
    async with ctx.db.engine.connect() as connection:
        streamed = await connection.stream(select(*COLUMNS).order_by(Event.id))
        seen.append(("streamed", [tuple(r) async for r in streamed]))
    return seen


async def test_the_one_trip_driver_gives_what_sqlalchemys_adapter_gives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = await sqlite_context(tmp_path, "fast")
    with monkeypatch.context() as patch:  # the same engine, on SQLAlchemy's own aiosqlite module
        patch.setattr(storage_engine, "one_trip_dbapi",
                      lambda: AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite3))
        public = await sqlite_context(tmp_path, "public")
    try:
        assert isinstance(fast.db.engine.dialect.loaded_dbapi, OneTripDBAPI)
        assert not isinstance(public.db.engine.dialect.loaded_dbapi, OneTripDBAPI)
        got, expected = await a_session_of_everything(fast), await a_session_of_everything(public)
    finally:
        await fast.db.dispose()
        await public.db.dispose()
    for step, want in zip(got, expected, strict=True):
        assert step == want, (f"{versions()}: storage/sqlite_driver.py (one trip per statement) gives "
                              f"{step!r} where SQLAlchemy's aiosqlite adapter gives {want!r}")


# --- the seams on PostgreSQL: the public path -------------------------------------------------

async def test_the_seams_are_the_public_path_off_sqlite(ctx: AppContext) -> None:
    dbapi = ctx.db.engine.dialect.loaded_dbapi
    assert isinstance(dbapi, OneTripDBAPI) == (ctx.db.dialect == "sqlite"), (
        f"{ctx.db.dialect} engine on {type(dbapi).__name__}: storage/engine.create_engine must hand "
        f"one_trip_dbapi() to SQLite engines only")
    if ctx.db.dialect == "sqlite":
        return
    await store_events(ctx)
    statement, cases = STATEMENTS["range, IN lists of ids and of strings"]
    params = cases[-2]  # every category, ids 1-4
    async with ctx.db.read() as s:
        connection = await s.connection()
        rows = await fetch_rows(connection, statement, params)
        # processed values, as execute() gives them: the plain path, not a raw driver call
        assert rows and isinstance(rows[0][2], datetime) and rows[0][2].tzinfo is not None
        assert [tuple(r) for r in rows] == [tuple(r) for r in
                                            (await connection.execute(statement, params)).all()]
