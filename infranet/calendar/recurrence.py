"""Recurring events: RRULE validation, canonical form and expansion.

A series is stored as its first occurrence (`starts_at`/`ends_at`) plus an
RRULE. Expansion happens in the region's time zone, so a weekly 10:00 meeting
stays at 10:00 local time across the DST changes (the UTC instant moves).

Only what the network needs is accepted: FREQ=WEEKLY or FREQ=MONTHLY, with
COUNT or UNTIL (an endless series could not be bounded by `last_ends_at`).
The canonical rule is what feeds publish, so UNTIL is a UTC date-time for
timed events and a DATE for all-day ones, as RFC 5545 requires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

from dateutil.rrule import rrulestr

from infranet.errors import ValidationFailed

FREQUENCIES = ("WEEKLY", "MONTHLY")
ALLOWED_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYSETPOS", "WKST")
MAX_COUNT = 200
_UNTIL_DATE = re.compile(r"^\d{8}$")
_UNTIL_LOCAL = re.compile(r"^\d{8}T\d{6}$")
_UNTIL_UTC = re.compile(r"^\d{8}T\d{6}Z$")


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
            raise _fail(f"UNTIL is too far ahead; the calendar plans until "
                        f"{last.day}.{last.month}.{last.year}")
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


def expand(rule: str | None, starts_at: datetime, ends_at: datetime, all_day: bool,
           tz: tzinfo) -> tuple[Span, ...]:
    """Every occurrence of an event (a single one without a rule), in order."""
    return _expand(rule, starts_at, ends_at, all_day, tz, str(tz))


@lru_cache(maxsize=50_000)
def _expand(rule: str | None, starts_at: datetime, ends_at: datetime, all_day: bool,
            tz: tzinfo, _tz_key: str) -> tuple[Span, ...]:
    if not rule:
        return (Span(starts_at, ends_at),)
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
        spans.append(Span(to_utc(naive, tz), to_utc(naive + wall, tz)))
    return tuple(spans)


def to_utc(naive_local: datetime, tz: tzinfo) -> datetime:
    return naive_local.replace(tzinfo=tz).astimezone(UTC)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant at which `day` begins in the region's time zone."""
    return datetime.combine(day, time(), tz).astimezone(UTC)


def local_days(start: datetime, end: datetime, tz: tzinfo) -> list[date]:
    """The local calendar days an interval [start, end) touches."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date() if end > start else first
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
