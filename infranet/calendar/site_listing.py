"""The public site's listings: upcoming occurrences a page at a time, and a month by day.

- `async upcoming(session, ctx, flt, words, *, start, end, limit, after=None) -> Upcoming`
  — published occurrences (cancelled ones too, marked by their status) overlapping
  [start, end), in (start, event id) order after `after`, at most `limit`, and the position
  the next page starts from when more follow.
- `async month_days(session, ctx, flt, words, *, first, last, per_day) -> list[Day]`
  — for each local day first..last: how many occurrences touch it and the first `per_day`.

The rules of what is public and what a filter means are the feeds' and `/api/events`'
(`event_queries.listing_filter` / `shape_conditions`: an area includes its parents' and
children's events); the search (`event_search`) adds one LIKE per word on the stored folded
text, or the organiser's folded name. Audiences are tested in SQL on the JSON text, so
that a page is one LIMITed, indexed read and no row is read only to be dropped.

Why not `event_pages.page_events`: it counts the whole period (a year of events is a scan
of the index) and fills pages by batches; the site needs no total, only "is there more".
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import islice
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import recurrence, wallclock
from infranet.calendar.event_input import LONG_SPAN, MAX_EVENT_SPAN
from infranet.calendar.event_queries import (
    Occurrence,
    Shape,
    listing_filter,
    shape_conditions,
)
from infranet.calendar.feed_filter import FeedFilter
from infranet.calendar.summary import EventSummary, Rows, districts_by_id, select_summaries, summarise
from infranet.context import AppContext
from infranet.storage.hotpath import fetch_rows
from infranet.storage.models import Event, EventStatus, EventWord, Organisation
from infranet.storage.types import parse_timestamp, raw_timestamp

# An area of at most this many districts is read district by district (`upcoming`).
PER_PLACE_MAX = 12
# A month view reads at most this many occurrences (a bound on memory, whatever is stored).
MONTH_ROWS_MAX = 50_000


@dataclass(frozen=True)
class Upcoming:
    occurrences: list[Occurrence[EventSummary]]
    next_after: tuple[datetime, int] | None
    organiser_names: dict[int, str] = field(default_factory=dict)  # event id -> free-text organiser

    def organiser(self, event: EventSummary) -> str | None:
        """Who runs the event: its free-text organiser, else its organisation's name."""
        named = self.organiser_names.get(event.id)
        return named or (event.organisation.name if event.organisation else None)


@dataclass(frozen=True)
class DayItem:
    """What a month grid shows of one occurrence."""

    id: int
    title: str
    start: datetime
    all_day: bool
    cancelled: bool


@dataclass
class Day:
    day: date
    total: int = 0
    items: list[DayItem] = field(default_factory=list)


@dataclass(frozen=True)
class _Key:
    """A statement's shape: the listing's, the audiences, the number of search words and
    which of them (if any) names the events to read (`_driver`)."""

    shape: Shape
    audiences: int
    words: int
    driver: int = -1


# A word whose prefix matches at most this many (word, event) rows names the events to
# read; otherwise the listing walks events in time order and tests each for the words.
DRIVER_MAX = 3000


async def _filter(session: AsyncSession, ctx: AppContext, flt: FeedFilter, words: Sequence[str],
                  start: datetime, end: datetime) -> tuple[_Key, dict[str, Any]]:
    shape, params = await listing_filter(
        session, ctx, start, end, list(flt.areas) or None, list(flt.categories) or None,
        list(flt.organisations) or None, True, False, None)
    for i, code in enumerate(flt.audiences):
        params[f"aud{i}"] = f'%"{code}"%'
    for i, word in enumerate(words):
        params.update({f"w{i}_lo": word, f"w{i}_hi": word + "\uffff",
                       f"w{i}_org": "%" + _escape_like(word) + "%"})
    driver = await _driver(session, words, params) if words else -1
    return _Key(shape, len(flt.audiences), len(words), driver), params


_PROBE = (select(func.count()).select_from(
    select(EventWord.event_id).where(EventWord.word >= bindparam("lo"), EventWord.word < bindparam("hi"))
    .limit(DRIVER_MAX + 1).subquery()))
_IN_ORGANISATIONS = select(func.count()).select_from(Organisation).where(
    Organisation.name_folded.like(bindparam("org"), escape="/"))


