"""The one seam between following a calendar (`source_refresh.py`) and importing it.

`sync_source(session, ctx, source, text)` is called with the body of a followed calendar
whenever it changed (by its hash), inside the write transaction that also records the
fetch; what it raises rolls the import back and counts as a failed fetch of that source
(its message is stored in `last_error` and shown to the members).

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

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.ics_report import ConflictNote, Skipped, SyncReport
from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.models import CalendarSource

__all__ = ["ConflictNote", "Skipped", "SyncReport", "sync_source"]


async def sync_source(session: AsyncSession, ctx: AppContext, source: CalendarSource,
                      text: bytes | str) -> SyncReport:
    """Bring the source's events in `session` up to `text` (a calendar, bytes or decoded).
    Raise an InfranetError (ValidationFailed with the line) to refuse the file whole."""
    from infranet.calendar.ics_import import import_ics

    return await import_ics(session, ctx, Actor.system(), text,
                            organisation_id=source.organisation_id,
                            district=source.district, category=source.category, source_id=source.id)
