"""Pages of published occurrences for the JSON API: `page_events`.

- `async page_events(session, ctx, *, start, end, limit, after=None, area=None, ...) -> EventPage`
  — published occurrences after a position (start, event id), a page at a time, with the
  period's total; only what the page needs is read and built.

Built on the listing filters of `infranet.calendar.event_queries` (same order as
`list_events`); kept apart because paging has its own statements, batches and offloading.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import String, and_, bindparam, cast, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import recurrence
from infranet.calendar.event_input import LONG_SPAN, MAX_EVENT_SPAN
from infranet.calendar.event_queries import (
    SERIES_SUMMARIES,
    Occurrence,
    Shape,
    codes,
    listing_filter,
    shape_conditions,
)
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
from infranet.region import District as RegionDistrict
from infranet.storage.hotpath import fetch_rows
from infranet.storage.models import Event


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
    shape, params = await listing_filter(session, ctx, start, end, area, category, organisation_id,
                                         False, False, None)
    wanted = set(codes(audience))

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
        for values in await fetch_rows(connection, SERIES_SUMMARIES, {"ids": series_ids}):
            summary = summarise(values, districts)
            named[summary.id] = summary
    found = [item if isinstance(item, Occurrence) else Occurrence(named[id_], item.start, item.end)
             for _, id_, item in merged]
    next_after = (found[limit - 1].start, found[limit - 1].event.id) if len(found) > limit else None
    return EventPage(found[:limit], total, next_after)


# Single events read per query while a page fills (between two, other requests run).
_PAGE_BATCH = 500


@lru_cache(maxsize=64)
def _page_statements(shape: Shape) -> tuple[Rows, Rows, Rows]:
    """`page_events`' queries for one filter shape, built once (see `_first_statements`):
    single events after a position in (start, id) order, their count by audiences, series."""
    conditions = shape_conditions(shape)
    from_start = Event.starts_at >= bindparam("from_start")
    ids = union_all(
        select(Event.id).where(*conditions, Event.rrule.is_(None), Event.starts_at > bindparam("earliest"),
                               from_start),
        select(Event.id).where(*shape_conditions(shape, by_place=False), Event.rrule.is_(None),
                               Event.long_span, Event.starts_at > bindparam("long_earliest"), from_start))
    after = or_(Event.starts_at > bindparam("after_start"),
                and_(Event.starts_at == bindparam("after_start"), Event.id > bindparam("after_id")))
    singles = (select_summaries().where(Event.id.in_(ids), after)
               .order_by(Event.starts_at, Event.id).limit(bindparam("limit")))
    everyone = union_all(
        select(Event.id).where(*conditions, Event.rrule.is_(None), Event.starts_at > bindparam("earliest")),
        select(Event.id).where(*shape_conditions(shape, by_place=False), Event.rrule.is_(None),
                               Event.long_span, Event.starts_at > bindparam("long_earliest")))
    audiences = cast(Event.audiences, String)
    counts = select(audiences, func.count()).where(Event.id.in_(everyone)).group_by(audiences)
    series = select(*POOL_COLUMNS).where(*conditions, Event.rrule.isnot(None))
    return singles, counts, series
