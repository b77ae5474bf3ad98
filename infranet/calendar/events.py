"""Events on the shared calendar: validation, add/update/cancel/moderate, listings.

Public API (stable; the bot, the newsletter, the HTTP app and the CLI call it):

- `EventInput` — what a user gives. Timed events: `start`/`end` are datetimes
  (aware; a naive one is wall-clock time in the region's zone). All-day events:
  `start`/`end` are dates and `end` is the LAST day, inclusive.
- `CATEGORIES`, `AUDIENCES` — codes; labels via `category_label`/`audience_label`.
- `validate_event(ctx, data) -> NormalisedEvent` — raises ValidationFailed.
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
- `async list_events(session, ctx, *, start, end, area=None, category=None, audience=None,
  organisation_id=None, include_cancelled=False, include_pending=False, viewer=None)
  -> list[Occurrence]` — recurrences expanded, sorted by start.
- `async first_events(session, ctx, *, start, end, limit, area=None, ...) -> OccurrencePage`
  — the first `limit` of those occurrences and the total count, cheaply (for /check); its
  occurrences carry `EventSummary` rows (see `infranet.calendar.summary`).
- `async page_events(session, ctx, *, start, end, limit, after=None, area=None, ...) -> EventPage`
  — published occurrences after a position (start, event id), a page at a time, with the
  period's total; only what the page needs is read and built (the JSON API's pages).

Business functions flush but never commit; callers own the transaction.
"""

from __future__ import annotations

import heapq
import json
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from infranet.calendar import recurrence, wallclock
from infranet.calendar.dates import localize
from infranet.calendar.summary import (
    POOL_COLUMNS,
    EventSummary,
    Rows,
    districts_by_id,
    pool_row,
    select_summaries,
    summarise,
)
from infranet.context import AppContext
from infranet.errors import NotFound, ValidationFailed
from infranet.i18n import numeric_date, t
from infranet.region import District as RegionDistrict
from infranet.region import UnknownDistrict, fold
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.hotpath import fetch_rows
from infranet.storage.models import District, Event, EventStatus, Moderation, Organisation
from infranet.storage.types import parse_timestamp, raw_timestamp, unindexed
from infranet.validation import clean_text, clean_url, plain_text

CATEGORIES = ("training", "conference", "meeting", "consultation", "fair", "other")
AUDIENCES = ("ngo", "residents", "youth", "seniors", "local-government", "other")


TITLE_MAX = 200
DESCRIPTION_MAX = 4000
LOCATION_MAX = 300
# A single (non-recurring) event lasts at most this long. The bound is what keeps
# conflict checks an indexed range scan: `starts_at > start - MAX_EVENT_SPAN`.
MAX_EVENT_DAYS = 31
MAX_EVENT_SPAN = timedelta(days=MAX_EVENT_DAYS + 1)
# Nearly every event lasts hours, or one day: at most LONG_SPAN (a day, the 25-hour day of
# the autumn DST change included). Range queries look back LONG_SPAN for those, and back
# MAX_EVENT_SPAN only among the few that last longer (`Event.long_span`, an index of their
# own): a day of the index is read instead of a month.
LONG_SPAN = timedelta(hours=25)


def category_label(code: str, lang: str = "pl") -> str:
    return t(lang, f"calendar.category.{code}")


def audience_label(code: str, lang: str = "pl") -> str:
    return t(lang, f"calendar.audience.{code}")


@dataclass
class EventInput:
    title: str
    start: datetime | date
    end: datetime | date
    all_day: bool = False
    district: str = "region"  # slug, TERYT or name; the region itself = region-wide
    category: str = "other"
    audiences: list[str] = field(default_factory=list)  # empty = everyone
    organisation_id: int | None = None
    description: str | None = None
    location: str | None = None
    url: str | None = None
    registration_url: str | None = None
    rrule: str | None = None  # "FREQ=WEEKLY;COUNT=6", "FREQ=MONTHLY;UNTIL=20270630"
    training_id: int | None = None
    uid: str | None = None


