"""`infranet events import FILE`: a file imported as one of its organisation's sources.

A file names its source: `--source NAME` with `--org`, or by default the file's name
(`events.ics`), a `calendar_sources` row with no URL (never fetched), created at the
first import. So importing the next export of the same calendar updates its events,
cancels those no longer in it, and never touches another organisation's or source's
events, exactly as a calendar followed by URL. Without `--org` the file has no source
and matches, by UID, the events that came from no source (an export of this very
calendar imported back), and cancels nothing that is missing.

The file is read and checked before any transaction (`ics_import.prepare`); the write
then runs in one transaction, and `Imported.lock_seconds` says how long it held the
write lock (SQLite: `BEGIN IMMEDIATE`, one writer at a time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from infranet.calendar.ics_conflicts import notices_for_others
from infranet.calendar.ics_import import apply, organisations_by_name, prepare
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
    source_id = None
    plan = prepare(ctx, data, organisation_id=organisation_id, district=district, category=category,
                   source_only=organisation_id is not None, orgs_by_name=orgs)
    if organisation_id is not None:
        source_id = await file_source(ctx, organisation_id, source or path.name)
    prepared = time.perf_counter()
    async with ctx.db.transaction() as session:
        locked = time.perf_counter()
        report = await apply(session, ctx, actor, plan, source_id=source_id)
    held = time.perf_counter() - locked
    if report.conflicts and organisation_id is not None:
        async with ctx.db.read() as session:
            org = await session.get(Organisation, organisation_id)
            name = org.name if org else "—"
        for org_id, key, params in notices_for_others(ctx, name, report.conflicts):
            await ctx.notices.tell_organisation(org_id, key, **params)
    return Imported(report, source_id, held, prepared - started)
