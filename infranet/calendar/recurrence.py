"""Recurring events: RRULE validation, canonical form and expansion.

A series is stored as its first occurrence (`starts_at`/`ends_at`) plus an
RRULE. Expansion happens in the region's time zone, so a weekly 10:00 meeting
stays at 10:00 local time across the DST changes (the UTC instant moves).

Rules: FREQ=DAILY, WEEKLY, MONTHLY or YEARLY with INTERVAL, BYDAY (numbered too:
`2MO`, `-1FR`), BYMONTHDAY, BYMONTH, BYSETPOS, WKST and COUNT, UNTIL or no end
(`recurrence_rules` says what is refused and why). dateutil's `rrulestr` expands
them; nothing here computes a date of a rule by hand. The canonical rule is what
feeds publish, so UNTIL is a UTC date-time for timed events and a DATE for all-day
ones, as RFC 5545 requires; a rule without an end is published without one.

The stored text (`events.rrule`, what `canonical_rule` returns) is the rule on its
first line, then at most one line of each kind below, each a comma-separated list of
occurrence starts in UTC (all-day: the local midnight of the day):
    FREQ=WEEKLY;COUNT=12
    RDATE:20261224T090000Z               extra dates of the series (feeds: RDATE)
    EXDATE:20261208T090000Z              cancelled: feeds publish them as EXDATE
    X-MOVED:20261201T090000Z             moved: an override event (same UID,
                                         RECURRENCE-ID) stands in for each
    X-HORIZON:20281203T170000Z           an endless series: expanded up to here
Keeping them in the rule's own column means that every reader that expands a
series (listings, conflict checks, feeds, the JSON API) takes them into account
without knowing about them: `expand` does it. Only `rule_part` (the RRULE alone)
and these lines' own readers look inside.

Endless series. A series without COUNT or UNTIL is published as given, and expanded
up to the planning horizon it was saved with (`X-HORIZON`: `event_input.horizon`,
`[calendar] max_years_ahead` ahead), which is also its `last_ends_at`, so that the
range queries (`starts_at < :end AND last_ends_at > :start`) find it on every date
it is expanded to. Saving the series again (an edit, a re-import) moves the horizon
on; until then the series is not listed or conflict-checked beyond it.

Bounds on the work. One expansion gives at most `MAX_OCCURRENCES` occurrences and
never looks further than `MAX_WINDOW` past the first start (`ENDLESS_WINDOW` for an
endless rule saved without a horizon); contradictory rules are refused before
expansion (`recurrence_rules.check_parts`, `gives_a_date`), and a rule that gives no
date before the horizon is refused with that message.

Stable API (the bot, the importer, the queries): `canonical_rule`, `expand`,
`expand_all`, `rule_part`, `exclusions`, `with_exclusions`, `extra_dates`,
`local_days`, `Span`, `CANCELLED`, `MOVED`. Compare two stored texts for "the same
series" with `definition`, which leaves out what changes by itself (the horizon)
and what is changed one occurrence at a time (EXDATE, X-MOVED).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

from infranet.calendar.recurrence_rules import (
    ALLOWED_PARTS,
    MAX_COUNT,
    MAX_OCCURRENCES,
    canonical_until,
    check_parts,
    dtstart_for,
    fail,
    given_line,
    given_moment,
    gives_a_date,
    parse_parts,
    rule_object,
)
from infranet.calendar.wallclock import local_midnight, occurrence_to_utc
from infranet.i18n import numeric_date

_STAMP = "%Y%m%dT%H%M%SZ"
EXTRA, CANCELLED, MOVED, HORIZON = "RDATE", "EXDATE", "X-MOVED", "X-HORIZON"
_LINES = (EXTRA, CANCELLED, MOVED, HORIZON)  # the order of the stored lines
# The stored text (`events.rrule`, TEXT): the rule and a few hundred dates taken out or added.
TEXT_MAX = 8000
# No expansion looks further than this past the first start (a COUNT series with a long
# INTERVAL; validation keeps every stored series within the horizon anyway).
MAX_WINDOW = timedelta(days=366 * 11)
# An endless rule without a stored horizon (not yet saved: an importer's preview) is
# expanded this far: the default `max_years_ahead`.
ENDLESS_WINDOW = timedelta(days=366 * 2)


@dataclass(frozen=True)
class Span:
    """One occurrence as UTC instants (all-day: the local midnights bounding its days)."""

    start: datetime
    end: datetime


# --- the stored text ----------------------------------------------------------------------


def rule_part(text: str | None) -> str | None:
    """The RRULE of a stored rule text, without the other lines."""
    if not text:
        return None
    return text.split("\n", 1)[0].strip() or None


def _lines(text: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (text or "").split("\n")[1:]:
        name, _, values = line.partition(":")
        if name in _LINES and values:
            found[name] = values
    return found


def _stamps(values: str) -> frozenset[datetime]:
    return frozenset(datetime.strptime(v, _STAMP).replace(tzinfo=UTC) for v in values.split(","))


def _join(values: Iterable[datetime]) -> str:
    return ",".join(v.astimezone(UTC).strftime(_STAMP) for v in sorted(values))


def exclusions(text: str | None) -> dict[str, frozenset[datetime]]:
    """The occurrences taken out of a series, by kind (CANCELLED, MOVED): their original
    starts, UTC."""
    lines = _lines(text)
    return {name: _stamps(lines[name]) if name in lines else frozenset() for name in (CANCELLED, MOVED)}


def extra_dates(text: str | None) -> frozenset[datetime]:
    """The RDATE starts of a series, UTC (all-day: the local midnight of each day)."""
    lines = _lines(text)
    return _stamps(lines[EXTRA]) if EXTRA in lines else frozenset()


def horizon_of(text: str | None) -> datetime | None:
    """How far an endless series is expanded (None: it has an end, or was never saved)."""
    lines = _lines(text)
    return datetime.strptime(lines[HORIZON], _STAMP).replace(tzinfo=UTC) if HORIZON in lines else None


def with_horizon(text: str, moment: datetime) -> str:
    """The stored text of an endless series expanded up to `moment` (see `series_horizon`)."""
    lines = _lines(text)
    lines[HORIZON] = moment.astimezone(UTC).strftime(_STAMP)
    return _compose(rule_part(text) or "", lines)


def is_endless(text: str | None) -> bool:
    rule = (rule_part(text) or "").upper()
    return bool(rule) and "COUNT=" not in rule and "UNTIL=" not in rule


def _compose(rule: str, lines: dict[str, str]) -> str:
    return "\n".join([rule, *(f"{name}:{lines[name]}" for name in _LINES if lines.get(name))])


def with_exclusions(rule: str, cancelled: frozenset[datetime] | set[datetime],
                    moved: frozenset[datetime] | set[datetime]) -> str:
    """The stored text `rule` with exactly these occurrences taken out (see the module's
    doc); its RDATE and horizon lines are kept."""
    lines = _lines(rule)
    lines[CANCELLED] = _join(cancelled)
    lines[MOVED] = _join(moved)
    return _compose(rule_part(rule) or "", lines)


def definition(text: str | None) -> str | None:
    """What defines the series: the rule and its RDATEs, without the occurrences taken out
    of it and without the horizon (two saves of one endless series differ only there)."""
    if not text:
        return None
    lines = _lines(text)
    return _compose(rule_part(text) or "", {EXTRA: lines.get(EXTRA, "")})


def shifted(text: str, days: int, tz: tzinfo) -> str:
    """The stored text of a series moved `days` days (free-date suggestions): its RDATE,
    EXDATE and X-MOVED dates move with it, at the same wall-clock time."""
    lines = _lines(text)
    for name in (EXTRA, CANCELLED, MOVED):
        if lines.get(name):
            step = timedelta(days=days)
            wall = (v.astimezone(tz).replace(tzinfo=None) + step for v in _stamps(lines[name]))
            lines[name] = _join(occurrence_to_utc(moment, tz) for moment in wall)
    return _compose(rule_part(text) or "", lines)


# --- validation -------------------------------------------------------------------------


def canonical_rule(rule: str, *, all_day: bool, first_start_local: datetime, tz: tzinfo,
                   latest: datetime) -> str:
    """Validate `rule` and return the text stored (and published: its rule line).

    `rule` is an RRULE (`FREQ=…`, optionally `RRULE:`-prefixed), optionally followed by
    lines `RDATE:…` and `EXDATE:…` (parameters such as `;VALUE=DATE` are read and dropped;
    `;RDATE=…`/`;EXDATE=…` parts of the rule's own line are read the same way)
    whose comma-separated values are UTC (`20261224T090000Z`), local (`20261224T100000`, the
    region's zone) or dates (`20261224`: that day, at the first occurrence's time of day).
    Other lines (`X-MOVED`, `X-HORIZON`) are dropped: those belong to the stored series.
    `first_start_local` is the aware local start of the first occurrence; `latest` is the
    planning horizon: it bounds UNTIL and RDATE, and an endless series is stored with it.
    Raises ValidationFailed (field "rrule") naming what is wrong.
    """
    head, *rest = rule.strip().split("\n")
    parts = parse_parts(head)
    rest += [f"{name}:{parts.pop(name)}" for name in (EXTRA, CANCELLED) if name in parts]
    check_parts(parts)
    if "UNTIL" in parts:
        parts["UNTIL"] = canonical_until(parts["UNTIL"], all_day, first_start_local, tz, latest)
    order = [name for name in ALLOWED_PARTS if name in parts]
    canonical = ";".join(f"{name}={parts[name]}" for name in order)
    try:
        rule_object(canonical, dtstart_for(first_start_local, all_day))
    except (ValueError, TypeError) as exc:
        raise fail(f"not a valid RRULE: {exc}") from None
    if not gives_a_date(canonical, dtstart_for(first_start_local, all_day), latest):
        raise fail(f"the rule gives no date between {numeric_date(first_start_local.date())} "
                   f"and {numeric_date(latest.date())}")
    lines: dict[str, str] = {}
    for line in rest:
        name, values = given_line(line)
        if name in (EXTRA, CANCELLED):
            moments = {given_moment(v, all_day, first_start_local, tz) for v in values.split(",") if v}
            moments |= _stamps(lines[name]) if lines.get(name) else set()
            lines[name] = _join(moments)
    for moment in _stamps(lines[EXTRA]) if lines.get(EXTRA) else ():
        if moment < first_start_local:
            raise fail(f"RDATE {_shown(moment, tz)} is before the first meeting")
        if moment > latest:
            raise fail(f"RDATE {_shown(moment, tz)} is too far ahead; the calendar plans until "
                       f"{numeric_date(latest.date())}")
    if lines.get(EXTRA) and len(lines[EXTRA].split(",")) > MAX_COUNT:
        raise fail(f"at most {MAX_COUNT} RDATE dates")
    if "COUNT" not in parts and "UNTIL" not in parts:
        lines[HORIZON] = latest.astimezone(UTC).strftime(_STAMP)
    text = _compose(canonical, lines)
    if len(text) > TEXT_MAX:
        raise fail(f"the rule with its RDATE and EXDATE dates is {len(text)} characters; "
                   f"at most {TEXT_MAX} can be stored")
    first = first_start_local.astimezone(UTC)
    starts = [s.start for s in _expand(text, first, first + timedelta(hours=1), all_day, tz, str(tz))]
    if not starts or starts[0] > latest:
        raise fail(f"the rule gives no date between {numeric_date(first_start_local.date())} "
                   f"and {numeric_date(latest.date())}")
    return text


def _shown(moment: datetime, tz: tzinfo) -> str:
    return numeric_date(moment.astimezone(tz).date())



# --- expansion --------------------------------------------------------------------------


def expand(rule: str | None, starts_at: datetime, ends_at: datetime, all_day: bool,
           tz: tzinfo) -> tuple[Span, ...]:
    """Every occurrence of an event (a single one without a rule), in order: the rule's
    and the RDATEs, less those taken out of the series (cancelled or moved); an endless
    series up to its horizon. At most MAX_OCCURRENCES from the rule."""
    return _expand(rule, starts_at, ends_at, all_day, tz, str(tz))


def expand_all(rule: str | None, starts_at: datetime, ends_at: datetime, all_day: bool,
               tz: tzinfo) -> tuple[Span, ...]:
    """Every occurrence of the series, those taken out of it too (what an occurrence's
    original start is checked against)."""
    if not rule:
        return _expand(None, starts_at, ends_at, all_day, tz, str(tz))
    return _expand(with_exclusions(rule, frozenset(), frozenset()), starts_at, ends_at, all_day, tz,
                   str(tz))


def series_last_end(rule: str | None, spans: tuple[Span, ...], ends_at: datetime) -> datetime:
    """The `last_ends_at` stored for a series with these occurrences: the end of the last
    one, or for an endless series cut by its horizon, the horizon (see the module's doc)."""
    last = max((span.end for span in spans), default=ends_at)
    limit = horizon_of(rule)
    if limit is not None and is_endless(rule) and len(spans) < MAX_OCCURRENCES:
        return max(last, limit)
    return last


@lru_cache(maxsize=50_000)
def _expand(rule: str | None, starts_at: datetime, ends_at: datetime, all_day: bool,
            tz: tzinfo, _tz_key: str) -> tuple[Span, ...]:
    if not rule:
        return (Span(starts_at, ends_at),)
    head = rule_part(rule) or ""
    if "\n" in rule:
        out = exclusions(rule)
        gone = out[CANCELLED] | out[MOVED]
        limit = horizon_of(rule)
        extra = extra_dates(rule)
    else:
        gone, limit, extra = frozenset(), None, frozenset()
    if limit is None:
        limit = starts_at + (ENDLESS_WINDOW if is_endless(head) else MAX_WINDOW)
    limit = min(limit, starts_at + MAX_WINDOW)
    local_start = starts_at.astimezone(tz)
    local_end = ends_at.astimezone(tz)
    spans: dict[datetime, Span] = {}
    if all_day:
        days = (local_end.date() - local_start.date()).days
        last_day = limit.astimezone(tz).date()

        def day_span(first: date) -> Span:
            return Span(local_midnight(first, tz), local_midnight(first + timedelta(days=days), tz))

        for n, occ in enumerate(rule_object(head, dtstart_for(local_start, True))):
            if n >= MAX_OCCURRENCES or occ.date() > last_day:
                break
            span = day_span(occ.date())
            spans[span.start] = span
        for moment in extra:
            span = day_span(moment.astimezone(tz).date())
            spans[span.start] = span
    else:
        # Wall-clock duration, so "10:00–12:00" stays 10:00–12:00 on every date.
        wall = local_end.replace(tzinfo=None) - local_start.replace(tzinfo=None)

        def timed_span(naive: datetime) -> Span:
            return Span(occurrence_to_utc(naive, tz), occurrence_to_utc(naive + wall, tz))

        for n, occ in enumerate(rule_object(head, local_start)):
            if n >= MAX_OCCURRENCES or occ > limit:
                break
            span = timed_span(occ.replace(tzinfo=None))
            spans[span.start] = span
        for moment in extra:
            span = timed_span(moment.astimezone(tz).replace(tzinfo=None))
            spans[span.start] = span
    return tuple(spans[start] for start in sorted(spans) if start not in gone)


def local_days(start: datetime, end: datetime, tz: tzinfo) -> list[date]:
    """The local calendar days an interval [start, end) touches."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date() if end > start else first
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
