"""Date conflicts, probable duplicates, holiday warnings and free-date suggestions.

Public API (stable):

- `async find_conflicts(session, ctx, candidate: EventInput, *, exclude_event_id=None)
  -> ConflictReport` with `.conflicts` and `.duplicates` (lists of `Conflict`: the event as
  an `EventSummary` (the model's fields, its region district and its `Organiser`),
  occurrence start/end, severity "high"/"low", organisation name, e-mail, phone) and
  `.warnings` (list of `DayWarning`: public holiday or bridge day, with the holiday's name).
- `async suggest_dates(session, ctx, candidate, n=3) -> list[tuple[start, end]]`, in the
  candidate's shape: dates (end = last day, inclusive) for all-day events, aware local
  datetimes otherwise.

The rules (the same ones the property test checks against a brute-force oracle):

- Two occurrences collide when their times overlap ([start, end) intervals, all-day
  events covering their whole local days, so an all-day event overlaps every event on
  its days and an event ending at midnight does not touch the next day).
- Their places overlap when one district contains the other. The relation is "powiat"
  (the same powiat), "subregion" (a powiat and its subregion, or the same subregion)
  or "region" (one of them is region-wide); `[calendar.conflicts] scope` says up to
  which relation a collision counts.
- Severity is high for the same powiat when they share an audience or a category (with
  `audience_sensitive = false`: for the same powiat whatever the audience); otherwise low.
- A probable duplicate (reported instead of a conflict): the same district and local day,
  and a very similar title, or the same organisation with overlapping times.

Only published, scheduled events are compared. Candidate events are looked up with
indexed range queries: single events by `starts_at` within the candidate's days (their
length is bounded by MAX_EVENT_DAYS), series by the partial index on recurring rows.
"""

from __future__ import annotations

import difflib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, TypeVar

import holidays
from sqlalchemy import BindParameter, CompoundSelect, bindparam, literal_column, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import recurrence, wallclock
from infranet.calendar.district_ids import area_district_ids, district_id_map
from infranet.calendar.event_input import (
    LONG_SPAN,
    MAX_EVENT_SPAN,
    EventInput,
    NormalisedEvent,
    event_times,
    horizon,
    validate_event,
)
from infranet.calendar.summary import (
    POOL_COLUMNS,
    EventSummary,
    PoolRow,
    Rows,
    districts_by_id,
    pool_row,
    select_summaries,
    summarise,
)
from infranet.context import AppContext
from infranet.region import District as RegionDistrict
from infranet.region import fold
from infranet.storage.hotpath import fetch_rows
from infranet.storage.models import Event, EventStatus, Moderation
from infranet.storage.types import unindexed

SCOPE_RANK = {"powiat": 0, "subregion": 1, "region": 2}
TITLE_SIMILARITY = 0.85
TITLE_FOLD_MAX = 200  # the length of events.title_folded (a fold may be longer than its title)


@dataclass(frozen=True)
class Conflict:
    event: EventSummary
    start: datetime  # the colliding occurrence of `event` (UTC)
    end: datetime
    severity: str  # "high" | "low" (duplicates: "duplicate")
    relation: str  # "powiat" | "subregion" | "region"
    candidate_start: datetime  # the candidate's occurrence it collides with
    organisation_name: str | None
    contact_email: str | None
    phone: str | None


@dataclass(frozen=True)
class DayWarning:
    kind: str  # "holiday" | "bridge"
    day: date
    name: str  # the holiday's name in the country's language (bridge day: the holiday next to it)
    name_en: str = ""

    def message(self, lang: str = "pl") -> str:
        from infranet.i18n import format_date, t

        name = self.name_en if lang == "en" and self.name_en else self.name
        return t(lang, f"calendar.warning.{self.kind}", day=format_date(self.day, lang), name=name)


@dataclass
class ConflictReport:
    conflicts: list[Conflict] = field(default_factory=list)
    duplicates: list[Conflict] = field(default_factory=list)
    warnings: list[DayWarning] = field(default_factory=list)

    @property
    def clear(self) -> bool:
        return not (self.conflicts or self.duplicates or self.warnings)

    @property
    def high(self) -> list[Conflict]:
        return [c for c in self.conflicts if c.severity == "high"]


# --- places and holidays ------------------------------------------------------------


def place_relation(a: RegionDistrict, b: RegionDistrict) -> str | None:
    if not a.overlaps(b):
        return None
    if a is b and a.kind == "powiat":
        return "powiat"
    if a.kind == "region" or b.kind == "region":
        return "region"
    return "subregion"


@lru_cache(maxsize=128)
def _holidays(country: str, year: int, english: bool = False) -> dict[date, str]:
    """The country's public holidays, named in its own language (or in English)."""
    try:
        cls = holidays.country_holidays(country, years=year).__class__
        languages = getattr(cls, "supported_languages", ()) or ()
        language = getattr(cls, "default_language", None)
        if english:
            language = "en_US" if "en_US" in languages else ("en" if "en" in languages else language)
        found = holidays.country_holidays(country, years=year, language=language)
    except NotImplementedError:
        return {}
    return dict(found.items())