@dataclass(frozen=True)
class NormalisedEvent:
    """An EventInput checked and turned into what is stored (UTC, canonical RRULE)."""

    title: str
    description: str | None
    location: str | None
    url: str | None
    registration_url: str | None
    starts_at: datetime
    ends_at: datetime
    last_ends_at: datetime
    all_day: bool
    rrule: str | None
    district: RegionDistrict
    category: str
    audiences: tuple[str, ...]
    organisation_id: int | None

    def spans(self, tz: tzinfo) -> tuple[recurrence.Span, ...]:
        return recurrence.expand(self.rrule, self.starts_at, self.ends_at, self.all_day, tz)


# What an occurrence carries: the row itself (listings that edit) or a summary (pages, feeds).
E = TypeVar("E", Event, EventSummary)


@dataclass(frozen=True)
class Occurrence(Generic[E]):
    """One occurrence of an event (a series is expanded into many), in UTC."""

    event: E
    start: datetime
    end: datetime

    @property
    def all_day(self) -> bool:
        return self.event.all_day

    def first_day(self, tz: tzinfo) -> date:
        return self.start.astimezone(tz).date()

    def last_day(self, tz: tzinfo) -> date:
        """The last local day the occurrence touches (inclusive)."""
        return recurrence.local_days(self.start, self.end, tz)[-1]


# --- validation --------------------------------------------------------------------


def resolve_district(ctx: AppContext, query: str) -> RegionDistrict:
    try:
        return ctx.region.find(query)  # a slug from a form, or a name typed at the CLI
    except UnknownDistrict as exc:
        if exc.suggestions:  # "did you mean", in the reader's language
            raise ValidationFailed("error.district_hint", field="district", query=repr(query),
                                   names=", ".join(d.name for d in exc.suggestions)) from None
        raise ValidationFailed("calendar.error.district", field="district", query=repr(query),
                               hint="") from None


