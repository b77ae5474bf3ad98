"""Commands on events: add, update, cancel, moderate, and single occurrences of a series.

Each command checks who acts (role and organisation), validates what is given (rules in
`infranet.calendar.event_input`), writes the rows with an audit record, and tells the
process's caches that events change (`mark_changed`, kept here so that no command can
forget it). Reading events is `infranet.calendar.event_queries`.

- `async add_event(session, ctx, actor, data, *, source="bot") -> Event`
- `async update_event(session, ctx, actor, event_id, data) -> Event` (revision += 1)
- `async cancel_event(session, ctx, actor, event_id) -> Event` (a series: its overrides too)
- `async move_occurrence(session, ctx, actor, series_id, start, data) -> Event` — one
  occurrence of a series changed: an override event (RECURRENCE-ID in feeds)
- `async cancel_occurrence(session, ctx, actor, series_id, start) -> Event` — one occurrence
  of a series cancelled (EXDATE in feeds)
- `async series_size(session, ctx, event) -> int` — how many dates a series has now
- `async moderate_event(session, ctx, actor, event_id, publish) -> Event` (admins)
- `async get_event(session, event_id) -> Event`

Business functions flush but never commit; callers own the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from infranet.calendar import recurrence
from infranet.calendar.district_ids import district_id_map
from infranet.calendar.event_input import (
    LONG_SPAN,
    EventInput,
    NormalisedEvent,
    human_moment,
    validate_event,
)
from infranet.calendar.event_search import index_words
from infranet.context import AppContext
from infranet.errors import NotFound, ValidationFailed
from infranet.region import fold
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import District, Event, EventStatus, Moderation, Organisation
from infranet.validation import plain_text

# --- change notification --------------------------------------------------------------


def mark_changed(session: AsyncSession, ctx: AppContext) -> None:
    """Tell this process's caches (the feeds') that events change in `session`'s
    transaction; see `infranet.changes`."""
    ctx.changes.events.changing(session)


# --- operations ------------------------------------------------------------------------


def new_uid(ctx: AppContext) -> str:
    """A fresh event UID under the service's host name, so feeds' UIDs stay globally unique."""
    host = urlsplit(ctx.settings.http.public_base_url).hostname or "infranet"
    return f"{uuid.uuid4()}@{host}"


def _moderation_for(ctx: AppContext, actor: Actor, org: Organisation | None) -> str:
    mode = ctx.settings.calendar.moderation
    if actor.is_admin or mode == "none":
        return Moderation.PUBLISHED
    if mode == "all":
        return Moderation.PENDING
    return Moderation.PUBLISHED if org is not None and org.trusted else Moderation.PENDING


def apply_input(event_row: Event, norm: NormalisedEvent, district_id: int) -> None:
    """Copy validated fields onto a row; shared with proposals, so both write the same columns."""
    event_row.title = norm.title
    event_row.title_folded = fold(norm.title)[:200]  # NFKD may lengthen a title (ligatures)
    event_row.description = norm.description
    event_row.location = norm.location
    event_row.url = norm.url
    event_row.registration_url = norm.registration_url
    event_row.starts_at = norm.starts_at
    event_row.ends_at = norm.ends_at
    event_row.last_ends_at = norm.last_ends_at
    event_row.long_span = norm.ends_at - norm.starts_at > LONG_SPAN
    event_row.all_day = norm.all_day
    event_row.rrule = norm.rrule
    event_row.district_id = district_id
    event_row.category = norm.category
    event_row.audiences = list(norm.audiences)


async def _organisation(session: AsyncSession, org_id: int | None) -> Organisation | None:
    """The organisation, read afresh (whether it is trusted decides moderation); its
    districts are not needed here, and not read."""
    if org_id is None:
        return None
    org = await session.get(Organisation, org_id, options=[raiseload(Organisation.districts)])
    if org is None:
        raise ValidationFailed("error.not_found.organisation", field="organisation", id=org_id)
    return org


async def add_event(session: AsyncSession, ctx: AppContext, actor: Actor, data: EventInput,
                    *, source: str = "bot") -> Event:
    """Add an event for the actor's organisation (admins: for any, by default their own, which
    for an admin without one is the network's secretariat; the CLI and imports: none)."""
    if data.organisation_id is None and not actor.is_admin:
        data = _with_org(data, actor.require_approved().organisation_id)
    elif data.organisation_id is None and actor.member is not None:
        data = _with_org(data, actor.member.organisation_id)
    actor.require_org(data.organisation_id)
    norm = validate_event(ctx, data)
    org = await _organisation(session, norm.organisation_id)
    uid = await _uid_for(session, ctx, data.uid)
    district_id = (await district_id_map(session, ctx))[norm.district.slug]
    row = Event(uid=uid, organisation_id=norm.organisation_id,
                member_id=actor.member.id if actor.member else None, status=EventStatus.SCHEDULED,
                moderation=_moderation_for(ctx, actor, org), revision=0, source=source,
                training_id=data.training_id)
    apply_input(row, norm, district_id)
    # The relationships callers read, set here rather than refreshed after the insert.
    row.organisation = org
    row.district = await session.get_one(District, district_id)
    session.add(row)
    await session.flush()
    await index_words(session, row, row.id, new=True)
    await audit.record(session, actor, "event.add", "event", row.id, title=row.title,
                       moderation=row.moderation)
    mark_changed(session, ctx)
    return row