async def _driver(session: AsyncSession, words: Sequence[str], params: dict[str, Any]) -> int:
    """The rarest word (fewest events with a word that begins with it), when it is rare
    enough to name the events to read, and no organisation's name holds it (an event is
    then found by its organiser, which event_words does not list); else -1."""
    connection = await session.connection()
    best, fewest = -1, DRIVER_MAX + 1
    for i in range(len(words)):
        lo, hi, org = params[f"w{i}_lo"], params[f"w{i}_hi"], params[f"w{i}_org"]
        if (await fetch_rows(connection, _IN_ORGANISATIONS, {"org": org}))[0][0]:
            continue
        count = (await fetch_rows(connection, _PROBE, {"lo": lo, "hi": hi}))[0][0]
        if count < fewest:
            best, fewest = i, count
    return best


def _escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _word_range(i: int) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return EventWord.word >= bindparam(f"w{i}_lo"), EventWord.word < bindparam(f"w{i}_hi")


@lru_cache(maxsize=256)
def _extra(key: _Key) -> tuple[ColumnElement[bool], ...]:
    """The audience and search conditions of a shape (values travel as parameters)."""
    conditions: list[ColumnElement[bool]] = []
    if key.audiences:
        stored = cast(Event.audiences, String)
        conditions.append(or_(stored.is_(None), stored == "[]",
                              *[stored.like(bindparam(f"aud{i}")) for i in range(key.audiences)]))
    if key.driver >= 0:
        conditions.append(Event.id.in_(select(EventWord.event_id).where(*_word_range(key.driver))))
    for i in range(key.words):
        if i == key.driver:
            continue
        conditions.append(or_(
            exists().where(EventWord.event_id == Event.id, *_word_range(i)),
            Event.organisation_id.in_(select(Organisation.id).where(
                Organisation.name_folded.like(bindparam(f"w{i}_org"), escape="/")))))
    return tuple(conditions)


def _after() -> ColumnElement[bool]:
    return or_(Event.starts_at > bindparam("after_start"),
               and_(Event.starts_at == bindparam("after_start"), Event.id > bindparam("after_id")))


@lru_cache(maxsize=256)
def _upcoming_statements(key: _Key) -> tuple[Rows, Rows, Rows]:
    """Single events from a position, in (start, id) order: those that last at most a day
    (ix_events_range from `lower`) and the few longer ones that began before it
    (ix_events_long); and the series of the period."""
    extra = _extra(key)
    near = (_with_organiser().where(*shape_conditions(key.shape), *extra, Event.rrule.is_(None),
                                     Event.starts_at >= bindparam("lower"), _after())
            .order_by(Event.starts_at, Event.id).limit(bindparam("limit")))
    long = (_with_organiser().where(*shape_conditions(key.shape, by_place=False), *extra,
                                     Event.rrule.is_(None), Event.long_span,
                                     Event.starts_at > bindparam("long_earliest"),
                                     Event.starts_at < bindparam("lower"), _after())
            .order_by(Event.starts_at, Event.id).limit(bindparam("limit")))
    series = _series_statement(key)
    return near, long, series


def _with_organiser() -> Rows:
    """Summaries with the free-text organiser as their last column."""
    return select_summaries().add_columns(Event.organiser_name)


_SERIES_SUMMARIES = _with_organiser().where(Event.id.in_(bindparam("ids", expanding=True)))


def _series_statement(key: _Key) -> Rows:
    """Series running in the period that begin by `cutoff` (a series beginning after the
    page's last single event has no occurrence on the page)."""
    return select(Event.id, Event.rrule, raw_timestamp(Event.starts_at), raw_timestamp(Event.ends_at),
                  Event.all_day).where(*shape_conditions(key.shape), *_extra(key), Event.rrule.isnot(None),
                                       Event.starts_at <= bindparam("cutoff"))