def holiday_name(ctx: AppContext, day: date, *, english: bool = False) -> str | None:
    return _holidays(ctx.settings.region.country, day.year, english).get(day)


def day_warning(ctx: AppContext, day: date) -> DayWarning | None:
    """A public holiday, or a working day between a holiday and a weekend (or another holiday)."""
    name = holiday_name(ctx, day)
    if name:
        return DayWarning("holiday", day, name, holiday_name(ctx, day, english=True) or name)
    if day.weekday() >= 5:
        return None

    def off(d: date) -> bool:
        return d.weekday() >= 5 or holiday_name(ctx, d) is not None

    before, after = day - timedelta(days=1), day + timedelta(days=1)
    for holiday_side, other_side in ((before, after), (after, before)):
        name = holiday_name(ctx, holiday_side)
        if name and off(other_side):
            return DayWarning("bridge", day, name,
                              holiday_name(ctx, holiday_side, english=True) or name)
    return None


# --- the check -----------------------------------------------------------------------


_Window = tuple[datetime, datetime]


def _windows(spans: Iterable[recurrence.Span], tz: tzinfo) -> list[_Window]:
    """The candidate's local days as UTC windows, merged."""
    return _merge(_day_window(span, tz) for span in spans)


def _day_window(span: recurrence.Span, tz: tzinfo) -> _Window:
    days = recurrence.local_days(span.start, span.end, tz)
    return wallclock.all_day_span(days[0], days[-1], tz)


def _merge(windows: Iterable[_Window]) -> list[_Window]:
    merged: list[_Window] = []
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _not_excluded() -> list[Any]:
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
        common.extend(_not_excluded())
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


