"""Date conflicts and probable duplicates: the report, the rules, the check.

Public API (stable):

- `async find_conflicts(session, ctx, candidate: EventInput, *, exclude_event_id=None)
  -> ConflictReport` with `.conflicts` and `.duplicates` (lists of `Conflict`: the event as
  an `EventSummary` (the model's fields, its region district and its `Organiser`),
  occurrence start/end, severity "high"/"low", organisation name, e-mail, phone) and
  `.warnings` (list of `DayWarning`: public holiday or bridge day, with the holiday's name).

Free-date suggestions are `infranet.calendar.free_dates`, holiday and bridge-day warnings
`day_warnings`, and the query that reads the events a candidate may collide with
`conflict_pool`; this module holds the report's types and the comparison itself.

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
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import recurrence
from infranet.calendar.conflict_pool import day_windows, read_pool
from infranet.calendar.day_warnings import DayWarning, day_warning
from infranet.calendar.event_input import EventInput, NormalisedEvent, validate_event
from infranet.calendar.summary import EventSummary, PoolRow, districts_by_id
from infranet.context import AppContext
from infranet.region import District as RegionDistrict
from infranet.region import fold

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


def place_relation(a: RegionDistrict, b: RegionDistrict) -> str | None:
    if not a.overlaps(b):
        return None
    if a is b and a.kind == "powiat":
        return "powiat"
    if a.kind == "region" or b.kind == "region":
        return "region"
    return "subregion"


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
    # A long series meets a long candidate series (hundreds of dates each): each of its
    # occurrences is compared only with the candidate's dates near it, found by bisection
    # (the candidate's dates are in order, and none lasts longer than `reach`).
    starts = [span.start for span in spans]
    reach = max((span.end - span.start for span in spans), default=timedelta()) + timedelta(days=2)
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
            near = cand_days[bisect_left(starts, occ.start - reach):
                             bisect_left(starts, occ.end + timedelta(days=2))]
            for span, days in near:
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
    # In order of their starts (as `expand` gives them): `_hits` bisects them.
    return [(span, set(recurrence.local_days(span.start, span.end, tz)))
            for span in sorted(spans, key=lambda span: span.start)]


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
    pool = await read_pool(session, ctx, norm, day_windows(spans, ctx.tz), exclude_event_id, districts)
    return classify(ctx, norm, spans, pool, districts)


async def find_conflicts(session: AsyncSession, ctx: AppContext, candidate: EventInput, *,
                         exclude_event_id: int | None = None) -> ConflictReport:
    """What the candidate would collide with; raises ValidationFailed for bad input."""
    return await _check(session, ctx, validate_event(ctx, candidate), exclude_event_id)