async def upcoming(session: AsyncSession, ctx: AppContext, flt: FeedFilter, words: Sequence[str], *,
                   start: datetime, end: datetime, limit: int,
                   after: tuple[datetime, int] | None = None) -> Upcoming:
    """See the module's docstring. `after` is a position (occurrence start, event id) that
    this function gave as `next_after`."""
    if limit < 1:
        raise ValueError("upcoming needs limit >= 1")
    key, params = await _filter(session, ctx, flt, words, start, end)
    position = after or (start - MAX_EVENT_SPAN - timedelta(days=1), 0)
    params.update(lower=max(start - LONG_SPAN, position[0]), long_earliest=start - MAX_EVENT_SPAN,
                  after_start=position[0], after_id=position[1], limit=limit + 1)
    near_query, long_query, series_query = _upcoming_statements(key)
    connection = await session.connection()
    districts = await districts_by_id(session, ctx)
    names: dict[int, str] = {}
    rows = list(await fetch_rows(connection, long_query, params))
    places = params.get("districts")
    if places is not None and len(places) <= PER_PLACE_MAX:
        # An area is a few districts (its own, its parents', its children's): each read in
        # time order from its own index range and merged is a page's worth of rows each,
        # where one read of them all would gather the whole year of the area to sort it.
        for place in places:
            rows += await fetch_rows(connection, near_query, {**params, "districts": [place]})
    else:
        rows += await fetch_rows(connection, near_query, params)
    singles = []
    for values in rows:
        singles.append(summarise(values, districts))
        if values[-1]:
            names[values[0]] = values[-1]
    singles.sort(key=lambda s: (s.starts_at, s.id))
    del singles[limit + 1:]
    # With a full page of single events, only occurrences up to the last of them can be on it.
    cutoff = singles[limit].starts_at if len(singles) > limit else end
    params["cutoff"] = cutoff
    spans: list[tuple[datetime, int, recurrence.Span]] = []
    for id_, rule, starts_at, ends_at, all_day in await fetch_rows(connection, series_query, params):
        occurrences = recurrence.expand(rule, parse_timestamp(starts_at), parse_timestamp(ends_at),
                                        bool(all_day), ctx.tz)
        # Occurrences begin in order; those that ended before the period are skipped at once.
        first = bisect.bisect_left(occurrences, position[0] - MAX_EVENT_SPAN, key=lambda o: o.start)
        taken = 0
        for span in occurrences[first:]:
            if span.start >= end or span.start > cutoff or taken > limit:
                break
            if span.end > start and (span.start, id_) > position:
                spans.append((span.start, id_, span))
                taken += 1
    spans.sort(key=lambda item: (item[0], item[1]))
    items: list[tuple[datetime, int, EventSummary | recurrence.Span]] = [
        (s.starts_at, s.id, s) for s in singles]
    merged = list(islice(heapq.merge(items, spans, key=lambda item: (item[0], item[1])), limit + 1))
    series_ids = list({id_ for _, id_, item in merged if isinstance(item, recurrence.Span)})
    named: dict[int, EventSummary] = {}
    if series_ids:
        for values in await fetch_rows(connection, _SERIES_SUMMARIES, {"ids": series_ids}):
            summary = summarise(values, districts)
            named[summary.id] = summary
            if values[-1]:
                names[values[0]] = values[-1]
    found: list[Occurrence[EventSummary]] = [
        Occurrence(item, item.starts_at, item.ends_at) if isinstance(item, EventSummary)
        else Occurrence(named[id_], item.start, item.end) for _, id_, item in merged]
    more = len(found) > limit
    next_after = (found[limit - 1].start, found[limit - 1].event.id) if more else None
    return Upcoming(found[:limit], next_after, names)


@lru_cache(maxsize=256)
def _month_statements(key: _Key, days: int) -> tuple[Any, Any, Any, Rows]:
    """A month grid's statements for `days` days bounded by the parameters b0..b<days>
    (the local midnights, in UTC). A busy month has thousands of events and a grid shows a
    few a day, so for the single events that begin and end within one day the database
    counts them day by day and gives the first `per_day` of each (one indexed range per
    day); the others (longer, over midnight, or begun before the month) come row by row,
    as do the series. For a single event `last_ends_at` is its end, which the range index
    holds: the test "ends the same day" is made on the index, not the row."""
    b = [bindparam(f"b{i}", type_=Event.starts_at.type) for i in range(days + 1)]
    extra = _extra(key)
    base = (*shape_conditions(key.shape), *extra, Event.rrule.is_(None))

    def within(i: int) -> tuple[ColumnElement[bool], ...]:
        # coalesce(): not an index term, so the day's range of starts_at is what is read.
        return (Event.starts_at >= b[i], Event.starts_at < b[i + 1],
                func.coalesce(Event.last_ends_at, Event.last_ends_at) <= b[i + 1], *base)

    counts = union_all(*[select(literal(i).label("day"), func.count().label("total")).where(*within(i))
                         for i in range(days)])
    columns = (Event.id, Event.title, raw_timestamp(Event.starts_at), Event.all_day, Event.status)
    firsts = union_all(*[select(literal(i).label("day"), *columns).where(*within(i))
                         .order_by(Event.starts_at, Event.id).limit(bindparam("per_day")).subquery().select()
                         for i in range(days)])
    wide = (Event.id, Event.title, raw_timestamp(Event.starts_at), raw_timestamp(Event.ends_at),
            Event.all_day, Event.status)
    crossing = [select(*wide).where(Event.starts_at >= b[i], Event.starts_at < b[i + 1],
                                    Event.last_ends_at > b[i + 1], *base) for i in range(days)]
    before = select(*wide).where(*base, Event.starts_at > bindparam("earliest"), Event.starts_at < b[0])
    long = select(*wide).where(*shape_conditions(key.shape, by_place=False), *extra,
                               Event.rrule.is_(None), Event.long_span,
                               Event.starts_at > bindparam("long_earliest"),
                               Event.starts_at <= bindparam("earliest"))
    others = union_all(before, long, *crossing).limit(bindparam("limit"))
    series = select(Event.id, Event.title, raw_timestamp(Event.starts_at), raw_timestamp(Event.ends_at),
                    Event.all_day, Event.status, Event.rrule).where(
        *shape_conditions(key.shape), *extra, Event.rrule.isnot(None))
    return counts, firsts, others, series


