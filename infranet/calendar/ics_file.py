"""`infranet events import FILE`: a file imported as one of its organisation's sources.

A file names its source: `--source NAME` with `--org`, or by default the file's name
(`events.ics`), a `calendar_sources` row with no URL (never fetched), created at the
first import. So importing the next export of the same calendar updates its events,
cancels those no longer in it, and never touches another organisation's or source's
events, exactly as a calendar followed by URL. Without `--org` the file has no source
and matches, by UID, the events that came from no source (an export of this very
calendar imported back), and cancels nothing that is missing.

The file is read and checked before any transaction (`ics_import.prepare`). A source's
file is then written in short transactions of at most about `BUDGET` seconds each (SQLite
has one writer at a time, `BEGIN IMMEDIATE`: the running service's writes wait for one
batch, not for the whole file), and keeps its all-or-nothing meaning by undoing: the
source's rows are read before the first batch, and if a later batch fails, the rows the
import added are deleted and the others restored as they were, in one transaction. A
file with no source is written in one transaction. `Imported.lock_seconds` is the longest
hold of the write lock (a 20,000-event import: see the README).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, update

from infranet.calendar.events import mark_changed
from infranet.calendar.ics_conflicts import conflicts_of, notices_for_others
from infranet.calendar.ics_import import Writer, apply, organisations_by_name, prepare
from infranet.calendar.ics_report import SyncReport
from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.models import CalendarSource, Event, Organisation, SourceStatus
from infranet.validation import plain_text

NAME_MAX = 200
BUDGET = 0.3  # seconds of writing per transaction (the write lock held about that long)
# Between two transactions: another process waiting for the lock (the service, while the CLI
# imports) polls at SQLite's busy-handler pace, up to 100 ms apart; without a pause the
# importer takes the lock again first every time.
PAUSE = 0.1


@dataclass
class Imported:
    report: SyncReport
    source_id: int | None
    lock_seconds: float
    prepare_seconds: float


async def file_source(ctx: AppContext, organisation_id: int, name: str) -> int:
    """The id of the organisation's file source `name` (created when new)."""
    label = plain_text(name)[:NAME_MAX] or "file"
    async with ctx.db.transaction() as session:
        source = await session.scalar(select(CalendarSource).where(
            CalendarSource.organisation_id == organisation_id, CalendarSource.url.is_(None),
            CalendarSource.name == label))
        if source is None:
            source = CalendarSource(organisation_id=organisation_id, url=None, name=label,
                                    created_at=ctx.now(), status=SourceStatus.ACTIVE)
            session.add(source)
            await session.flush()
        return source.id


async def import_file(ctx: AppContext, actor: Actor, path: Path, data: bytes, *,
                      organisation_id: int | None = None, source: str | None = None,
                      district: str | None = None, category: str | None = None) -> Imported:
    """Read, check, then write `data` (see the module's doc); ValidationFailed for a file
    that is not a calendar, before anything is written."""
    started = time.perf_counter()
    async with ctx.db.read() as session:
        orgs = await organisations_by_name(session)
    plan = prepare(ctx, data, organisation_id=organisation_id, district=district, category=category,
                   source_only=organisation_id is not None, orgs_by_name=orgs)
    prepared = time.perf_counter() - started
    if organisation_id is None:
        async with ctx.db.transaction() as session:
            locked = time.perf_counter()
            report = await apply(session, ctx, actor, plan)
        return Imported(report, None, time.perf_counter() - locked, prepared)
    source_id = await file_source(ctx, organisation_id, source or path.name)
    writer = Writer(ctx, actor, plan, source_id)
    before = await _snapshot(ctx, source_id)
    longest = 0.0
    try:
        longest = await _in_batches(ctx, writer)
    except BaseException:
        await _undo(ctx, source_id, before)
        raise
    async with ctx.db.read() as session:
        writer.report.conflicts = await conflicts_of(session, ctx, writer.changed)
        org = await session.get(Organisation, organisation_id)
        name = org.name if org else "—"
    for org_id, key, params in notices_for_others(ctx, name, writer.report.conflicts):
        await ctx.notices.tell_organisation(org_id, key, **params)
    return Imported(writer.report, source_id, longest, prepared)


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
