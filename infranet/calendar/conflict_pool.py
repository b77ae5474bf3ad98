"""The events a candidate may collide with: one indexed query per 64 time windows.

Both the conflict check (`infranet.calendar.conflicts`) and free-date suggestions
(`free_dates`) read their events here: published, scheduled events in the districts that
overlap the candidate's, that may touch the candidate's local days. The statements take a
number of windows and are built once per number (`slot_count` rounds it up).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, bindparam, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import recurrence, wallclock
from infranet.calendar.district_ids import area_district_ids
from infranet.calendar.event_input import LONG_SPAN, MAX_EVENT_SPAN, NormalisedEvent
from infranet.calendar.summary import POOL_COLUMNS, Rows, pool_row, select_summaries, summarise
from infranet.context import AppContext
from infranet.region import District as RegionDistrict
from infranet.storage.hotpath import fetch_rows
from infranet.storage.models import Event, EventStatus, Moderation
from infranet.storage.types import unindexed

Window = tuple[datetime, datetime]


def day_windows(spans: Iterable[recurrence.Span], tz: tzinfo) -> list[Window]:
    """The candidate's local days as UTC windows, merged."""
    return merge_windows(_day_window(span, tz) for span in spans)


def _day_window(span: recurrence.Span, tz: tzinfo) -> Window:
    days = recurrence.local_days(span.start, span.end, tz)
    return wallclock.all_day_span(days[0], days[-1], tz)


def merge_windows(windows: Iterable[Window]) -> list[Window]:
    merged: list[Window] = []
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def not_excluded() -> list[Any]:
    """Neither the event being changed nor, for a series, its moved dates (overrides): a
    series changed as a whole is not in its own way."""
    return [Event.id != bindparam("exclude"),
            or_(Event.series_id.is_(None), Event.series_id != bindparam("exclude"))]


@lru_cache(maxsize=256)
def _pool_statement(windows: int, exclude: bool, summaries: bool) -> Rows:
    """The pool query for `windows` time windows, built once and reused with new values
    (statement construction costs more than running it)."""
    common = [Event.district_id.in_(bindparam("districts", expanding=True)),
              Event.status == EventStatus.SCHEDULED, Event.moderation == Moderation.PUBLISHED]
    if exclude:
        common.extend(not_excluded())
    branches = []
    for i in range(windows):
        lo: BindParameter[datetime] = bindparam(f"lo{i}")
        hi: BindParameter[datetime] = bindparam(f"hi{i}")
        earliest: BindParameter[datetime] = bindparam(f"earliest{i}")
        # Single events go through ix_events_place_range, series through the partial index
        # ix_events_series: both (district, start, end), so only matching rows are read
        # (for a single event last_ends_at == ends_at).
        branches.append(select(Event.id).where(
            Event.starts_at < hi, Event.starts_at > earliest, Event.last_ends_at > lo,
            Event.rrule.is_(None), *common))
        branches.append(select(Event.id).where(
            Event.starts_at < hi, Event.last_ends_at > lo, Event.rrule.isnot(None), *common))
    # Single events longer than a day, for all the windows at once, through ix_events_long
    # (the few of them, whatever their place); what they overlap of the windows' span is
    # sorted out by `classify`.
    branches.append(select(Event.id).where(
        Event.long_span, Event.rrule.is_(None), Event.starts_at < bindparam("long_hi"),
        Event.starts_at > bindparam("long_earliest"), Event.last_ends_at > bindparam("long_lo"),
        unindexed(Event.district_id).in_(bindparam("districts", expanding=True)), *common[1:]))
    matching = Event.id.in_(union_all(*branches))
    if not summaries:
        return select(*POOL_COLUMNS).where(matching)
    return select_summaries().where(matching)


async def read_pool(session: AsyncSession, ctx: AppContext, norm: NormalisedEvent,
                windows: Sequence[Window], exclude_event_id: int | None,
                districts: dict[int, RegionDistrict] | None = None) -> list[Any]:
    """Published events that may touch the windows, in districts overlapping the candidate's,
    as `EventSummary` with the region's `districts` (without them, as `PoolRow`).

    One round trip per 64 windows: `id IN (singles UNION ALL series UNION ALL long)`, each
    branch an index range scan (single events by district and `starts_at` bounded by
    LONG_SPAN, series by the partial index on recurring rows, the few single events longer
    than a day by theirs, bounded by MAX_EVENT_SPAN), sent straight to the SQLite driver
    (`fetch_rows`): plain rows need none of the ORM's result handling.
    """
    district_ids = await area_district_ids(session, ctx, [norm.district])
    connection = await session.connection()
    found: dict[int, Any] = {}
    for i in range(0, len(windows), MAX_SLOTS):
        chunk = windows[i:i + MAX_SLOTS]
        slots = slot_count(len(chunk))
        query = _pool_statement(slots, exclude_event_id is not None, districts is not None)
        params = interval_params(district_ids, exclude_event_id, chunk, slots, reach=LONG_SPAN)
        first = min(lo for lo, _hi in chunk)
        params.update(long_lo=first, long_hi=max(hi for _lo, hi in chunk),
                      long_earliest=first - MAX_EVENT_SPAN)
        for values in await fetch_rows(connection, query, params):
            found[values[0]] = pool_row(values) if districts is None else summarise(values, districts)
    return list(found.values())


# The pool and probe statements take a number of intervals. Each distinct number is a new
# statement for SQLAlchemy to compile (tens of milliseconds for dozens of branches), so the
# numbers are rounded up to a power of two and the spare slots given an empty interval.
MAX_SLOTS = 64
_EMPTY = datetime(1970, 1, 1, tzinfo=UTC)


def slot_count(count: int) -> int:
    return 1 << (count - 1).bit_length()


def interval_params(districts: list[int], exclude_event_id: int | None,
                     intervals: Sequence[tuple[datetime, datetime]], slots: int,
                     reach: timedelta) -> dict[str, Any]:
    """Values for the `lo{n}`/`hi{n}`/`earliest{n}` parameters of the pool and probe statements
    (an event overlapping [lo, hi) that lasts at most `reach` starts after `earliest` =
    lo - `reach`); slots beyond the intervals get an empty one, which matches nothing."""
    params: dict[str, Any] = {"districts": districts}
    if exclude_event_id is not None:
        params["exclude"] = exclude_event_id
    padded = [*intervals, *[(_EMPTY, _EMPTY)] * (slots - len(intervals))]
    for n, (lo, hi) in enumerate(padded):
        params.update({f"lo{n}": lo, f"hi{n}": hi, f"earliest{n}": lo - reach})
    return params
