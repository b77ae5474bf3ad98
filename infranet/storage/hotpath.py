"""Hot read statements run straight on the SQLite driver.

A conflict check or a suggestion probe is one indexed query that SQLite answers in about
0.3 ms; through SQLAlchemy's execution (expanding IN lists rendered again, a result
processor per value; before `sqlite_driver.py`, also four calls into aiosqlite's thread)
the same query cost 1-3 ms, most of a check.
SQLAlchemy still builds and compiles the statement, once per shape; here the compiled SQL
and its parameter order are kept, values are bound with the statement's own processors,
and the query goes to aiosqlite in a single call. Rows come back as the driver gives them
(SQLite: timestamps and JSON as text, booleans as 0/1); callers convert them with helpers
that accept either engine's values. On PostgreSQL this is a plain `execute`.
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
