"""Hot read statements run straight on the SQLite driver.

A conflict check or a suggestion probe is one indexed query that SQLite answers in about
0.3 ms; SQLAlchemy's execution adds its own work on every run (expanding IN lists rendered
again, each of up to hundreds of bound timestamps processed, a result processor per value):
a fifth to a third of a check's time here (measured below).
SQLAlchemy still builds and compiles the statement, once per shape; here the compiled SQL
and its parameter order are kept, values are bound with the statement's own processors,
and the query goes to aiosqlite in a single call (`execute_fetchall`, public). Rows come back
as the driver gives them (SQLite: timestamps and JSON as text, booleans as 0/1); callers
convert them with helpers that accept either engine's values (`types.parse_timestamp`).
On PostgreSQL this is a plain `execute`.

One seam: `fetch_rows`, called by the conflict check, the suggestion probes and the event
listings of `calendar/`. It reads SQLAlchemy internals of compiled statements
(`SQLCompiler.binds`, `construct_expanded_state`, `ExpandedState.positiontup`, the names
`name_1, name_2, ...` of expanding items); `tests/test_dependency_internals.py` names each
and fails with SQLAlchemy's version when one changes, and `tests/test_storage_fast_paths.py`
wants the same values as `execute()` for every kind of column (aware datetimes, JSON,
booleans, NULLs, IN lists, literals, LIMIT) on both engines.

Measured gain (2026-12-03; SQLAlchemy 2.1.9, aiosqlite 0.22.1, SQLite 3.40.1, Python 3.11.7,
2 cores with a load average of 3-8 from other work): each piece of work run in turn with
`fetch_rows` and with `(await connection.execute(...)).all()`, in one process on one database,
300-400 times, so that the load falls on both alike (mean, then p50; 20,000 and 100,000
events, three runs): the confirm step's conflict check and free-date search 15.6-23.3 ms
against 19.5-29.1 (20-26% less; p50 22-26%), a conflict check that finds nothing 2.3-3.7 against
2.7-4.8 ms (14-24%), `/check`'s listing of a day in a powiat (`first_events`) 2.7-5.7 against
3.7-7.4 ms (23-34%; p50 27-32%). With neither fast path, the three take 43-49%, 49-105%
and 45-76% longer than with both. End to end, the bots of `bench/bot.py` and the checks of
`bench/calendar.py` could not tell it apart under that load (the p99 of the same code swung
2-5x between runs). Re-measure: `INFRANET_BENCH_PUBLIC=rows` runs both benches on `execute()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

_SQLITE = sqlite.dialect()


async def fetch_rows(connection: AsyncConnection, statement: Executable,
                     params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    """All rows of `statement`; `params` holds every parameter it takes (lists for the
    expanding ones). The statement object must be long-lived (built once and reused)."""
    if connection.dialect.name != "sqlite":
        return (await connection.execute(statement, dict(params))).all()
    shape = tuple(sorted((name, len(value)) for name, value in params.items() if isinstance(value, list)))
    sql, order, constants, processors = _compiled(statement, shape)
    values = dict(constants)
    for name, value in params.items():
        if isinstance(value, list):
            values.update({f"{name}_{i}": item for i, item in enumerate(value, 1)})
        else:
            values[name] = value
    bound = [values[name] if process is None else process(values[name])
             for name, process in zip(order, processors, strict=True)]
    raw = await connection.get_raw_connection()
    return await raw.driver_connection.execute_fetchall(sql, bound)  # type: ignore[union-attr]


@lru_cache(maxsize=512)
def _compiled(statement: Executable, shape: tuple[tuple[str, int], ...]
              ) -> tuple[str, tuple[str, ...], dict[str, Any], tuple[Callable[[Any], Any] | None, ...]]:
    """SQL, parameter order, the statement's own values (its literals) and, position by
    position, the type's bind processor, for one statement with expanding lists of the given
    lengths (SQLite names their items `name_1`, `name_2`, ...)."""
    compiled = statement.compile(dialect=_SQLITE)  # type: ignore[attr-defined]
    binds = compiled.binds
    lengths = dict(shape)
    constants = {name: bind.value for name, bind in binds.items() if not bind.required and not bind.expanding}
    placeholders = {name: [0] * lengths[name] if bind.expanding else None
                    for name, bind in binds.items() if name not in constants}
    state = compiled.construct_expanded_state({**placeholders, **constants})
    assert state.positiontup is not None
    order = tuple(state.positiontup)
    types = [binds[name if name in binds else name.rsplit("_", 1)[0]].type for name in order]
    processors = tuple(type_.dialect_impl(_SQLITE).bind_processor(_SQLITE) for type_ in types)
    return state.statement, order, constants, processors
