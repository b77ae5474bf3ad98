"""Importing a calendar file: everything it can show, each source kept to its own events.

Two steps. `prepare` reads and checks the whole file outside any transaction: the bytes
(`ics_read`: encodings, folds, structure), each VEVENT (`ics_event`: times, zones, text)
and the rules every event meets (`validate_event`). What cannot be imported is skipped
with its line, UID and reason; only a file that is not a calendar at all is refused whole.
Then `apply` writes, in the caller's transaction, only what changed:

- An event is known by its UID *within its source* (`events.source_id`, `source_uid`):
  two organisations' calendars may use the same UID and never touch each other's events
  (the second one's stored `uid` is made unique). A file imported with no source (the CLI
  without `--org`) matches the events that came from no source, by their UID, as before.
- A newer copy updates the event; an older one (lower SEQUENCE, or the same SEQUENCE and
  an earlier LAST-MODIFIED) never overwrites a newer one.
- For a source, an event that is no longer in the file (and has not ended) is cancelled:
  kept, and published as CANCELLED for the feeds' keep window.
- A changed date of a series (RECURRENCE-ID) becomes an override, EXDATE cancels dates;
  for a source, a date it no longer lists as moved or cancelled is the series' own again.
- New clashes with other organisations' events are listed (`SyncReport.conflicts`).

Nothing is half-written: `apply` writes in the caller's one transaction (a followed
calendar: `source_sync`); `ics_file` writes a source's file with `Writer` in short
transactions and undoes them all if one fails.

A little over 400 lines: `prepare` and `apply` are the two halves of one sync and read
best together; reading, text and batches already live in their own modules.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from icalendar import Calendar
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import recurrence
from infranet.calendar.event_input import NormalisedEvent, validate_event
from infranet.calendar.events import (
    add_event,
    cancel_event,
    cancel_occurrence,
    mark_changed,
    move_occurrence,
    update_event,
)
from infranet.calendar.ics_conflicts import conflicts_of
from infranet.calendar.ics_event import Incoming, Skip, Zones, file_zones, incoming, zone_named
from infranet.calendar.ics_read import Read, broken, read_calendar
from infranet.calendar.ics_report import ImportResult, Skipped, SyncReport
from infranet.context import AppContext
from infranet.errors import InfranetError, ValidationFailed
from infranet.region import UnknownDistrict
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import Event, EventStatus, Organisation

__all__ = ["ImportResult", "Plan", "SyncReport", "apply", "import_ics", "prepare"]

_KINDS = {"VTODO": "a VTODO (a task), not an event", "VJOURNAL": "a VJOURNAL (a note), not an event",
          "VFREEBUSY": "a VFREEBUSY, not an event"}
_CHUNK = 500
_POSTCODE = re.compile(r"\b\d{2}-\d{3}\b")


@dataclass
class Plan:
    """A file read and checked, nothing written yet."""

    masters: list[tuple[Incoming, NormalisedEvent]] = field(default_factory=list)
    overrides: list[tuple[Incoming, NormalisedEvent]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    uids: set[str] = field(default_factory=set)  # every UID the file names, skipped or not
    partial: set[str] = field(default_factory=set)  # UIDs with a RECURRENCE-ID skipped
    note: str | None = None


def district_finder(ctx: AppContext) -> Any:
    """(X-INFRANET-DISTRICT, LOCATION) -> (the district to ask for, whether the file said it).
    A LOCATION names a district when one of its comma-separated parts (a postal code
    dropped) is a district's, subregion's or seat's name or a TERYT code."""

    def find(own: str | None, location: str | None) -> tuple[str | None, bool]:
        if own and own.strip():
            return own.strip(), True
        for part in reversed((location or "").split(",")):
            key = _POSTCODE.sub("", part).strip()
            if not key or len(key) > 60:
                continue
            try:
                return ctx.region.match(key).slug, True
            except UnknownDistrict:
                continue
        return None, False

    return find