def _as_local(value: datetime | date, tz: tzinfo, field_name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValidationFailed("error.needs_time", field=field_name)
    if value.tzinfo is None:
        return localize(value, tz, field_name)
    return value.astimezone(tz)


def event_times(ctx: AppContext, data: EventInput, latest: datetime | None = None,
                ) -> tuple[datetime, datetime, datetime, datetime]:
    """The time rules of `validate_event` alone: (starts_at, ends_at) in UTC, the local
    start, and the horizon (`latest`, computed when not given). Free-date suggestions
    move a validated event to ~50 other dates, and only its times need checking again."""
    tz = ctx.tz
    if data.all_day:
        first = data.start.astimezone(tz).date() if isinstance(data.start, datetime) else data.start
        last = data.end.astimezone(tz).date() if isinstance(data.end, datetime) else data.end
        if last < first:
            raise ValidationFailed("calendar.error.end_before_start", start=numeric_date(first),
                                   end=numeric_date(last))
        starts_at, ends_at = wallclock.all_day_span(first, last, tz)
        local_start = starts_at.astimezone(tz)
    else:
        local_start = _as_local(data.start, tz, "start")
        local_end = _as_local(data.end, tz, "end")
        if local_end <= local_start:
            raise ValidationFailed("calendar.error.end_before_start",
                                   start=human_moment(local_start), end=human_moment(local_end))
        starts_at, ends_at = local_start.astimezone(UTC), local_end.astimezone(UTC)
    if ends_at - starts_at > timedelta(days=MAX_EVENT_DAYS):
        raise ValidationFailed("calendar.error.too_long_event", days=MAX_EVENT_DAYS)
    latest = latest or horizon(ctx)
    if starts_at > latest:
        raise ValidationFailed("calendar.error.too_far", limit=human_moment(latest.astimezone(tz)))
    return starts_at, ends_at, local_start, latest


def human_moment(local: datetime) -> str:
    """A local date and time as people write it: 5.12.2099 10:00."""
    return f"{numeric_date(local.date())} {local:%H:%M}"


def check_days(ctx: AppContext, first: date, last: date) -> None:
    """The rules on an event's days alone (no hours yet), so that a form's date step can
    refuse at once what the final save would refuse: too long, or beyond the horizon."""
    if (last - first).days + 1 > MAX_EVENT_DAYS:
        raise ValidationFailed("calendar.error.too_long_event", days=MAX_EVENT_DAYS)
    latest = horizon(ctx)
    if first > latest.date():
        raise ValidationFailed("calendar.error.too_far", limit=human_moment(latest.astimezone(ctx.tz)))


def horizon(ctx: AppContext) -> datetime:
    """How far ahead events may be planned: `[calendar] max_years_ahead` from now."""
    now_local = ctx.now().astimezone(ctx.tz)
    years = ctx.settings.calendar.max_years_ahead
    try:
        return now_local.replace(year=now_local.year + years)
    except ValueError:  # 29 February
        return now_local.replace(year=now_local.year + years, day=28)


def validate_event(ctx: AppContext, data: EventInput) -> NormalisedEvent:
    """Check everything that needs no database; return the stored form."""
    tz = ctx.tz
    title = clean_text(data.title, "title", TITLE_MAX, required=True)
    description = clean_text(data.description, "description", DESCRIPTION_MAX, multiline=True)
    location = clean_text(data.location, "location", LOCATION_MAX)
    url = clean_url(data.url, "url")
    registration_url = clean_url(data.registration_url, "registration_url")
    if data.category not in CATEGORIES:
        raise ValidationFailed("error.one_of", field="category", value=data.category,
                               choices=", ".join(CATEGORIES))
    unknown = [a for a in data.audiences if a not in AUDIENCES]
    if unknown:
        raise ValidationFailed("error.choose_from", field="audiences", values=", ".join(unknown),
                               choices=", ".join(AUDIENCES))
    district = resolve_district(ctx, data.district)
    starts_at, ends_at, local_start, latest = event_times(ctx, data)

    rule = None
    last_ends_at = ends_at
    if data.rrule and data.rrule.strip():
        # The occurrences taken out of a stored series are not part of what is given here;
        # `update_event` carries over those that still belong to the series.
        rule = recurrence.canonical_rule(recurrence.rule_part(data.rrule) or "", all_day=data.all_day,
                                         first_start_local=local_start, tz=tz, latest=latest)
        spans = recurrence.expand(rule, starts_at, ends_at, data.all_day, tz)
        if spans[-1].start > latest:
            raise ValidationFailed("calendar.error.too_far", limit=human_moment(latest.astimezone(tz)))
        last_ends_at = spans[-1].end
    return NormalisedEvent(
        title=title or "", description=description, location=location, url=url,
        registration_url=registration_url, starts_at=starts_at, ends_at=ends_at,
        last_ends_at=last_ends_at, all_day=data.all_day, rrule=rule, district=district,
        category=data.category, audiences=tuple(dict.fromkeys(data.audiences)),
        organisation_id=data.organisation_id)


# --- districts ----------------------------------------------------------------------

_district_cache: weakref.WeakKeyDictionary[object, dict[str, int]] = weakref.WeakKeyDictionary()


async def district_id_map(session: AsyncSession, ctx: AppContext) -> dict[str, int]:
    """slug -> districts.id, read once per Database (rows change only when the region is synced)."""
    cached = _district_cache.get(ctx.db)
    if cached is None or any(d.slug not in cached for d in ctx.region.districts):
        rows = await session.execute(select(District.slug, District.id))
        cached = {slug: id_ for slug, id_ in rows.all()}
        _district_cache[ctx.db] = cached
    return cached


async def area_district_ids(session: AsyncSession, ctx: AppContext,
                            areas: Iterable[RegionDistrict]) -> list[int]:
    """Ids of the districts whose events concern `areas`: each area, its parents and children."""
    ids = await district_id_map(session, ctx)
    wanted: dict[str, None] = {}
    for area in areas:
        for district in (area, *area.ancestors, *area.descendants):
            wanted[district.slug] = None
    return [ids[slug] for slug in wanted if slug in ids]


# --- change notification --------------------------------------------------------------


def mark_changed(session: AsyncSession, ctx: AppContext) -> None:
    """Tell this process's caches (the feeds') that events change in `session`'s
    transaction; see `infranet.changes`."""
    ctx.changes.events.changing(session)


# --- operations ------------------------------------------------------------------------


def _new_uid(ctx: AppContext) -> str:
    host = urlsplit(ctx.settings.http.public_base_url).hostname or "infranet"
    return f"{uuid.uuid4()}@{host}"


def _moderation_for(ctx: AppContext, actor: Actor, org: Organisation | None) -> str:
    mode = ctx.settings.calendar.moderation
    if actor.is_admin or mode == "none":
        return Moderation.PUBLISHED
    if mode == "all":
        return Moderation.PENDING
    return Moderation.PUBLISHED if org is not None and org.trusted else Moderation.PENDING


def _apply(event_row: Event, norm: NormalisedEvent, district_id: int) -> None:
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
    _apply(row, norm, district_id)
    # The relationships callers read, set here rather than refreshed after the insert.
    row.organisation = org
    row.district = await session.get_one(District, district_id)
    session.add(row)
    await session.flush()
    await audit.record(session, actor, "event.add", "event", row.id, title=row.title,
                       moderation=row.moderation)
    mark_changed(session, ctx)
    return row


async def _uid_for(session: AsyncSession, ctx: AppContext, given: str | None) -> str:
    """The event's UID: the one given (an import), checked for a clear message, or a new one."""
    uid = plain_text(given or "")  # it ends up in every feed: one line, nothing invisible
    if not uid:
        return _new_uid(ctx)  # random: the unique index is guard enough
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
    _apply(row, norm, ids[norm.district.slug])
    await _keep_exclusions(session, ctx, row, before)
    row.organisation_id = norm.organisation_id
    if data.training_id is not None:
        row.training_id = data.training_id
    row.revision += 1
    await session.flush()
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

# The column that holds a series' rule and the occurrences taken out of it.
RULE_TEXT_MAX = 300


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
    if len(rule) > RULE_TEXT_MAX:
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
    override = Event(uid=_new_uid(ctx), organisation_id=row.organisation_id,
                     member_id=actor.member.id if actor.member else None, status=EventStatus.SCHEDULED,
                     moderation=row.moderation, revision=0, source=row.source,
                     training_id=row.training_id, series_id=row.id, recurrence_id=start)
    _apply(override, norm, district_id)
    override.organisation = row.organisation
    override.district = await session.get_one(District, district_id)
    session.add(override)
    row.rrule = text
    row.revision += 1
    await session.flush()
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


def _codes(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


async def list_events(
    session: AsyncSession, ctx: AppContext, *, start: datetime, end: datetime,
    area: str | RegionDistrict | Sequence[str] | None = None,
    category: str | Sequence[str] | None = None, audience: str | Sequence[str] | None = None,
    organisation_id: int | Sequence[int] | None = None, include_cancelled: bool = False,
    include_pending: bool = False, viewer: Actor | None = None,
) -> list[Occurrence[Event]]:
    """Occurrences overlapping [start, end), sorted by start.

    `area`: a district (slug/TERYT/name) or several; events of the area, of its
    parents (a region-wide event concerns every powiat) and of its children count.
    `audience`: events for any of the given audiences (events without audiences
    are for everyone). `include_pending`: also events awaiting moderation — all
    of them for admins or `viewer=None`, only the viewer's organisation's otherwise.
    """
    shape, params = await _filter(session, ctx, start, end, area, category, organisation_id,
                                  include_cancelled, include_pending, viewer)
    rows = (await session.scalars(_list_statement(shape), params)).all()
    audiences = set(_codes(audience))
    found: list[Occurrence[Event]] = []
    for row in rows:
        if audiences and row.audiences and not audiences & set(row.audiences):
            continue
        for span in recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, ctx.tz):
            if span.start < end and span.end > start:
                found.append(Occurrence(row, span.start, span.end))
    found.sort(key=lambda o: (o.start, o.event.id))
    return found


@dataclass(frozen=True)
class _Shape:
    """Which filters a listing uses; their values travel as parameters, so that each shape is
    one statement, built and compiled once."""

    area: bool
    category: bool
    organisations: bool
    cancelled: bool
    pending: str  # "no" | "all" | "own" (published, and pending of the viewer's organisation)


async def _filter(
    session: AsyncSession, ctx: AppContext, start: datetime, end: datetime,
    area: str | RegionDistrict | Sequence[str] | None, category: str | Sequence[str] | None,
    organisation_id: int | Sequence[int] | None, include_cancelled: bool, include_pending: bool,
    viewer: Actor | None,
) -> tuple[_Shape, dict[str, Any]]:
    """The filters of `list_events` and `first_events` as a shape and its parameters."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed(field="period", detail="start and end must be aware datetimes")
    params: dict[str, Any] = {"start": start, "end": end}
    pending = "all" if include_pending else "no"
    if include_pending and viewer is not None and not viewer.is_admin:
        pending = "own"
        params["viewer_org"] = viewer.organisation_id
    if area is not None:
        areas = [area] if isinstance(area, (str, RegionDistrict)) else list(area)
        districts = [a if isinstance(a, RegionDistrict) else resolve_district(ctx, a) for a in areas]
        params["districts"] = await area_district_ids(session, ctx, districts)
    categories = _codes(category)
    if categories:
        params["categories"] = categories
    if organisation_id is not None:
        params["organisations"] = ([organisation_id] if isinstance(organisation_id, int)
                                   else list(organisation_id))
    shape = _Shape(area=area is not None, category=bool(categories),
                   organisations=organisation_id is not None, cancelled=include_cancelled, pending=pending)
    return shape, params


@lru_cache(maxsize=64)
def _list_statement(shape: _Shape) -> Select[Event]:
    return select(Event).where(*_shape_conditions(shape)).order_by(Event.starts_at, Event.id)


@lru_cache(maxsize=64)
def _shape_conditions(shape: _Shape, *, by_place: bool = True) -> tuple[ColumnElement[bool], ...]:
    """The filter; `by_place=False` keeps the district test out of the index choice (the
    events longer than a day are read through ix_events_long, whatever their place)."""
    conditions: list[ColumnElement[bool]] = [Event.starts_at < bindparam("end"),
                                             Event.last_ends_at > bindparam("start")]
    if not shape.cancelled:
        conditions.append(Event.status == EventStatus.SCHEDULED)
    if shape.pending == "own":
        conditions.append(or_(Event.moderation == Moderation.PUBLISHED,
                              and_(Event.moderation == Moderation.PENDING,
                                   Event.organisation_id == bindparam("viewer_org"))))
    elif shape.pending == "all":
        conditions.append(Event.moderation.in_([Moderation.PUBLISHED, Moderation.PENDING]))
    else:
        conditions.append(Event.moderation == Moderation.PUBLISHED)
    if shape.area:
        place = Event.district_id if by_place else unindexed(Event.district_id)
        conditions.append(place.in_(bindparam("districts", expanding=True)))
    if shape.category:
        conditions.append(Event.category.in_(bindparam("categories", expanding=True)))
    if shape.organisations:
        conditions.append(Event.organisation_id.in_(bindparam("organisations", expanding=True)))
    return tuple(conditions)


@dataclass(frozen=True)
class OccurrencePage:
    """The first occurrences of a period and how many there are in all."""

    occurrences: list[Occurrence]
    total: int


async def first_events(
    session: AsyncSession, ctx: AppContext, *, start: datetime, end: datetime, limit: int,
    area: str | RegionDistrict | Sequence[str] | None = None,
    category: str | Sequence[str] | None = None, organisation_id: int | Sequence[int] | None = None,
    include_cancelled: bool = False, include_pending: bool = False, viewer: Actor | None = None,
) -> OccurrencePage:
    """The first `limit` occurrences of `list_events(...)` (same filters but `audience`, same
    order) and the total count, without loading every event of the period: a busy day has
    hundreds of events and a chat shows fifteen. The events come as `EventSummary` rows.

    Single events: one indexed range query (`starts_at` bounded below by LONG_SPAN, and by
    MAX_EVENT_SPAN among the events longer than a day), ORDER BY starts_at LIMIT `limit`,
    the total as a window count in the same query. Series:
    a series runs for weeks, so hundreds may span a day while few meet on it; they are
    expanded from plain rows, and only those with an occurrence in the period are read whole.
    """
    if limit < 1:
        raise ValueError("first_events needs limit >= 1")
    shape, params = await _filter(session, ctx, start, end, area, category, organisation_id,
                                  include_cancelled, include_pending, viewer)
    districts = await districts_by_id(session, ctx)
    params.update(earliest=start - LONG_SPAN, long_earliest=start - MAX_EVENT_SPAN, limit=limit,
                  all_districts=list(districts))
    singles_query, series_query = _first_statements(shape)
    connection = await session.connection()
    total = 0
    found: list[Occurrence] = []
    for values in await fetch_rows(connection, singles_query, params):
        total = values[-1]
        summary = summarise(values, districts)
        found.append(Occurrence(summary, summary.starts_at, summary.ends_at))
    series_spans: dict[int, list[recurrence.Span]] = {}
    for id_, rule, starts_at, ends_at, all_day in await fetch_rows(connection, series_query, params):
        occurrences = recurrence.expand(rule, parse_timestamp(starts_at), parse_timestamp(ends_at),
                                        bool(all_day), ctx.tz)
        spans = [span for span in occurrences if span.start < end and span.end > start]
        if spans:
            series_spans[id_] = spans
    if series_spans:
        for values in await fetch_rows(connection, _SERIES_SUMMARIES, {"ids": list(series_spans)}):
            summary = summarise(values, districts)
            found.extend(Occurrence(summary, span.start, span.end) for span in series_spans[summary.id])
            total += len(series_spans[summary.id])
    found.sort(key=lambda o: (o.start, o.event.id))
    return OccurrencePage(found[:limit], total)


_SERIES_SUMMARIES = select_summaries().where(Event.id.in_(bindparam("ids", expanding=True)))


@lru_cache(maxsize=64)
def _first_statements(shape: _Shape) -> tuple[Rows, Rows]:
    """`first_events`' two queries for one filter shape, built once: they run on the SQLite
    driver directly (`fetch_rows`), which keeps each statement's compiled SQL."""
    conditions = _shape_conditions(shape)
    ids = union_all(
        select(Event.id).where(*conditions, Event.rrule.is_(None), Event.starts_at > bindparam("earliest")),
        select(Event.id).where(*_shape_conditions(shape, by_place=False), Event.rrule.is_(None),
                               Event.long_span, Event.starts_at > bindparam("long_earliest")))
    singles = (select_summaries().add_columns(func.count().over()).where(Event.id.in_(ids))
               .order_by(Event.starts_at, Event.id).limit(bindparam("limit")))
    series_conditions = [*conditions, Event.rrule.isnot(None)]
    if not shape.area:
        # Every district: lets the planner seek the partial index ix_events_series (which
        # leads with district_id) instead of scanning all future events by last_ends_at.
        series_conditions.append(Event.district_id.in_(bindparam("all_districts", expanding=True)))
    series = select(Event.id, Event.rrule, raw_timestamp(Event.starts_at), raw_timestamp(Event.ends_at),
                    Event.all_day).where(*series_conditions)
    return singles, series


@dataclass(frozen=True)
class EventPage:
    """One page of `list_events`' occurrences (same order), how many the period holds in all,
    and the position (start, event id) of the page's last occurrence when more follow."""

    occurrences: list[Occurrence]
    total: int
    next_after: tuple[datetime, int] | None


T = TypeVar("T")
# Runs CPU-bound work away from the event loop (e.g. in a worker thread) and awaits it.
Offload = Callable[[Callable[[], T]], Awaitable[T]]


async def _inline(work: Callable[[], T]) -> T:
    return work()


async def page_events(
    session: AsyncSession, ctx: AppContext, *, start: datetime, end: datetime, limit: int,
    after: tuple[datetime, int] | None = None,
    area: str | RegionDistrict | Sequence[str] | None = None,
    category: str | Sequence[str] | None = None, audience: str | Sequence[str] | None = None,
    organisation_id: int | Sequence[int] | None = None, offload: Offload[Any] | None = None,
) -> EventPage:
    """The published occurrences of `list_events(...)` that come after `after` in its order
    (by start, then event id), at most `limit` of them, as `EventSummary` rows.

    Why not `list_events` and a slice: over a year a busy calendar has thousands of
    occurrences, and building an ORM object for each (half a second of event-loop time) to
    return the first page blocked every other request. Here single events are read in
    (start, id) order from the position on, in batches, until the page is full; series are
    expanded from plain rows (their expansions are cached) and merged by start. The total is
    counted in the database (grouped by audiences, which are filtered here). The rows are
    turned into objects through `offload` (the HTTP API passes a worker thread), so that the
    event loop only waits for the database."""
    if limit < 1:
        raise ValueError("page_events needs limit >= 1")
    run: Offload[Any] = offload or _inline
    shape, params = await _filter(session, ctx, start, end, area, category, organisation_id,
                                  False, False, None)
    wanted = set(_codes(audience))

    def shown(audiences: Sequence[str] | None) -> bool:
        return not wanted or not audiences or bool(wanted & set(audiences))

    districts = await districts_by_id(session, ctx)
    first = start - MAX_EVENT_SPAN - timedelta(days=1)
    position = after if after is not None else (first, 0)
    params.update(earliest=start - LONG_SPAN, long_earliest=start - MAX_EVENT_SPAN,
                  from_start=max(position[0], first))
    singles_query, count_query, series_query = _page_statements(shape)
    connection = await session.connection()

    total = 0
    for audiences, number in await fetch_rows(connection, count_query, params):
        if shown(json.loads(audiences) if isinstance(audiences, str) else audiences):
            total += number
    series_rows = await fetch_rows(connection, series_query, params)

    def expand_series() -> tuple[int, list[tuple[datetime, int, recurrence.Span]]]:
        count, later = 0, []
        for values in series_rows:
            row = pool_row(values)
            if not shown(row.audiences):
                continue
            for span in recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, ctx.tz):
                if span.start < end and span.end > start:
                    count += 1
                    if (span.start, row.id) > position:
                        later.append((span.start, row.id, span))
        later.sort(key=lambda item: (item[0], item[1]))
        return count, later

    series_total, later = await run(expand_series) if series_rows else (0, [])
    total += series_total

    need = limit + 1  # one more than the page tells whether another page follows
    singles: list[Occurrence] = []
    cursor = position
    while len(singles) < need:
        batch = min(max(need - len(singles), 50), _PAGE_BATCH)
        rows = await fetch_rows(connection, singles_query, {
            **params, "after_start": cursor[0], "after_id": cursor[1], "limit": batch})
        if not rows:
            break

        def summaries(rows: Sequence[Sequence[Any]] = rows) -> tuple[list[Occurrence], tuple[datetime, int]]:
            found = [summarise(values, districts) for values in rows]
            return ([Occurrence(s, s.starts_at, s.ends_at) for s in found if shown(s.audiences)],
                    (found[-1].starts_at, found[-1].id))

        accepted, cursor = await run(summaries)
        singles += accepted
        if len(rows) < batch:
            break

    merged: list[tuple[datetime, int, Occurrence | recurrence.Span]] = list(heapq.merge(
        ((o.start, o.event.id, o) for o in singles), later, key=lambda item: (item[0], item[1])))[:need]
    series_ids = list({id_ for _, id_, item in merged if isinstance(item, recurrence.Span)})
    named: dict[int, EventSummary] = {}
    if series_ids:
        for values in await fetch_rows(connection, _SERIES_SUMMARIES, {"ids": series_ids}):
            summary = summarise(values, districts)
            named[summary.id] = summary
    found = [item if isinstance(item, Occurrence) else Occurrence(named[id_], item.start, item.end)
             for _, id_, item in merged]
    next_after = (found[limit - 1].start, found[limit - 1].event.id) if len(found) > limit else None
    return EventPage(found[:limit], total, next_after)


