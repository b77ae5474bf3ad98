"""`infranet events import FILE`: a file imported as one of its organisation's sources.

A file names its source: `--source NAME` with `--org`, or by default the file's name
(`events.ics`), a `calendar_sources` row with no URL (never fetched), created at the
first import. So importing the next export of the same calendar updates its events,
cancels those no longer in it, and never touches another organisation's or source's
events, exactly as a calendar followed by URL. Without `--org` the file has no source
and matches, by UID, the events that came from no source (an export of this very
calendar imported back), and cancels nothing that is missing.

The file is read and checked before any transaction (`ics_import.prepare`). A source's
file is then written in short transactions, undone whole if one fails
(`ics_batches.write_in_batches`); a file with no source in one transaction.
`Imported.lock_seconds` is the longest hold of the write lock (a 20,000-event import: see
the README).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from infranet.calendar.ics_batches import write_in_batches
from infranet.calendar.ics_conflicts import clashes_of, notices_for_others, record_kept
from infranet.calendar.ics_import import Writer, apply, organisations_by_name, prepare
from infranet.calendar.ics_report import SyncReport
from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.models import CalendarSource, Organisation, SourceStatus
from infranet.validation import plain_text

NAME_MAX = 200


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
    longest = await write_in_batches(ctx, writer, source_id)
    async with ctx.db.read() as session:
        writer.report.conflicts, clashes = await clashes_of(session, ctx, writer.changed)
        org = await session.get(Organisation, organisation_id)
        name = org.name if org else "—"
    if clashes:  # the coordination figures: each clashing event kept its date
        async with ctx.db.transaction() as session:
            await record_kept(session, clashes)
    for org_id, key, params in notices_for_others(ctx, name, writer.report.conflicts):
        await ctx.notices.tell_organisation(org_id, key, **params)
    return Imported(writer.report, source_id, longest, prepared)