def prepare(ctx: AppContext, data: bytes | str, *, organisation_id: int | None = None,
            district: str | None = None, category: str | None = None, source_only: bool = False,
            orgs_by_name: dict[str, int] | None = None) -> Plan:
    """Read and check the whole file (no database). Raise ValidationFailed, naming the line,
    only for a file that is not a calendar."""
    read: Read = read_calendar(data)
    try:
        calendar = Calendar.from_ical(read.text)
    except (ValueError, KeyError, IndexError) as exc:
        raise broken(1, f"cannot read the file: {exc}") from None
    floating_name = str(calendar.get("X-WR-TIMEZONE") or "").strip() or None
    zones = Zones(ctx.tz, zone_named(floating_name) if floating_name else None, floating_name,
                  file_zones(calendar))
    defaults = {"organisation_id": organisation_id, "district": district, "category": category,
                "source_only": source_only}
    plan = Plan(note=read.note)
    now = ctx.now()
    find = district_finder(ctx)
    vevents = iter(calendar.walk("VEVENT"))
    masters: dict[str, Incoming] = {}
    pending: list[tuple[Incoming, NormalisedEvent]] = []
    seen: dict[tuple[str, datetime | None], int] = {}
    for part in read.parts:
        if part.kind in _KINDS:
            plan.skipped.append(Skipped(part.line, part.uid, _KINDS[part.kind]))
            continue
        if part.kind != "VEVENT":
            continue
        component = next(vevents)
        plan.uids.add(part.uid)
        try:
            item = _incoming(zones, component, part.line, defaults, find, orgs_by_name or {})
            plan.uids.add(item.uid)
            key = (item.uid, item.recurrence_id)
            if key in seen:
                raise Skip(f"UID {item.uid!r} {'with this RECURRENCE-ID ' if item.recurrence_id else ''}"
                           f"appears twice (first at line {seen[key]})")
            seen[key] = part.line
            if item.recurrence_id is not None:
                item.data = replace(item.data, rrule=None, uid=None)
            norm = _validated(ctx, item)
            if norm.last_ends_at <= now:
                raise Skip("past event: it ended before the import")
        except Skip as skip:
            plan.skipped.append(Skipped(part.line, part.uid, skip.reason))
            if component.get("RECURRENCE-ID") is not None:
                plan.partial.add(part.uid)
            continue
        if item.recurrence_id is None:
            masters[item.uid] = item
            plan.masters.append((item, norm))
        else:
            pending.append((item, norm))
    for item, norm in pending:
        if item.uid not in masters:
            plan.skipped.append(Skipped(item.line, item.uid, "RECURRENCE-ID of a series that is not "
                                                             "in the file (or was skipped)"))
        else:
            plan.overrides.append((item, norm))
    return plan


def _incoming(zones: Zones, component: Any, line: int, defaults: dict[str, Any], find: Any,
              orgs_by_name: dict[str, int]) -> Incoming:
    """`ics_event.incoming`, a property icalendar cannot read (`DTSTART:2027011`) skipped too."""
    try:
        return incoming(zones, component, line, defaults, find, orgs_by_name)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise Skip(f"cannot read the event: {str(exc)[:200]}") from None


def _validated(ctx: AppContext, item: Incoming) -> NormalisedEvent:
    try:
        return validate_event(ctx, item.data)
    except ValidationFailed as exc:
        raise Skip(exc.localized("en")) from None
    except (ValueError, TypeError) as exc:
        raise Skip(str(exc)) from None


async def organisations_by_name(session: AsyncSession) -> dict[str, int]:
    rows = (await session.execute(select(Organisation.name_folded, Organisation.id))).all()
    return {name: id_ for name, id_ in rows}


async def import_ics(session: AsyncSession, ctx: AppContext, actor: Actor, data: bytes | str, *,
                     organisation_id: int | None = None, district: str | None = None,
                     category: str | None = None, source_id: int | None = None) -> SyncReport:
    """Read, check and write `data` in the caller's transaction (see the module's doc)."""
    plan = prepare(ctx, data, organisation_id=organisation_id, district=district, category=category,
                   source_only=source_id is not None, orgs_by_name=await organisations_by_name(session))
    return await apply(session, ctx, actor, plan, source_id=source_id)


def _older(item: Incoming, row: Event) -> bool:
    """The file's copy is older than what was imported before (RFC 5545 §3.8.7.4)."""
    stored = row.source_sequence or 0
    if item.sequence != stored:
        return item.sequence < stored
    return (item.modified is not None and row.source_modified is not None
            and item.modified < row.source_modified)


def _same(row: Event, norm: NormalisedEvent) -> bool:
    return (row.title == norm.title and row.description == norm.description
            and row.location == norm.location and row.url == norm.url
            and row.starts_at == norm.starts_at and row.ends_at == norm.ends_at
            and row.all_day == norm.all_day
            and recurrence.definition(row.rrule) == recurrence.definition(norm.rrule)
            and row.district.slug == norm.district.slug and row.category == norm.category
            and list(row.audiences) == list(norm.audiences)
            and (norm.organisation_id is None or row.organisation_id == norm.organisation_id))


def _stamp(row: Event, item: Incoming, source_id: int | None) -> None:
    row.source_id, row.source_uid = source_id, item.uid
    row.source_sequence, row.source_modified = item.sequence, item.modified


