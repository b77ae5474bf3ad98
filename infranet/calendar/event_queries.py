"""Reading events: the listing filters as statement shapes, the listings, the calendar's version.

- `async list_events(session, ctx, *, start, end, area=None, category=None, audience=None,
  organisation_id=None, include_cancelled=False, include_pending=False, viewer=None)
  -> list[Occurrence]` — recurrences expanded, sorted by start (ORM rows, for those that edit).
- `async first_events(session, ctx, *, start, end, limit, area=None, ...) -> OccurrencePage`
  — the first `limit` of those occurrences and the total count, cheaply (for /check); its
  occurrences carry `EventSummary` rows (see `infranet.calendar.summary`).
- `page_events` (the JSON API's pages) is `infranet.calendar.event_pages`, built on the
  same filter shapes (`listing_filter`, `shape_conditions`).
- `async events_version(session) -> tuple` — a cheap fingerprint of the whole calendar.

The listings share one filter (`listing_filter` -> a `Shape` and its parameters) and
the statements built for each shape, cached per shape. Changing events is
`infranet.calendar.events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import recurrence
from infranet.calendar.district_ids import area_district_ids
from infranet.calendar.event_input import LONG_SPAN, MAX_EVENT_SPAN, resolve_district
from infranet.calendar.summary import (
    EventSummary,
    Rows,
    districts_by_id,
    select_summaries,
    summarise,
)
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.region import District as RegionDistrict
from infranet.storage.actors import Actor
from infranet.storage.hotpath import fetch_rows
from infranet.storage.models import Event, EventStatus, Moderation, Organisation
from infranet.storage.types import parse_timestamp, raw_timestamp, unindexed

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


def codes(value: str | Sequence[str] | None) -> list[str]:
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
    shape, params = await listing_filter(session, ctx, start, end, area, category, organisation_id,
                                         include_cancelled, include_pending, viewer)
    rows = (await session.scalars(_list_statement(shape), params)).all()
    audiences = set(codes(audience))
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
class Shape:
    """Which filters a listing uses; their values travel as parameters, so that each shape is
    one statement, built and compiled once."""

    area: bool
    category: bool
    organisations: bool
    cancelled: bool
    pending: str  # "no" | "all" | "own" (published, and pending of the viewer's organisation)


async def listing_filter(
    session: AsyncSession, ctx: AppContext, start: datetime, end: datetime,
    area: str | RegionDistrict | Sequence[str] | None, category: str | Sequence[str] | None,
    organisation_id: int | Sequence[int] | None, include_cancelled: bool, include_pending: bool,
    viewer: Actor | None,
) -> tuple[Shape, dict[str, Any]]:
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
    categories = codes(category)
    if categories:
        params["categories"] = categories
    if organisation_id is not None:
        params["organisations"] = ([organisation_id] if isinstance(organisation_id, int)
                                   else list(organisation_id))
    shape = Shape(area=area is not None, category=bool(categories),
                   organisations=organisation_id is not None, cancelled=include_cancelled, pending=pending)
    return shape, params


@lru_cache(maxsize=64)
def _list_statement(shape: Shape) -> Select[Event]:
    return select(Event).where(*shape_conditions(shape)).order_by(Event.starts_at, Event.id)


@lru_cache(maxsize=64)
def shape_conditions(shape: Shape, *, by_place: bool = True) -> tuple[ColumnElement[bool], ...]:
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
    shape, params = await listing_filter(session, ctx, start, end, area, category, organisation_id,
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
        for values in await fetch_rows(connection, SERIES_SUMMARIES, {"ids": list(series_spans)}):
            summary = summarise(values, districts)
            found.extend(Occurrence(summary, span.start, span.end) for span in series_spans[summary.id])
            total += len(series_spans[summary.id])
    found.sort(key=lambda o: (o.start, o.event.id))
    return OccurrencePage(found[:limit], total)


SERIES_SUMMARIES = select_summaries().where(Event.id.in_(bindparam("ids", expanding=True)))


@lru_cache(maxsize=64)
def _first_statements(shape: Shape) -> tuple[Rows, Rows]:
    """`first_events`' two queries for one filter shape, built once: they run on the SQLite
    driver directly (`fetch_rows`), which keeps each statement's compiled SQL."""
    conditions = shape_conditions(shape)
    ids = union_all(
        select(Event.id).where(*conditions, Event.rrule.is_(None), Event.starts_at > bindparam("earliest")),
        select(Event.id).where(*shape_conditions(shape, by_place=False), Event.rrule.is_(None),
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