async def month_days(session: AsyncSession, ctx: AppContext, flt: FeedFilter, words: Sequence[str], *,
                     first: date, last: date, per_day: int) -> list[Day]:
    """Each local day from `first` to `last` with the number of occurrences that touch it
    and the first `per_day` of them by start (an event of several days is on each)."""
    tz = ctx.tz
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    bounds = [wallclock.local_midnight(d, tz) for d in [*days, last + timedelta(days=1)]]
    start, end = bounds[0], bounds[-1]
    key, params = await _filter(session, ctx, flt, words, start, end)
    params.update(earliest=start - LONG_SPAN, long_earliest=start - MAX_EVENT_SPAN,
                  limit=MONTH_ROWS_MAX, per_day=per_day)
    params.update({f"b{i}": bound for i, bound in enumerate(bounds)})
    counts_query, firsts_query, others_query, series_query = _month_statements(key, len(days))
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # A month is dozens of small index ranges: PostgreSQL would start parallel workers for
        # them (measured: 40 ms with, 14 ms without, on 100,000 events). This transaction only.
        await connection.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    cells = [Day(d) for d in days]
    found: list[list[DayItem]] = [[] for _ in days]
    for index, total in await fetch_rows(connection, counts_query, params):
        cells[index].total = total
    for index, id_, title, s, all_day, status in await fetch_rows(connection, firsts_query, params):
        found[index].append(DayItem(id_, title, parse_timestamp(s), bool(all_day),
                                    status == EventStatus.CANCELLED))

    top = len(days) - 1  # the last day's index

    def place(id_: int, title: str, s: datetime, e: datetime, all_day: bool, status: str) -> None:
        # Days i with bounds[i] < e and bounds[i+1] > s; an instant (e == s) is on its day.
        lo = bisect.bisect_right(bounds, s) - 1
        item = DayItem(id_, title, s, bool(all_day), status == EventStatus.CANCELLED)
        if 0 <= lo <= top and e <= bounds[lo + 1]:  # nearly every occurrence: one day
            cells[lo].total += 1
            found[lo].append(item)
            return
        if lo > top:
            return
        lo = max(lo, 0)
        for i in range(lo, max(min(bisect.bisect_left(bounds, e), top + 1), lo + 1)):
            cells[i].total += 1
            found[i].append(item)

    for id_, title, s, e, all_day, status in await fetch_rows(connection, others_query, params):
        place(id_, title, parse_timestamp(s), parse_timestamp(e), all_day, status)
    for id_, title, s, e, all_day, status, rule in await fetch_rows(connection, series_query, params):
        occurrences = recurrence.expand(rule, parse_timestamp(s), parse_timestamp(e), bool(all_day), tz)
        skip = bisect.bisect_left(occurrences, start - MAX_EVENT_SPAN, key=lambda o: o.start)
        for span in occurrences[skip:]:
            if span.start >= end:
                break
            if span.end > start:
                place(id_, title, span.start, span.end, all_day, status)
    for cell, items in zip(cells, found, strict=True):
        items.sort(key=_order)
        cell.items = items[:per_day]
    return cells


def _order(item: DayItem) -> tuple[datetime, int]:
    return item.start, item.id
