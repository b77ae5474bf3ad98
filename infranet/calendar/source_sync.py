"""The one seam between following a calendar (`source_refresh.py`) and importing it.

`sync_source(session, ctx, source, text)` is called with the body of a followed calendar
whenever it changed (by its hash), inside the write transaction that also records the
fetch; what it raises rolls the import back and counts as a failed fetch of that source
(its message is stored in `last_error` and shown to the members).

For now it imports through `ics_import.import_ics` (as `infranet events import` does), after
refusing a file that names by UID an event of another organisation or source (see
`_refuse_foreign_uids`), and marks the events it brought with the source
(`events.source_id`) and the source's organisation. The importer's rework replaces the
body with the per-source sync: changed events updated by SEQUENCE/LAST-MODIFIED, events
gone from the source cancelled, events of other sources never touched, skipped events with
their reasons, and the conflicts found, all in the `SyncReport` below, whose shape the
callers (refresh, /calendar_source, the CLI) already use: `conflicts` are told to the
organisation's members after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from icalendar import Calendar
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.storage.actors import Actor
from infranet.storage.models import CalendarSource, Event


@dataclass(frozen=True)
class ConflictNote:
    """A date of this source's event that clashes with another organisation's event."""

    title: str
    starts_at: datetime
    other_title: str
    other_organisation: str


@dataclass(frozen=True)
class Skipped:
    """An event of the file left out, and why (line, UID, reason in English)."""

    line: int
    uid: str
    reason: str


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    # New conflicts the import found (the importer fills it; told to the members).
    conflicts: list[ConflictNote] = field(default_factory=list)

    def summary(self) -> str:
        """One English line for logs and the CLI."""
        return (f"{self.added} added, {self.updated} updated, {self.cancelled} cancelled, "
                f"{self.unchanged} unchanged, {len(self.skipped)} skipped")


async def sync_source(session: AsyncSession, ctx: AppContext, source: CalendarSource,
                      text: str) -> SyncReport:
    """Bring the source's events in `session` up to `text` (a calendar, already decoded).
    Raise an InfranetError (ValidationFailed with the line) to refuse the file whole."""
    from infranet.calendar.ics_import import import_ics

    await _refuse_foreign_uids(session, source, text)
    result = await import_ics(session, ctx, Actor.system(), text,
                              organisation_id=source.organisation_id,
                              district=source.district, category=source.category)
    # The events (and their moved occurrences) are the source's and its organisation's, whatever
    # ORGANIZER the file names: a member's calendar speaks for that member's organisation only.
    for start in range(0, len(result.ids), 500):
        ids = result.ids[start:start + 500]
        await session.execute(update(Event).where(or_(Event.id.in_(ids), Event.series_id.in_(ids)))
                              .values(source_id=source.id, organisation_id=source.organisation_id))
    return SyncReport(added=result.added, updated=result.updated, unchanged=result.unchanged,
                      cancelled=result.cancelled)


async def _refuse_foreign_uids(session: AsyncSession, source: CalendarSource, text: str) -> None:
    """Until the per-source sync keeps each source to its own events: refuse a file that
    names (by UID) an event of another organisation or of another source. UIDs are public
    (every feed shows them), and `import_ics` updates whatever event bears the UID, with the
    service's rights here, so without this a member could move or cancel anybody's events
    by serving a calendar with their UIDs."""
    try:
        uids = sorted({str(c.get("UID")) for c in Calendar.from_ical(text).walk("VEVENT")
                       if c.get("UID") is not None})
    except (ValueError, KeyError, IndexError):
        return  # not readable: import_ics refuses it, naming the line
    for start in range(0, len(uids), 500):
        foreign = await session.scalar(select(Event.uid).where(
            Event.uid.in_(uids[start:start + 500]),
            or_(Event.organisation_id.is_(None), Event.organisation_id != source.organisation_id,
                and_(Event.source_id.is_not(None), Event.source_id != source.id))).limit(1))
        if foreign is not None:
            raise ValidationFailed("sources.foreign_uid", uid=foreign)
