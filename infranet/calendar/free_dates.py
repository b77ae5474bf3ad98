"""Free-date suggestions: the nearest dates on which a candidate event would collide with nothing.

- `async suggest_dates(session, ctx, candidate, n=3) -> list[tuple[start, end]]`, in the
  candidate's shape: dates (end = last day, inclusive) for all-day events, aware local
  datetimes otherwise.

The answer is the conflict check's (`infranet.calendar.conflicts`) for each shifted date,
computed without a round trip per date: a probe query marks the dates surely taken, and
the others are compared in memory with the events read once for a batch of dates.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache

from sqlalchemy import CompoundSelect, bindparam, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import recurrence
from infranet.calendar.conflict_pool import (
    MAX_SLOTS,
    Window,
    day_windows,
    interval_params,
    merge_windows,
    not_excluded,
    read_pool,
    slot_count,
)
from infranet.calendar.conflicts import SCOPE_RANK, collides, place_relation
from infranet.calendar.day_warnings import day_warning
from infranet.calendar.district_ids import district_id_map
from infranet.calendar.event_input import (
    LONG_SPAN,
    MAX_EVENT_SPAN,
    EventInput,
    NormalisedEvent,
    event_times,
    horizon,
    validate_event,
)
from infranet.calendar.summary import PoolRow, districts_by_id
from infranet.context import AppContext
from infranet.storage.hotpath import fetch_rows
from infranet.storage.models import Event, EventStatus, Moderation


def _shift(candidate: EventInput, days: int, tz: tzinfo) -> EventInput:
    """The candidate `days` later: its dates, or its wall-clock times (10:00 stays 10:00
    across a DST change). A series keeps every field; a single event needs only its times."""
    delta = timedelta(days=days)
    if candidate.all_day:
        start = candidate.start.date() if isinstance(candidate.start, datetime) else candidate.start
        end = candidate.end.date() if isinstance(candidate.end, datetime) else candidate.end
        start, end = start + delta, end + delta
    else:
        assert isinstance(candidate.start, datetime) and isinstance(candidate.end, datetime)
        start = _wall_clock(candidate.start, tz) + delta
        end = _wall_clock(candidate.end, tz) + delta
    if candidate.rrule:
        return replace(candidate, start=start, end=end)
    return EventInput(title=candidate.title, start=start, end=end, all_day=candidate.all_day)


def _wall_clock(moment: datetime, tz: tzinfo) -> datetime:
    """Local wall-clock time; a naive value already is one (as `validate_event` reads it)."""
    return moment if moment.tzinfo is None else moment.astimezone(tz).replace(tzinfo=None)


def _moved(ctx: AppContext, candidate: EventInput, base: NormalisedEvent, days: int,
           latest: datetime) -> NormalisedEvent:
    """The validated candidate `days` later. Only the times of a single event are checked
    again (by `event_times`); a series is validated whole, as its rule may end too early."""
    shifted = _shift(candidate, days, ctx.tz)
    if base.rrule is not None:  # its RDATE and EXDATE dates move with it
        return validate_event(ctx, replace(shifted, rrule=recurrence.shifted(base.rrule, days, ctx.tz)))
    starts_at, ends_at, _local, _latest = event_times(ctx, shifted, latest)
    return replace(base, starts_at=starts_at, ends_at=ends_at, last_ends_at=ends_at)


def _shape(ctx: AppContext, norm: NormalisedEvent) -> tuple[datetime | date, datetime | date]:
    tz = ctx.tz
    if norm.all_day:
        days = recurrence.local_days(norm.starts_at, norm.ends_at, tz)
        return days[0], days[-1]
    return norm.starts_at.astimezone(tz), norm.ends_at.astimezone(tz)


class _WindowPool:
    """The events fetched once for all candidate dates, handed out per candidate by the very
    predicate `read_pool`'s query uses, so each candidate is compared with exactly the events its
    own query would have returned (singles found by bisecting on `starts_at`)."""

    def __init__(self, rows: Iterable[PoolRow]) -> None:
        self.series = [r for r in rows if r.rrule is not None]
        self.singles = sorted((r for r in rows if r.rrule is None), key=lambda r: r.starts_at)
        self.starts = [r.starts_at for r in self.singles]

    def for_windows(self, windows: Sequence[Window]) -> Iterator[PoolRow]:
        """Lazily, so that a date that collides with its first events reads no further."""
        seen: set[int] = set()
        for lo, hi in windows:
            earliest = lo - MAX_EVENT_SPAN
            for row in self.singles[bisect_right(self.starts, earliest):bisect_left(self.starts, hi)]:
                if row.last_ends_at > lo and row.id not in seen:
                    seen.add(row.id)
                    yield row
            for row in self.series:
                if row.starts_at < hi and row.last_ends_at > lo and row.id not in seen:
                    seen.add(row.id)
                    yield row


_Candidate = tuple[NormalisedEvent, tuple[recurrence.Span, ...], list[Window]]
SUGGESTION_BATCH = 8  # dates whose events are read together once the busy ones are known


async def suggest_dates(session: AsyncSession, ctx: AppContext, candidate: EventInput, n: int = 3, *,
                        exclude_event_id: int | None = None) -> list[tuple[datetime | date, datetime | date]]:
    """The nearest dates without conflicts, duplicates, holidays or bridge days.

    Same weekday (and time) first, then other days of the same kind (working day or
    weekend), nearest first, within `[calendar] suggestion_window_days` either side;
    never in the past.

    The result is the same as running `find_conflicts` for each shifted candidate, without
    ~50 round trips: one probe query finds the dates on which some event surely collides
    (`_busy_dates`); the other dates are read a batch at a time, nearest first, and each
    is checked in memory against exactly the events its own range query would return.
    In a busy region (a region-wide candidate collides with nearly everything) the probe
    alone answers, instead of reading thousands of events.
    """
    base = validate_event(ctx, candidate)
    candidates = _shifted_candidates(ctx, candidate, base)
    if not candidates:
        return []
    busy = await _busy_dates(session, ctx, base, candidates, exclude_event_id)
    rest = [c for i, c in enumerate(candidates) if i not in busy]
    districts = await districts_by_id(session, ctx)
    found: list[tuple[datetime | date, datetime | date]] = []
    for start in range(0, len(rest), SUGGESTION_BATCH):
        batch = rest[start:start + SUGGESTION_BATCH]
        # Every shift keeps the district, so one pool (same places, same rules) serves the batch.
        rows = await read_pool(session, ctx, base, merge_windows(w for _, _, ws in batch for w in ws),
                           exclude_event_id)
        pool = _WindowPool(rows)
        for norm, spans, windows in batch:
            if collides(ctx, norm, spans, pool.for_windows(windows), districts):
                continue
            found.append(_shape(ctx, norm))
            if len(found) >= n:
                return found
    return found


def _shifted_candidates(ctx: AppContext, candidate: EventInput, base: NormalisedEvent) -> list[_Candidate]:
    """The candidate moved to each day of the window, best first, minus the days that are
    in the past, impossible (a DST gap) or a holiday or bridge day."""
    tz = ctx.tz
    window = ctx.settings.calendar.suggestion_window_days
    weekday = base.starts_at.astimezone(tz).weekday()
    now = ctx.now()
    latest = horizon(ctx)

    def rank(d: int) -> tuple[int, int, int, int]:
        day = (weekday + d) % 7
        return (day != weekday, (day >= 5) != (weekday >= 5), abs(d), d < 0)

    candidates: list[_Candidate] = []
    for d in sorted((d for d in range(-window, window + 1) if d), key=rank):
        try:
            norm = _moved(ctx, candidate, base, d, latest)
        except Exception:  # noqa: S112 - a shift into a DST gap or beyond the horizon is skipped
            continue
        if norm.starts_at < now:
            continue
        spans = norm.spans(tz)
        if any(day_warning(ctx, day) for s in spans for day in recurrence.local_days(s.start, s.end, tz)):
            continue
        candidates.append((norm, spans, day_windows(spans, tz)))
    return candidates


@lru_cache(maxsize=128)
def _probe_statement(count: int, exclude: bool) -> CompoundSelect:
    """For each of `count` intervals, its number if some published single event in the
    counted districts overlaps it. LIMIT 1 each: one overlapping event is enough."""
    branches = []
    for i in range(count):
        conditions = [Event.district_id.in_(bindparam("districts", expanding=True)),
                      Event.status == EventStatus.SCHEDULED, Event.moderation == Moderation.PUBLISHED,
                      Event.rrule.is_(None), Event.starts_at < bindparam(f"hi{i}"),
                      Event.starts_at > bindparam(f"earliest{i}"), Event.last_ends_at > bindparam(f"lo{i}")]
        if exclude:
            conditions.extend(not_excluded())
        first = select(literal_column(str(i)).label("n")).where(*conditions).limit(1).subquery()
        branches.append(select(first.c.n))
    return union_all(*branches)


async def _busy_dates(session: AsyncSession, ctx: AppContext, base: NormalisedEvent,
                      candidates: Sequence[_Candidate], exclude_event_id: int | None) -> set[int]:
    """Indexes of the single-occurrence candidates that some single event surely collides
    with: it overlaps them in time in a district whose relation counts under
    `[calendar.conflicts] scope`, which `classify` always reports (as a conflict, or as
    a duplicate). Candidates with several occurrences are left to the full check.

    The probe looks for events that began at most LONG_SPAN before a candidate, as the
    pool does for events of up to a day, but not among the longer ones: each branch reads
    a day or two of the index. A date is only ever marked busy by an event that overlaps
    it, so one overlapped only by a longer event is not lost: the full check finds it."""
    probed = [(i, spans[0]) for i, (_norm, spans, _w) in enumerate(candidates) if len(spans) == 1]
    if not probed:
        return set()
    scope = SCOPE_RANK[ctx.settings.calendar.conflicts.scope]
    ids = await district_id_map(session, ctx)
    counted = [ids[d.slug] for d in (base.district, *base.district.ancestors, *base.district.descendants)
               if d.slug in ids and SCOPE_RANK[place_relation(base.district, d) or "region"] <= scope]
    connection = await session.connection()
    busy: set[int] = set()
    for start in range(0, len(probed), MAX_SLOTS):
        chunk = probed[start:start + MAX_SLOTS]
        slots = slot_count(len(chunk))
        statement = _probe_statement(slots, exclude_event_id is not None)
        params = interval_params(counted, exclude_event_id, [(span.start, span.end) for _i, span in chunk],
                                  slots, reach=LONG_SPAN)
        busy.update(chunk[n][0] for (n,) in await fetch_rows(connection, statement, params))
    return busy
