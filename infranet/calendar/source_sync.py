"""The one seam between following a calendar (`source_refresh.py`) and importing it.

`sync_source(session, ctx, source, text)` is called with the body of a followed calendar
whenever it changed (by its hash), inside the write transaction that also records the
fetch; what it raises rolls the import back and counts as a failed fetch of that source
(its message is stored in `last_error` and shown to the members). The file is best read
and checked before that transaction (`prepare_source`, in a worker thread: the event loop
and the write lock are not held while a big calendar is parsed) and handed in as `plan`;
on SQLite a big calendar is also written before it, in short transactions (`write_ahead`).

It is the per-source sync of `ics_import`: the source's events are known by their UID in
the source (`events.source_id`, `source_uid`), so a calendar that names another
organisation's or source's UIDs gets events of its own and changes nothing of theirs;
changed events are updated unless the file's copy is older (SEQUENCE, LAST-MODIFIED);
events gone from the source are cancelled; events that cannot be imported are skipped
with their reasons; and every event is its source's organisation's, whatever ORGANIZER
the file names (a member's calendar speaks for that member's organisation only). The
`SyncReport` lists all of it; its `conflicts` are told to the organisation's members after
the commit, and the other organisations concerned hear of them too
(`ics_conflicts.notices_for_others`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.ics_batches import write_in_batches
from infranet.calendar.ics_conflicts import clashes_of, record_kept
from infranet.calendar.ics_import import Plan, Writer, apply, prepare
from infranet.calendar.ics_report import ConflictNote, Skipped, SyncReport
from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.models import CalendarSource

__all__ = ["ConflictNote", "Prepared", "Skipped", "SyncReport", "prepare_source", "sync_source",
           "write_ahead"]

# From this many events on, a followed calendar is written ahead in batches (`write_ahead`).
AHEAD_FROM = 200


@dataclass(frozen=True)
class Prepared:
    """A followed calendar read and checked for the source as it was then."""

    key: tuple[int, int, str | None, str | None]
    plan: Plan


def _key(source: CalendarSource) -> tuple[int, int, str | None, str | None]:
    return (source.id, source.organisation_id, source.district, source.category)


def _prepare(ctx: AppContext, key: tuple[int, int, str | None, str | None], text: bytes | str) -> Plan:
    _id, organisation_id, district, category = key
    return prepare(ctx, text, organisation_id=organisation_id, district=district, category=category,
                   source_only=True)


async def prepare_source(ctx: AppContext, source_id: int, text: bytes | str) -> Prepared | None:
    """Read and check the calendar outside any transaction (None: no such source now).
    Raise ValidationFailed, naming the line, for a file that is not a calendar."""
    async with ctx.db.read() as session:
        source = await session.get(CalendarSource, source_id)
        if source is None:
            return None
        key = _key(source)
    return Prepared(key, await asyncio.to_thread(_prepare, ctx, key, text))


async def write_ahead(ctx: AppContext, source_id: int, plan: Prepared | None) -> SyncReport | None:
    """On SQLite, a big calendar's events are written before the transaction that records
    the fetch, in short transactions undone whole on failure (`ics_batches`): one
    transaction would hold the only write lock for as long as thousands of events take.
    None: nothing written (PostgreSQL, a small calendar, a source changed meanwhile), let
    `sync_source` do it in that transaction. Re-writing it there later is harmless: the
    sync is idempotent."""
    if plan is None or not ctx.db.is_sqlite or len(plan.plan.masters) < AHEAD_FROM:
        return None
    async with ctx.db.read() as session:
        source = await session.get(CalendarSource, source_id)
        if source is None or _key(source) != plan.key:
            return None
    writer = Writer(ctx, Actor.system(), plan.plan, source_id)
    await write_in_batches(ctx, writer, source_id)
    async with ctx.db.read() as session:
        writer.report.conflicts, clashes = await clashes_of(session, ctx, writer.changed)
    if clashes:  # the coordination figures: each clashing event kept its date
        async with ctx.db.transaction() as session:
            await record_kept(session, clashes)
    return writer.report


async def sync_source(session: AsyncSession, ctx: AppContext, source: CalendarSource,
                      text: bytes | str, *, plan: Prepared | None = None) -> SyncReport:
    """Bring the source's events in `session` up to `text` (a calendar, bytes or decoded).
    Raise an InfranetError (ValidationFailed with the line) to refuse the file whole."""
    key = _key(source)
    checked = plan.plan if plan is not None and plan.key == key else _prepare(ctx, key, text)
    return await apply(session, ctx, Actor.system(), checked, source_id=source.id)
