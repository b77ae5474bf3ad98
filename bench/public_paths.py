"""INFRANET_BENCH_PUBLIC=driver,rows: a bench measures without the SQLite fast paths.

The two fast paths of `infranet/storage/` are kept for the gain their docstrings give; this
switch lets `bench/bot.py` and `bench/calendar.py` measure it again, with a library upgraded
or on other hardware. It is read by the benches (and the bot processes they start), never by
the service. `driver`: SQLAlchemy's own aiosqlite adapter instead of
`storage/sqlite_driver.one_trip_dbapi()`; `rows`: `(await connection.execute(...)).all()`
instead of `storage/hotpath.fetch_rows`. Call `use_public_paths()` once everything is imported.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import Any

ENV = "INFRANET_BENCH_PUBLIC"


def use_public_paths() -> None:
    wanted = {w.strip() for w in os.environ.get(ENV, "").split(",") if w.strip()}
    callers: list[Any] = []
    if unknown := wanted - {"driver", "rows"}:
        raise SystemExit(f"{ENV}: unknown {sorted(unknown)}; driver, rows or both")
    if "driver" in wanted:
        import sqlite3

        import aiosqlite
        from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

        import infranet.storage.engine as storage_engine

        def stock_dbapi() -> Any:
            return AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite3)

        storage_engine.one_trip_dbapi = stock_dbapi  # type: ignore[assignment]
    if "rows" in wanted:
        import infranet.calendar
        from infranet.storage import hotpath

        for info in pkgutil.iter_modules(infranet.calendar.__path__, "infranet.calendar."):
            importlib.import_module(info.name)  # every caller imported, so that each is found

        async def plain(connection: Any, statement: Any, params: Any) -> Any:
            return (await connection.execute(statement, dict(params))).all()

        fast = hotpath.fetch_rows
        callers = [m for m in list(sys.modules.values()) if getattr(m, "fetch_rows", None) is fast]
        for module in callers:
            module.fetch_rows = plain  # type: ignore[union-attr]
    if wanted:
        replaced = ", ".join(m.__name__ for m in callers)
        print(f"({ENV}={','.join(sorted(wanted))}; fetch_rows replaced in: {replaced or 'none'})",
              file=sys.stderr)