async def _stored(session: AsyncSession, source_id: int | None, uids: list[str]) -> dict[str, Event]:
    """The stored series and single events of the scope with these UIDs in the file."""
    found: dict[str, Event] = {}
    for start in range(0, len(uids), _CHUNK):
        chunk = uids[start:start + _CHUNK]
        if source_id is not None:
            query = select(Event).where(Event.source_id == source_id, Event.series_id.is_(None),
                                        or_(Event.source_uid.in_(chunk),
                                            and_(Event.source_uid.is_(None), Event.uid.in_(chunk))))
        else:
            query = select(Event).where(Event.uid.in_(chunk), Event.source_id.is_(None),
                                        Event.series_id.is_(None))
        for row in await session.scalars(query):
            found.setdefault(row.source_uid or row.uid, row)
    return found


async def _free_uid(session: AsyncSession, uid: str, source_id: int | None) -> str:
    """The UID to store: the file's, unless another source or event holds it already."""
    if await session.scalar(select(Event.id).where(Event.uid == uid)) is None:
        return uid
    digest = hashlib.sha256(f"{source_id}|{uid}".encode()).hexdigest()[:16]
    return f"{uid[:200]}-{source_id or 0}-{digest}"


def _in_series(ctx: AppContext, row: Event, moment: datetime) -> bool:
    return row.status != EventStatus.CANCELLED and bool(row.rrule) and any(
        span.start == moment for span in recurrence.expand(row.rrule, row.starts_at, row.ends_at,
                                                           row.all_day, ctx.tz))