async def _uid_for(session: AsyncSession, ctx: AppContext, given: str | None) -> str:
    """The event's UID: the one given (an import), checked for a clear message, or a new one."""
    uid = plain_text(given or "")  # it ends up in every feed: one line, nothing invisible
    if not uid:
        return new_uid(ctx)  # random: the unique index is guard enough
    if len(uid) > 255:
        raise ValidationFailed("error.too_long", field="uid", length=len(uid), limit=255)
    if await session.scalar(select(Event.id).where(Event.uid == uid)):
        raise ValidationFailed("error.uid_taken", field="uid", value=uid)
    return uid


def _with_org(data: EventInput, org_id: int | None) -> EventInput:
    from dataclasses import replace

    return replace(data, organisation_id=org_id)


async def get_event(session: AsyncSession, event_id: int) -> Event:
    row = await session.get(Event, event_id)
    if row is None:
        raise NotFound("error.not_found.event", id=event_id)
    return row


async def _for_change(session: AsyncSession, actor: Actor, event_id: int) -> Event:
    row = await get_event(session, event_id)
    actor.require_org(row.organisation_id)
    return row


async def update_event(session: AsyncSession, ctx: AppContext, actor: Actor, event_id: int,
                       data: EventInput) -> Event:
    """Replace an event's fields (its UID stays); SEQUENCE in feeds grows with `revision`."""
    row = await _for_change(session, actor, event_id)
    if row.status == EventStatus.CANCELLED:
        raise ValidationFailed("error.event_cancelled", field="status", id=event_id)
    if data.organisation_id is None:
        data = _with_org(data, row.organisation_id)
    if data.organisation_id != row.organisation_id:
        actor.require_org(data.organisation_id)
    norm = validate_event(ctx, data)
    await _organisation(session, norm.organisation_id)
    ids = await district_id_map(session, ctx)
    before = row.rrule
    apply_input(row, norm, ids[norm.district.slug])
    await _keep_exclusions(session, ctx, row, before)
    row.organisation_id = norm.organisation_id
    if data.training_id is not None:
        row.training_id = data.training_id
    row.revision += 1
    await session.flush()
    await index_words(session, row, row.id)
    await session.refresh(row, ["organisation", "district"])
    await audit.record(session, actor, "event.update", "event", row.id, revision=row.revision)
    mark_changed(session, ctx)
    return row


async def cancel_event(session: AsyncSession, ctx: AppContext, actor: Actor, event_id: int) -> Event:
    """Mark cancelled (kept, and published as STATUS:CANCELLED for a while); a series goes
    with its moved occurrences."""
    row = await _for_change(session, actor, event_id)
    if row.status == EventStatus.CANCELLED:
        return row
    row.status = EventStatus.CANCELLED
    row.cancelled_at = ctx.now()
    row.revision += 1
    await _cancel_overrides(session, ctx, row.id)
    await session.flush()
    await audit.record(session, actor, "event.cancel", "event", row.id)
    mark_changed(session, ctx)
    return row


# --- single occurrences of a series ---------------------------------------------------------



async def _cancel_overrides(session: AsyncSession, ctx: AppContext, series_id: int,
                            starts: Iterable[datetime] | None = None) -> None:
    """Cancel the scheduled overrides of a series (only those replacing `starts`, if given)."""
    query = update(Event).where(Event.series_id == series_id, Event.status == EventStatus.SCHEDULED)
    if starts is not None:
        wanted = list(starts)
        if not wanted:
            return
        query = query.where(Event.recurrence_id.in_(wanted))
    await session.execute(query.values(status=EventStatus.CANCELLED, cancelled_at=ctx.now(),
                                       revision=Event.revision + 1, updated_at=ctx.now())
                          .execution_options(synchronize_session=False))


async def _keep_exclusions(session: AsyncSession, ctx: AppContext, row: Event, before: str | None) -> None:
    """After a whole series changed: the occurrences taken out of it stay out where they
    are still occurrences of the new rule; the overrides of occurrences that no longer
    exist are cancelled (they would stand in for nothing)."""
    old = recurrence.exclusions(before)
    if not (old[recurrence.CANCELLED] or old[recurrence.MOVED]):
        return
    starts = {span.start for span in recurrence.expand_all(row.rrule, row.starts_at, row.ends_at,
                                                           row.all_day, ctx.tz)} if row.rrule else set()
    if row.rrule:
        row.rrule = recurrence.with_exclusions(row.rrule, old[recurrence.CANCELLED] & starts,
                                               old[recurrence.MOVED] & starts)
    await _cancel_overrides(session, ctx, row.id, old[recurrence.MOVED] - starts)


