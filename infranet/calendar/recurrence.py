"""Recurring events: RRULE validation, canonical form and expansion.

A series is stored as its first occurrence (`starts_at`/`ends_at`) plus an
RRULE. Expansion happens in the region's time zone, so a weekly 10:00 meeting
stays at 10:00 local time across the DST changes (the UTC instant moves).

Only what the network needs is accepted: FREQ=WEEKLY or FREQ=MONTHLY, with
COUNT or UNTIL (an endless series could not be bounded by `last_ends_at`).
The canonical rule is what feeds publish, so UNTIL is a UTC date-time for
timed events and a DATE for all-day ones, as RFC 5545 requires.

Changes to single occurrences. The stored text may hold, after the rule, the
occurrences taken out of the series, one line per kind, each a list of the
occurrences' original starts in UTC (`with_exclusions`):
    FREQ=WEEKLY;COUNT=12
    EXDATE:20261208T090000Z              cancelled: feeds publish them as EXDATE
    X-MOVED:20261201T090000Z             moved: an override event (same UID,
                                         RECURRENCE-ID) stands in for each
Keeping them in the rule's own column means that every reader that expands a
series (listings, conflict checks, feeds, the JSON API) leaves them out without
knowing about them: `expand` does it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

from dateutil.rrule import rrulestr

from infranet.calendar.wallclock import local_midnight, occurrence_to_utc
from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date

FREQUENCIES = ("WEEKLY", "MONTHLY")
ALLOWED_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYSETPOS", "WKST")
MAX_COUNT = 200
_UNTIL_DATE = re.compile(r"^\d{8}$")
_UNTIL_LOCAL = re.compile(r"^\d{8}T\d{6}$")
_UNTIL_UTC = re.compile(r"^\d{8}T\d{6}Z$")


_STAMP = "%Y%m%dT%H%M%SZ"
CANCELLED, MOVED = "EXDATE", "X-MOVED"


@dataclass(frozen=True)
class Span:
    """One occurrence as UTC instants (all-day: the local midnights bounding its days)."""

    start: datetime
    end: datetime


def _fail(detail: str) -> ValidationFailed:
    return ValidationFailed("calendar.error.rrule", field="rrule", detail=detail)


def parse_parts(rule: str) -> dict[str, str]:
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    parts: dict[str, str] = {}
    for chunk in filter(None, text.split(";")):
        if "=" not in chunk:
            raise _fail(f"{chunk!r} is not NAME=VALUE (example: FREQ=WEEKLY;COUNT=6)")
        name, value = chunk.split("=", 1)
        name = name.strip().upper()
        if name not in ALLOWED_PARTS:
            raise _fail(f"{name} is not supported; use {', '.join(ALLOWED_PARTS)}")
        parts[name] = value.strip().upper()
    return parts


def canonical_rule(rule: str, *, all_day: bool, first_start_local: datetime, tz: tzinfo,
                   latest: datetime) -> str:
    """Validate `rule` and return it in the form stored and published.

    `first_start_local` is the aware local start of the first occurrence;
    `latest` bounds UNTIL (the planning horizon).
    """
    parts = parse_parts(rule)
    freq = parts.get("FREQ")
    if freq not in FREQUENCIES:
        raise _fail("FREQ must be WEEKLY or MONTHLY (example: FREQ=MONTHLY;COUNT=10)")
    if ("COUNT" in parts) == ("UNTIL" in parts):
        raise _fail("give exactly one of COUNT (number of meetings) or UNTIL (last date)")
    if "INTERVAL" in parts and not (parts["INTERVAL"].isdigit() and 1 <= int(parts["INTERVAL"]) <= 12):
        raise _fail("INTERVAL must be a number from 1 to 12")
    if "COUNT" in parts:
        if not parts["COUNT"].isdigit() or not 1 <= int(parts["COUNT"]) <= MAX_COUNT:
            raise _fail(f"COUNT must be a number from 1 to {MAX_COUNT}")
    else:
        until = parts["UNTIL"]
        if _UNTIL_DATE.match(until):
            day = _parse_date(until)
            local_until = datetime.combine(day, time(23, 59, 59), tz)
        elif _UNTIL_UTC.match(until):
            local_until = _parse_datetime(until[:-1]).replace(tzinfo=UTC).astimezone(tz)
        elif _UNTIL_LOCAL.match(until):
            local_until = _parse_datetime(until).replace(tzinfo=tz)
        else:
            raise _fail(f"UNTIL {until!r} must look like 20270630 or 20270630T235959Z")
        if local_until < first_start_local:
            raise _fail("UNTIL is before the first meeting")
        if local_until > latest:
            last = latest.date()
            raise _fail(f"UNTIL is too far ahead; the calendar plans until {numeric_date(last)}")
        parts["UNTIL"] = (f"{local_until.date():%Y%m%d}" if all_day
                          else f"{local_until.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    order = [name for name in ALLOWED_PARTS if name in parts]
    canonical = ";".join(f"{name}={parts[name]}" for name in order)
    try:
        _rule_object(canonical, _dtstart(first_start_local, all_day))
    except (ValueError, TypeError) as exc:
        raise _fail(f"not a valid RRULE: {exc}") from None
    return canonical


def _parse_date(text: str) -> date:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise _fail(f"{text!r} is not a real date") from None


def _parse_datetime(text: str) -> datetime:
    day = _parse_date(text[:8])
    try:
        return datetime.combine(day, time(int(text[9:11]), int(text[11:13]), int(text[13:15])))
    except ValueError:
        raise _fail(f"{text!r} is not a real time") from None


def _dtstart(first_start_local: datetime, all_day: bool) -> datetime:
    if all_day:
        return datetime.combine(first_start_local.date(), time())  # naive: DATE rules
    return first_start_local


def _rule_object(canonical: str, dtstart: datetime):  # type: ignore[no-untyped-def]
    return rrulestr("RRULE:" + canonical, dtstart=dtstart)


def rule_part(text: str | None) -> str | None:
    """The RRULE of a stored rule text, without the occurrences taken out of it."""
    if not text:
        return None
    return text.split("\n", 1)[0].strip() or None


def exclusions(text: str | None) -> dict[str, frozenset[datetime]]:
    """The occurrences taken out of a series, by kind (CANCELLED, MOVED): their original
    starts, UTC."""
    found: dict[str, frozenset[datetime]] = {CANCELLED: frozenset(), MOVED: frozenset()}
    for line in (text or "").split("\n")[1:]:
        name, _, values = line.partition(":")
        if name in found and values:
            found[name] = frozenset(datetime.strptime(v, _STAMP).replace(tzinfo=UTC)
                                    for v in values.split(","))
    return found


def with_exclusions(rule: str, cancelled: frozenset[datetime] | set[datetime],
                    moved: frozenset[datetime] | set[datetime]) -> str:
    """The stored text of `rule` with these occurrences taken out (see the module's doc)."""
    lines = [rule_part(rule) or ""]
    for name, values in ((CANCELLED, cancelled), (MOVED, moved)):
        if values:
            lines.append(name + ":" + ",".join(v.astimezone(UTC).strftime(_STAMP) for v in sorted(values)))
    return "\n".join(lines)


def expand(rule: str | None, starts_at: datetime, ends_at: datetime, all_day: bool,
           tz: tzinfo) -> tuple[Span, ...]:
    """Every occurrence of an event (a single one without a rule), in order; the occurrences
    taken out of a series (cancelled or moved) are left out."""
    return _expand(rule, starts_at, ends_at, all_day, tz, str(tz))


def expand_all(rule: str | None, starts_at: datetime, ends_at: datetime, all_day: bool,
               tz: tzinfo) -> tuple[Span, ...]:
    """Every occurrence of the rule, those taken out of the series too (what an occurrence's
    original start is checked against)."""
    return _expand(rule_part(rule), starts_at, ends_at, all_day, tz, str(tz))


@lru_cache(maxsize=50_000)
def _expand(rule: str | None, starts_at: datetime, ends_at: datetime, all_day: bool,
            tz: tzinfo, _tz_key: str) -> tuple[Span, ...]:
    if not rule:
        return (Span(starts_at, ends_at),)
    if "\n" in rule:
        out = exclusions(rule)
        gone = out[CANCELLED] | out[MOVED]
        return tuple(span for span in _expand(rule_part(rule), starts_at, ends_at, all_day, tz, _tz_key)
                     if span.start not in gone)
    local_start = starts_at.astimezone(tz)
    local_end = ends_at.astimezone(tz)
    if all_day:
        days = (local_end.date() - local_start.date()).days
        spans = []
        for occ in _rule_object(rule, _dtstart(local_start, True)):
            first = occ.date()
            spans.append(Span(local_midnight(first, tz), local_midnight(first + timedelta(days=days), tz)))
        return tuple(spans)
    # Wall-clock duration, so "10:00–12:00" stays 10:00–12:00 on every date.
    wall = local_end.replace(tzinfo=None) - local_start.replace(tzinfo=None)
    spans = []
    for occ in _rule_object(rule, local_start):
        naive = occ.replace(tzinfo=None)
        spans.append(Span(occurrence_to_utc(naive, tz), occurrence_to_utc(naive + wall, tz)))
    return tuple(spans)


def local_days(start: datetime, end: datetime, tz: tzinfo) -> list[date]:
    """The local calendar days an interval [start, end) touches."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date() if end > start else first
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
