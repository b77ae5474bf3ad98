"""SQLAlchemy's aiosqlite adapter, with one trip to the driver's thread per statement.

aiosqlite runs sqlite3 in a thread of its own, and every call is a hand-off to that
thread and back (0.1-0.2 ms each here). SQLAlchemy's adapter makes four per statement:
open a cursor, execute, fetch the rows, close the cursor. Saving a bot's event (four
statements) spent more time crossing threads than in SQLite. Here the cursor is opened,
run, read and closed in one trip, and what SQLAlchemy asks afterwards (description,
rowcount, lastrowid) is kept from it. Server-side (streamed) cursors keep SQLAlchemy's
own path: they fetch in pieces by design.

A read session on SQLite sends no BEGIN (see `engine.py`), yet SQLAlchemy still commits
it and the pool rolls every connection back when it comes back: two more trips for a
session of one statement, with nothing to end. Each trip notes whether SQLite is inside
a transaction afterwards (`Connection.in_transaction`, read in the driver's thread), and
commit and rollback make their trip only when it is. The connections run in autocommit
mode (`isolation_level = None`), so only an explicit BEGIN, which comes through these
cursors, opens a transaction; a note that is stale can only say "inside", which costs a
trip that was not needed, never a rollback skipped.

One seam: `one_trip_dbapi()`, handed by `engine.create_engine` to SQLite engines only as
`create_async_engine(url, module=one_trip_dbapi())`, the engine's documented way to hand a
dialect another DBAPI module (PostgreSQL engines keep asyncpg's). The tests of the whole suite
run on it. It reaches into private internals: SQLAlchemy's `AsyncAdapt_aiosqlite_cursor`,
`_connection` and `_dbapi` classes (their slots, `_execute_async`, `_executemany_async`,
`_cursor_cls`, `_execute_mutex`) and aiosqlite's `Connection._execute` and `._conn`.
`tests/test_dependency_internals.py` names each one and fails, with the library's version, when
one changes; `tests/test_storage_fast_paths.py` runs the same statements on this module and on
SQLAlchemy's own and wants the same results (ids, counts, RETURNING, every column type).

Measured gain (2026-12-03; SQLAlchemy 2.1.9, aiosqlite 0.22.1, SQLite 3.40.1, Python 3.11.7,
2 cores with a load average of 3-8 from other work): each piece of work run in turn on this
module and on SQLAlchemy's own adapter, in one process on one database, 300-400 times, so that
the load falls on both alike (mean, then p50; 20,000 and 100,000 events in three runs):
a conflict check that finds nothing 2.3-3.7 ms against 3.0-4.6 (15-24% less; p50 15-31%),
the confirm step's conflict check and free-date search 15.6-23.3 against 16.5-25.6 ms (5-9%);
in one run (20,000 events) one event read by primary key 2.4 against 3.3 ms (28%) and one
audit row written in a transaction 2.9 against 3.4 ms (14%; every bot update writes its state
so). `/check`'s listing (`first_events`) gains nothing measurable (-10% to +10%): its queries
go through `hotpath.fetch_rows`. End to end, the bots of `bench/bot.py` (20,000 events) and
the checks of `bench/calendar.py` (100,000) could not tell it apart under that load: the p99
of the same code swung 2-5x between runs. Re-measure: `INFRANET_BENCH_PUBLIC=driver` runs
both benches on SQLAlchemy's adapter.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT


class _Finished:
    """What SQLAlchemy reads from a cursor after its statement, kept once it is closed."""

    __slots__ = ("arraysize", "description", "in_transaction", "lastrowid", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor | None = None) -> None:
        self.description = cursor.description if cursor else None
        self.rowcount = cursor.rowcount if cursor else -1
        self.lastrowid = cursor.lastrowid if cursor else None
        self.arraysize = cursor.arraysize if cursor else 1
        self.in_transaction = cursor.connection.in_transaction if cursor else False

    def close(self) -> None:
        """Nothing left to close: the sqlite3 cursor was closed in the driver's thread."""


def _run(connection: sqlite3.Connection, operation: str, parameters: Any,
         many: bool) -> tuple[_Finished, list[Any] | None]:
    """Runs in aiosqlite's thread: the whole life of one cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return _Finished(cursor), rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False  # `close()` has nothing to wait for

    def __init__(self, adapt_connection: Any) -> None:  # no trip to open a cursor
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = _Finished()  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            try:
                finished, rows = await driver._execute(_run, driver._conn, operation, parameters, many)
            except BaseException:
                _note_transaction(driver, True)  # unknown after a failure: end it to be sure
                raise
        _note_transaction(driver, finished.in_transaction)
        self._cursor = finished
        self._rows = collections.deque(rows or ())


_IN_TRANSACTION = "_infranet_in_transaction"


def _note_transaction(driver: aiosqlite.Connection, inside: bool) -> None:
    setattr(driver, _IN_TRANSACTION, inside)


def _inside_transaction(driver: aiosqlite.Connection) -> bool:
    return bool(getattr(driver, _IN_TRANSACTION, True))


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor

    def commit(self) -> None:
        if _inside_transaction(self._connection):  # type: ignore[arg-type]
            super().commit()
            _note_transaction(self._connection, False)  # type: ignore[arg-type]

    def rollback(self) -> None:
        if _inside_transaction(self._connection):  # type: ignore[arg-type]
            super().rollback()
            _note_transaction(self._connection, False)  # type: ignore[arg-type]


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        connection = super().connect(*arg, **kw)
        connection.__class__ = OneTripConnection  # the same object, with our cursors
        return connection


def one_trip_dbapi() -> OneTripDBAPI:
    """The DBAPI module of SQLite engines: SQLAlchemy's aiosqlite adapter with one trip to the
    driver's thread per statement (the seam of this module; its gain is measured above)."""
    return OneTripDBAPI(aiosqlite, sqlite3)