# Single events read per query while a page fills (between two, other requests run).
_PAGE_BATCH = 500


@lru_cache(maxsize=64)
def _page_statements(shape: _Shape) -> tuple[Rows, Rows, Rows]:
    """`page_events`' queries for one filter shape, built once (see `_first_statements`):
    single events after a position in (start, id) order, their count by audiences, series."""
    conditions = _shape_conditions(shape)
    from_start = Event.starts_at >= bindparam("from_start")
    ids = union_all(
        select(Event.id).where(*conditions, Event.rrule.is_(None), Event.starts_at > bindparam("earliest"),
                               from_start),
        select(Event.id).where(*_shape_conditions(shape, by_place=False), Event.rrule.is_(None),
                               Event.long_span, Event.starts_at > bindparam("long_earliest"), from_start))
    after = or_(Event.starts_at > bindparam("after_start"),
                and_(Event.starts_at == bindparam("after_start"), Event.id > bindparam("after_id")))
    singles = (select_summaries().where(Event.id.in_(ids), after)
               .order_by(Event.starts_at, Event.id).limit(bindparam("limit")))
    everyone = union_all(
        select(Event.id).where(*conditions, Event.rrule.is_(None), Event.starts_at > bindparam("earliest")),
        select(Event.id).where(*_shape_conditions(shape, by_place=False), Event.rrule.is_(None),
                               Event.long_span, Event.starts_at > bindparam("long_earliest")))
    audiences = cast(Event.audiences, String)
    counts = select(audiences, func.count()).where(Event.id.in_(everyone)).group_by(audiences)
    series = select(*POOL_COLUMNS).where(*conditions, Event.rrule.isnot(None))
    return singles, counts, series


async def events_version(session: AsyncSession, *, with_count: bool = False,
                         ) -> tuple[int, datetime | None, datetime | None, int | None]:
    """A cheap fingerprint of the whole calendar, equal across instances: max(id) changes
    with every insert, max(updated_at) with every update, cancellation or moderation, the
    organisations' max(updated_at) with a renamed organiser. All three are index look-ups;
    the row count (which notices deletions) scans an index, so it is asked for separately."""
    columns = [
        select(func.max(Event.id)).scalar_subquery(),
        select(func.max(Event.updated_at)).scalar_subquery(),
        select(func.max(Organisation.updated_at)).scalar_subquery(),
    ]
    if with_count:
        columns.append(select(func.count()).select_from(Event).scalar_subquery())
    row = (await session.execute(select(*columns))).one()
    return (int(row[0] or 0), _aware(row[1]), _aware(row[2]),
            int(row[3]) if with_count else None)


def _aware(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns text from an aggregate
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