async def _pool(session: AsyncSession, ctx: AppContext, norm: NormalisedEvent,
                windows: Sequence[_Window], exclude_event_id: int | None,
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
        slots = _slots(len(chunk))
        query = _pool_statement(slots, exclude_event_id is not None, districts is not None)
        params = _interval_params(district_ids, exclude_event_id, chunk, slots, reach=LONG_SPAN)
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


def _slots(count: int) -> int:
    return 1 << (count - 1).bit_length()


def _interval_params(districts: list[int], exclude_event_id: int | None,
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


def _similar(a: str, b: str) -> bool:
    """Whether two folded titles (`region.fold`: letters and digits of every script) are
    close enough to call the events probable duplicates. A title with no letter or digit
    at all (only emoji or symbols) folds to "" and is never similar to anything: "" == ""
    would make every two such titles "the same"."""
    if not a or not b:
        return False
    if a == b:
        return True
    if 2 * min(len(a), len(b)) < TITLE_SIMILARITY * (len(a) + len(b)):
        return False  # the lengths alone rule it out (difflib's real_quick_ratio bound)
    matcher = difflib.SequenceMatcher(None, a, b)
    return (matcher.real_quick_ratio() >= TITLE_SIMILARITY and matcher.quick_ratio() >= TITLE_SIMILARITY
            and matcher.ratio() >= TITLE_SIMILARITY)


_Row = TypeVar("_Row", bound=PoolRow)


def _hits(ctx: AppContext, norm: NormalisedEvent, cand_days: Sequence[tuple[recurrence.Span, set[date]]],
          pool: Iterable[_Row], districts: dict[int, RegionDistrict],
          ) -> Iterator[tuple[str, _Row, recurrence.Span, str, recurrence.Span]]:
    """Each collision of the candidate with the pool, lazily, as (severity, event, its
    occurrence, place relation, the candidate's span): suggestions stop at the first."""
    tz = ctx.tz
    rules = ctx.settings.calendar.conflicts
    scope = SCOPE_RANK[rules.scope]
    cand_title = fold(norm.title)[:TITLE_FOLD_MAX]  # as stored in title_folded
    spans = [span for span, _days in cand_days]
    seen: set[tuple[int, datetime]] = set()
    for row in pool:
        district = districts.get(row.district_id)
        if district is None:
            continue
        relation = place_relation(norm.district, district)
        if relation is None:
            continue
        same_place = norm.district is district
        if not same_place and row.rrule is None and not any(
                row.starts_at < span.end and row.ends_at > span.start for span in spans):
            continue  # elsewhere and at another time: neither a conflict nor a duplicate
        same_org = norm.organisation_id is not None and row.organisation_id == norm.organisation_id
        similar: bool | None = None  # computed only when it matters
        counts = SCOPE_RANK[relation] <= scope
        for occ in recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, tz):
            occ_days: set[date] | None = None
            for span, days in cand_days:
                if occ.start >= span.end + timedelta(days=2) or occ.end <= span.start - timedelta(days=2):
                    continue
                overlap = occ.start < span.end and occ.end > span.start
                key = (row.id, occ.start)
                if key in seen:
                    break
                if same_place:
                    if occ_days is None:
                        occ_days = set(recurrence.local_days(occ.start, occ.end, tz))
                    if days & occ_days:
                        if similar is None:
                            similar = _similar(cand_title, row.title_folded
                                               or fold(row.title)[:TITLE_FOLD_MAX])
                        if similar or (same_org and overlap):
                            seen.add(key)
                            yield "duplicate", row, occ, relation, span
                            break
                if overlap and counts:
                    seen.add(key)
                    high = relation == "powiat" and (not rules.audience_sensitive or _shared(norm, row))
                    yield ("high" if high else "low"), row, occ, relation, span
                    break


def _shared(norm: NormalisedEvent, row: PoolRow) -> bool:
    """The same audience (either side unspecified counts as shared) or the same category."""
    return (not norm.audiences or not row.audiences or bool(set(norm.audiences) & set(row.audiences))
            or norm.category == row.category)


def _candidate_days(spans: Sequence[recurrence.Span], tz: tzinfo) -> list[tuple[recurrence.Span, set[date]]]:
    return [(span, set(recurrence.local_days(span.start, span.end, tz))) for span in spans]


def classify(ctx: AppContext, norm: NormalisedEvent, spans: Sequence[recurrence.Span],
             pool: Iterable[EventSummary], districts: dict[int, RegionDistrict]) -> ConflictReport:
    """Compare the candidate's occurrences with the events of the pool (pure, no I/O)."""
    report = ConflictReport()
    cand_days = _candidate_days(spans, ctx.tz)
    for severity, row, occ, relation, span in _hits(ctx, norm, cand_days, pool, districts):
        found = report.duplicates if severity == "duplicate" else report.conflicts
        found.append(_conflict(row, occ, severity, relation, span))
    order = {"high": 0, "low": 1, "duplicate": 2}
    report.conflicts.sort(key=lambda c: (order[c.severity], c.start, c.event.id))
    report.duplicates.sort(key=lambda c: (c.start, c.event.id))
    days_seen: set[date] = set()
    for _span, days in cand_days:
        for day in sorted(days - days_seen):
            days_seen.add(day)
            warning = day_warning(ctx, day)
            if warning:
                report.warnings.append(warning)
    return report


def collides(ctx: AppContext, norm: NormalisedEvent, spans: Sequence[recurrence.Span],
             pool: Iterable[PoolRow], districts: dict[int, RegionDistrict]) -> bool:
    """Whether `classify` would report any conflict or duplicate, stopping at the first."""
    hits = _hits(ctx, norm, _candidate_days(spans, ctx.tz), pool, districts)
    return next(hits, None) is not None


def _conflict(row: EventSummary, occ: recurrence.Span, severity: str, relation: str,
              span: recurrence.Span) -> Conflict:
    org = row.organisation
    return Conflict(event=row, start=occ.start, end=occ.end, severity=severity,
                    relation=relation, candidate_start=span.start,
                    organisation_name=org.name if org else None,
                    contact_email=org.contact_email if org else None, phone=org.phone if org else None)


async def _check(session: AsyncSession, ctx: AppContext, norm: NormalisedEvent,
                 exclude_event_id: int | None) -> ConflictReport:
    spans = norm.spans(ctx.tz)
    districts = await districts_by_id(session, ctx)
    pool = await _pool(session, ctx, norm, _windows(spans, ctx.tz), exclude_event_id, districts)
    return classify(ctx, norm, spans, pool, districts)


async def find_conflicts(session: AsyncSession, ctx: AppContext, candidate: EventInput, *,
                         exclude_event_id: int | None = None) -> ConflictReport:
    """What the candidate would collide with; raises ValidationFailed for bad input."""
    return await _check(session, ctx, validate_event(ctx, candidate), exclude_event_id)


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
    if base.rrule is not None:
        return validate_event(ctx, shifted)
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
    predicate `_pool`'s query uses, so each candidate is compared with exactly the events its
    own query would have returned (singles found by bisecting on `starts_at`)."""

    def __init__(self, rows: Iterable[PoolRow]) -> None:
        self.series = [r for r in rows if r.rrule is not None]
        self.singles = sorted((r for r in rows if r.rrule is None), key=lambda r: r.starts_at)
        self.starts = [r.starts_at for r in self.singles]

    def for_windows(self, windows: Sequence[_Window]) -> Iterator[PoolRow]:
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


_Candidate = tuple[NormalisedEvent, tuple[recurrence.Span, ...], list[_Window]]
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
        rows = await _pool(session, ctx, base, _merge(w for _, _, ws in batch for w in ws),
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
        candidates.append((norm, spans, _windows(spans, tz)))
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
            conditions.extend(_not_excluded())
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
        slots = _slots(len(chunk))
        statement = _probe_statement(slots, exclude_event_id is not None)
        params = _interval_params(counted, exclude_event_id, [(span.start, span.end) for _i, span in chunk],
                                  slots, reach=LONG_SPAN)
        busy.update(chunk[n][0] for (n,) in await fetch_rows(connection, statement, params))
    return busy