def _series_occurrence(ctx: AppContext, row: Event, start: datetime) -> recurrence.Span:
    """The occurrence of the series `row` starting at `start`, if it is still part of it."""
    if not row.rrule or row.series_id is not None:
        raise ValidationFailed("calendar.error.not_series")
    if row.status == EventStatus.CANCELLED:
        raise ValidationFailed("calendar.error.cancelled_event")
    for span in recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, ctx.tz):
        if span.start == start:
            return span
    raise ValidationFailed("calendar.error.occurrence_gone", when=human_moment(start.astimezone(ctx.tz)))


def _rule_text(rule: str) -> str:
    if len(rule) > recurrence.TEXT_MAX:
        raise ValidationFailed("calendar.error.series_full")
    return rule


async def move_occurrence(session: AsyncSession, ctx: AppContext, actor: Actor, series_id: int,
                          start: datetime, data: EventInput) -> Event:
    """Change one occurrence of a series (its date, place or anything else): an override
    event that names the series and the occurrence's original start. The series leaves
    that occurrence out; feeds publish the override with the series' UID and a
    RECURRENCE-ID, and listings and conflict checks see it as the event it now is."""
    from dataclasses import replace

    row = await _for_change(session, actor, series_id)
    _series_occurrence(ctx, row, start)
    norm = validate_event(ctx, replace(data, rrule=None, organisation_id=row.organisation_id,
                                       training_id=row.training_id, uid=None))
    taken = recurrence.exclusions(row.rrule)
    text = _rule_text(recurrence.with_exclusions(row.rrule or "", taken[recurrence.CANCELLED],
                                                 taken[recurrence.MOVED] | {start}))
    district_id = (await district_id_map(session, ctx))[norm.district.slug]
    override = Event(uid=new_uid(ctx), organisation_id=row.organisation_id,
                     member_id=actor.member.id if actor.member else None, status=EventStatus.SCHEDULED,
                     moderation=row.moderation, revision=0, source=row.source,
                     training_id=row.training_id, series_id=row.id, recurrence_id=start)
    apply_input(override, norm, district_id)
    override.organisation = row.organisation
    override.district = await session.get_one(District, district_id)
    session.add(override)
    row.rrule = text
    row.revision += 1
    await session.flush()
    await index_words(session, override, override.id, new=True)
    await audit.record(session, actor, "event.move_occurrence", "event", row.id, override=override.id,
                       occurrence=start.isoformat())
    mark_changed(session, ctx)
    return override


async def cancel_occurrence(session: AsyncSession, ctx: AppContext, actor: Actor, series_id: int,
                            start: datetime) -> Event:
    """Cancel one occurrence of a series (EXDATE in feeds). The last one left cancels the
    series itself."""
    row = await _for_change(session, actor, series_id)
    _series_occurrence(ctx, row, start)
    taken = recurrence.exclusions(row.rrule)
    row.rrule = _rule_text(recurrence.with_exclusions(row.rrule or "", taken[recurrence.CANCELLED] | {start},
                                                      taken[recurrence.MOVED]))
    row.revision += 1
    if not recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, ctx.tz) and not \
            await _live_overrides(session, row.id):
        row.status = EventStatus.CANCELLED
        row.cancelled_at = ctx.now()
    await session.flush()
    await audit.record(session, actor, "event.cancel_occurrence", "event", row.id,
                       occurrence=start.isoformat())
    mark_changed(session, ctx)
    return row


async def _live_overrides(session: AsyncSession, series_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(Event).where(
        Event.series_id == series_id, Event.status == EventStatus.SCHEDULED)) or 0)


async def series_size(session: AsyncSession, ctx: AppContext, row: Event) -> int:
    """How many dates a series has now: its own occurrences and its moved ones (1 for a
    single event)."""
    if not row.rrule:
        return 1
    own = len(recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, ctx.tz))
    return own + await _live_overrides(session, row.id)


async def moderate_event(session: AsyncSession, ctx: AppContext, actor: Actor, event_id: int,
                         publish: bool) -> Event:
    """Publish or reject a pending event; publishing makes its organisation trusted."""
    actor.require_admin()
    row = await get_event(session, event_id)
    row.moderation = Moderation.PUBLISHED if publish else Moderation.REJECTED
    if publish and row.organisation_id is not None:
        org = await session.get(Organisation, row.organisation_id)
        if org is not None and not org.trusted:
            org.trusted = True
    await session.flush()
    await audit.record(session, actor, "event.publish" if publish else "event.reject", "event",
                       row.id)
    mark_changed(session, ctx)
    return row