@dataclass
class Writer:
    """Writes a plan a series at a time (`series`), then cancels what left the source
    (`cancel_missing`): in one transaction (`apply`) or in several (`ics_file`)."""

    ctx: AppContext
    actor: Actor
    plan: Plan
    source_id: int | None
    report: SyncReport = field(default_factory=SyncReport)
    changed: list[tuple[Event, Incoming]] = field(default_factory=list)
    _overrides: dict[str, list[tuple[Incoming, NormalisedEvent]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.report.skipped, self.report.note = list(self.plan.skipped), self.plan.note
        for item, norm in self.plan.overrides:
            self._overrides.setdefault(item.uid, []).append((item, norm))

    async def series(self, session: AsyncSession, items: list[tuple[Incoming, NormalisedEvent]],
                     deadline: float | None = None) -> int:
        """Write these events of the file (single events or series with their overrides), or
        as many as fit before `deadline` (time.perf_counter()); how many were written."""
        done = 0
        for start in range(0, len(items), _CHUNK):
            chunk = items[start:start + _CHUNK]
            stored = await _stored(session, self.source_id, [item.uid for item, _ in chunk])
            for item, norm in chunk:
                if deadline is not None and done and time.perf_counter() >= deadline:
                    return done
                await self._one(session, stored.get(item.uid), item, norm)
                done += 1
        return done

    async def _one(self, session: AsyncSession, row: Event | None, item: Incoming,
                   norm: NormalisedEvent) -> None:
        try:
            row = await _master(session, self.ctx, self.actor, self.report, row, item, norm,
                                self.source_id, self.changed)
        except InfranetError as exc:
            raise broken(item.line, f"event {item.data.title!r}: {exc.localized('en')}") from None
        self.report.ids.append(row.id)
        for override, onorm in self._overrides.get(item.uid, []):
            try:
                await _override(session, self.ctx, self.actor, self.report, row, override, onorm,
                                self.changed)
            except InfranetError as exc:
                raise broken(override.line, f"event {override.data.title!r}: "
                                            f"{exc.localized('en')}") from None
        if (self.source_id is not None and row.rrule and item.uid not in self.plan.partial
                and row.status != EventStatus.CANCELLED and not _older(item, row)):
            await self._restore(session, row, item)

    async def _restore(self, session: AsyncSession, row: Event, item: Incoming) -> None:
        """A source's file is the truth about its series: a date it no longer lists as
        cancelled (EXDATE) or moved (RECURRENCE-ID) is the series' own date again (the
        override row of a date no longer moved is deleted)."""
        overrides = self._overrides.get(item.uid, [])
        taken = recurrence.exclusions(row.rrule)
        cancelled = set(item.exdates) | {o.recurrence_id for o, _ in overrides if o.cancelled}
        moved = {o.recurrence_id for o, _ in overrides if not o.cancelled}
        back = (taken[recurrence.CANCELLED] - cancelled) | (taken[recurrence.MOVED] - moved)
        if not back:
            return
        await session.execute(delete(Event).where(Event.series_id == row.id,
                                                  Event.recurrence_id.in_(sorted(back))))
        row.rrule = recurrence.with_exclusions(row.rrule or "", taken[recurrence.CANCELLED] - back,
                                               taken[recurrence.MOVED] - back)
        row.revision += 1
        await session.flush()
        await audit.record(session, self.actor, "event.restore_occurrences", "event", row.id,
                           occurrences=",".join(m.isoformat() for m in sorted(back)))
        mark_changed(session, self.ctx)
        self.report.updated += 1

    async def missing(self, session: AsyncSession) -> list[int]:
        """The source's events no longer in the file that have not ended (not yet cancelled)."""
        if self.source_id is None:
            return []
        rows = await session.execute(select(Event.id, Event.source_uid, Event.uid).where(
            Event.source_id == self.source_id, Event.series_id.is_(None),
            Event.status != EventStatus.CANCELLED, Event.last_ends_at > self.ctx.now()))
        return [id_ for id_, source_uid, uid in rows if (source_uid or uid) not in self.plan.uids]

    async def cancel(self, session: AsyncSession, ids: list[int]) -> None:
        for event_id in ids:
            await cancel_event(session, self.ctx, self.actor, event_id)
            self.report.cancelled += 1


async def apply(session: AsyncSession, ctx: AppContext, actor: Actor, plan: Plan, *,
                source_id: int | None = None, check_conflicts: bool = True) -> SyncReport:
    """Write what `plan` changes, in the caller's transaction."""
    writer = Writer(ctx, actor, plan, source_id)
    await writer.series(session, plan.masters)
    await writer.cancel(session, await writer.missing(session))
    if check_conflicts:
        writer.report.conflicts = await conflicts_of(session, ctx, writer.changed)
    return writer.report


async def _master(session: AsyncSession, ctx: AppContext, actor: Actor, report: SyncReport,
                  row: Event | None, item: Incoming, norm: NormalisedEvent, source_id: int | None,
                  changed: list[tuple[Event, Incoming]]) -> Event:
    if row is None:
        data = replace(item.data, uid=await _free_uid(session, item.uid, source_id))
        row = await add_event(session, ctx, actor, data, source="import")
        _stamp(row, item, source_id)
        report.added += 1
        if item.cancelled:
            await cancel_event(session, ctx, actor, row.id)
            report.cancelled += 1
        else:
            changed.append((row, item))
    elif _older(item, row) or (row.status == EventStatus.CANCELLED
                               and (item.cancelled or source_id is None)):
        report.unchanged += 1
        return row
    elif item.cancelled:
        await cancel_event(session, ctx, actor, row.id)
        report.cancelled += 1
    elif row.status == EventStatus.CANCELLED:  # back in its source (after a glitch, say)
        await _revive(session, ctx, actor, row)
        row = await update_event(session, ctx, actor, row.id, replace(item.data, uid=None))
        report.updated += 1
        changed.append((row, item))
    elif _same(row, norm):
        report.unchanged += 1
    else:
        row = await update_event(session, ctx, actor, row.id, replace(item.data, uid=None))
        report.updated += 1
        changed.append((row, item))
    _stamp(row, item, source_id)
    for moment in item.exdates:
        if _in_series(ctx, row, moment):
            await cancel_occurrence(session, ctx, actor, row.id, moment)
    return row


async def _revive(session: AsyncSession, ctx: AppContext, actor: Actor, row: Event) -> None:
    """A source's event it cancelled (or that left it) and lists again as scheduled: the
    source is the truth about its events, so the event is scheduled again."""
    row.status, row.cancelled_at = EventStatus.SCHEDULED, None
    row.revision += 1
    await session.flush()
    await audit.record(session, actor, "event.restore", "event", row.id)
    mark_changed(session, ctx)


async def _override(session: AsyncSession, ctx: AppContext, actor: Actor, report: SyncReport,
                    series: Event, item: Incoming, norm: NormalisedEvent,
                    changed: list[tuple[Event, Incoming]]) -> None:
    """One changed date of a series: a new override, or the stored one brought up to date."""
    moment = item.recurrence_id
    assert moment is not None
    stored = await session.scalar(select(Event).where(Event.series_id == series.id,
                                                      Event.recurrence_id == moment))
    if stored is None:
        if not _in_series(ctx, series, moment):
            report.unchanged += 1
            return
        if item.cancelled:
            await cancel_occurrence(session, ctx, actor, series.id, moment)
            report.cancelled += 1
            return
        row = await move_occurrence(session, ctx, actor, series.id, moment, item.data)
        report.added += 1
        changed.append((row, item))
    elif _older(item, stored) or (stored.status == EventStatus.CANCELLED and (
            item.cancelled or series.source_id is None or series.status == EventStatus.CANCELLED)):
        report.unchanged += 1
        return
    elif item.cancelled:
        row = await cancel_event(session, ctx, actor, stored.id)
        report.cancelled += 1
    elif stored.status == EventStatus.CANCELLED:  # the series came back to its source
        await _revive(session, ctx, actor, stored)
        row = await update_event(session, ctx, actor, stored.id, item.data)
        report.updated += 1
        changed.append((row, item))
    elif _same(stored, norm):
        row = stored
        report.unchanged += 1
    else:
        row = await update_event(session, ctx, actor, stored.id, item.data)
        report.updated += 1
        changed.append((row, item))
    row.source_id, row.source_sequence, row.source_modified = series.source_id, item.sequence, item.modified
    report.ids.append(row.id)


