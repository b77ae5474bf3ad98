"""Writing a big import in short transactions, all or nothing.

SQLite has one writer at a time (`BEGIN IMMEDIATE`): a 20,000-event import written in one
transaction would make every other write of the service wait for minutes. So a source's
events are written a series at a time (`ics_import.Writer`) in transactions of about
`BUDGET` seconds, with a pause between them, and the import keeps its all-or-nothing
meaning by undoing: the source's rows are read before the first batch, and if a later one
fails, the rows the import added are deleted and the others restored as they were.
(Another writer of the same source meanwhile is not expected: a source is imported by one
round or one command at a time.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, update

from infranet.calendar.events import mark_changed
from infranet.calendar.ics_import import Writer
from infranet.context import AppContext
from infranet.storage.models import Event

BUDGET = 0.3  # seconds of writing per transaction (the write lock held about that long)
# Between two transactions: another process waiting for the lock (the service, while the CLI
# imports) polls at SQLite's busy-handler pace, up to 100 ms apart; without a pause the
# importer takes the lock again first every time.
PAUSE = 0.1


async def write_in_batches(ctx: AppContext, writer: Writer, source_id: int) -> float:
    """Write the writer's plan for the source; the longest hold of the write lock. Undone
    whole when any batch fails (the exception is raised again)."""
    before = await _snapshot(ctx, source_id)
    try:
        return await _in_batches(ctx, writer)
    except BaseException:
        await _undo(ctx, source_id, before)
        raise


async def _in_batches(ctx: AppContext, writer: Writer) -> float:
    """Write the plan in transactions of about BUDGET seconds; the longest hold."""
    items = writer.plan.masters
    position, longest = 0, 0.0
    missing: list[int] | None = None
    while position < len(items) or missing is None or missing:
        async with ctx.db.transaction() as session:
            locked = time.perf_counter()
            if position < len(items):
                window = items[position:position + 200]
                position += await writer.series(session, window, deadline=locked + BUDGET)
            if position >= len(items):
                if missing is None:
                    missing = await writer.missing(session)
                while missing and time.perf_counter() - locked < BUDGET:
                    await writer.cancel(session, [missing.pop()])
        longest = max(longest, time.perf_counter() - locked)
        await asyncio.sleep(PAUSE)
    return longest


async def _snapshot(ctx: AppContext, source_id: int) -> list[dict[str, Any]]:
    """Every row of the source as it is (what an undo restores)."""
    table = Event.__table__
    async with ctx.db.read() as session:
        rows = await session.execute(select(table).where(table.c.source_id == source_id))
        return [dict(row._mapping) for row in rows]


async def _undo(ctx: AppContext, source_id: int, before: list[dict[str, Any]]) -> None:
    """Put the source's rows back as `_snapshot` read them: the rows added since deleted,
    the others restored (an import that failed half-way leaves nothing behind)."""
    table = Event.__table__
    assert isinstance(table, Table)
    kept = {row["id"] for row in before}
    async with ctx.db.transaction() as session:
        query = select(table.c.id).where(table.c.source_id == source_id)
        ids = [id_ for (id_,) in await session.execute(query)]
        added = [id_ for id_ in ids if id_ not in kept]
        for start in range(0, len(added), 500):
            await session.execute(delete(table).where(table.c.id.in_(added[start:start + 500])))
        if before:
            names = [c.name for c in table.columns if c.name != "id"]
            statement = (update(table).where(table.c.id == bindparam("_id"))
                         .values({name: bindparam("_" + name) for name in names}))
            await session.execute(statement, [{"_" + k: v for k, v in row.items()} for row in before])
        mark_changed(session, ctx)
