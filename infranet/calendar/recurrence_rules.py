"""The RRULE parts accepted and the checks that refuse a rule before it is ever expanded.

Kept apart from `recurrence` (the stored text and the expansion) because these checks
are pure text rules: which parts, which values, and which combinations can never give
a date. The last matters for safety, not only for clear messages: dateutil's expander
walks period after period until the year 9999 looking for a date that a contradictory
rule (`FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30`, `BYSETPOS=6` among the Mondays of a month)
never gives, seconds of CPU for a single rule from a file or the API. Such rules are
refused here, each with what makes it impossible; `recurrence.canonical_rule` then
checks that what is left gives a date within the planning horizon.
"""

from __future__ import annotations

import re

from infranet.errors import ValidationFailed

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
ALLOWED_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYMONTHDAY", "BYDAY", "BYSETPOS",
                 "WKST")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# One expansion gives at most this many occurrences (COUNT is bounded by it as well): a
# daily series over two years, and a bound on the work of every reader of a series.
MAX_OCCURRENCES = 1000
MAX_COUNT = MAX_OCCURRENCES
MAX_INTERVAL = 100
_BYDAY = re.compile(r"^([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_INTEGER = re.compile(r"^[+-]?\d{1,3}$")
# The longest each month can be (February: in a leap year).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def fail(detail: str) -> ValidationFailed:
    return ValidationFailed("calendar.error.rrule", field="rrule", detail=detail)


# Not rule parts, but accepted among them (`…;RDATE=20261224T100000`, as an importer may
# pass a file's RDATE with its RRULE): the dates of those properties, merged when repeated.
DATE_PARTS = ("RDATE", "EXDATE")


def parse_parts(rule: str) -> dict[str, str]:
    """`NAME=VALUE;…` as a dict (names upper-cased); unknown parts are refused by name."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    parts: dict[str, str] = {}
    for chunk in filter(None, text.split(";")):
        if "=" not in chunk:
            raise fail(f"{chunk!r} is not NAME=VALUE (example: FREQ=WEEKLY;COUNT=6)")
        name, value = chunk.split("=", 1)
        name = name.strip().upper()
        if name in DATE_PARTS:
            parts[name] = ",".join(filter(None, (parts.get(name), value.strip().upper())))
            continue
        if name not in ALLOWED_PARTS:
            raise fail(f"{name} is not supported; use {', '.join(ALLOWED_PARTS)}")
        if name in parts:
            raise fail(f"{name} is given twice")
        parts[name] = value.strip().upper()
    return parts


def _numbers(parts: dict[str, str], name: str, low: int, high: int) -> list[int]:
    values = []
    for item in parts[name].split(","):
        if not _INTEGER.match(item) or not low <= abs(int(item)) <= high:
            raise fail(f"{name} values must be numbers from {low} to {high} (or -{high} to -{low})")
        values.append(int(item))
    return values


def check_parts(parts: dict[str, str]) -> None:
    """Refuse what dateutil would accept but the network cannot use: unknown values, COUNT
    with UNTIL, and combinations that never give a date (see the module's doc)."""
    freq = parts.get("FREQ")
    if freq not in FREQUENCIES:
        raise fail("FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY (example: FREQ=MONTHLY;COUNT=10)")
    if "COUNT" in parts and "UNTIL" in parts:
        raise fail("give at most one of COUNT (number of meetings) or UNTIL (last date)")
    if "INTERVAL" in parts and not (parts["INTERVAL"].isdigit()
                                    and 1 <= int(parts["INTERVAL"]) <= MAX_INTERVAL):
        raise fail(f"INTERVAL must be a number from 1 to {MAX_INTERVAL}")
    if "COUNT" in parts and not (parts["COUNT"].isdigit() and 1 <= int(parts["COUNT"]) <= MAX_COUNT):
        raise fail(f"COUNT must be a number from 1 to {MAX_COUNT}")
    if "WKST" in parts and parts["WKST"] not in WEEKDAYS:
        raise fail(f"WKST must be one of {', '.join(WEEKDAYS)}")
    months = _numbers(parts, "BYMONTH", 1, 12) if "BYMONTH" in parts else []
    if any(m < 0 for m in months):
        raise fail("BYMONTH values must be numbers from 1 to 12")
    monthdays = _numbers(parts, "BYMONTHDAY", 1, 31) if "BYMONTHDAY" in parts else []
    if monthdays and freq == "WEEKLY":
        raise fail("BYMONTHDAY cannot be used with FREQ=WEEKLY (RFC 5545)")
    days = _weekdays(parts, freq, bool(months))
    if monthdays and not any(abs(d) <= _MONTH_DAYS[m - 1] for m in months or range(1, 13) for d in monthdays):
        raise fail(f"BYMONTHDAY={parts['BYMONTHDAY']} never falls in BYMONTH={parts['BYMONTH']}")
    if "BYSETPOS" in parts:
        if not (months or monthdays or days):
            raise fail("BYSETPOS needs BYDAY, BYMONTHDAY or BYMONTH to choose from (RFC 5545)")
        most = _set_size(freq, months, monthdays, days)
        positions = _numbers(parts, "BYSETPOS", 1, 366)
        if all(abs(p) > most for p in positions):
            raise fail(f"BYSETPOS={parts['BYSETPOS']} never matches: each period gives at most {most} dates")


def _weekdays(parts: dict[str, str], freq: str, by_month: bool) -> list[tuple[int, str]]:
    """BYDAY as (ordinal or 0, weekday); ordinals only where RFC 5545 allows them."""
    if "BYDAY" not in parts:
        return []
    found = []
    for item in parts["BYDAY"].split(","):
        match = _BYDAY.match(item)
        if not match:
            raise fail(f"BYDAY {item!r} must be a weekday (MO…SU), optionally numbered: 2MO, -1FR")
        sign, number, day = match.groups()
        nth = int(sign + number) if number else 0
        if number:
            if freq not in ("MONTHLY", "YEARLY"):
                raise fail(f"a numbered BYDAY ({item}) needs FREQ=MONTHLY or FREQ=YEARLY")
            top = 5 if freq == "MONTHLY" or by_month else 53
            if not 1 <= abs(nth) <= top:
                raise fail(f"BYDAY {item}: the number must be from 1 to {top} (or -{top} to -1)")
        found.append((nth, day))
    return found


def _set_size(freq: str, months: list[int], monthdays: list[int], days: list[tuple[int, str]]) -> int:
    """An upper bound on the dates one period (day, week, month, year) gives, what BYSETPOS
    chooses among."""
    if freq == "DAILY":
        return 1
    if freq == "WEEKLY":
        return len(days) or 1
    if freq == "MONTHLY":
        if monthdays:
            return len(monthdays)
        return sum(1 if nth else 5 for nth, _day in days) or 1
    month_count = len(months) or 12
    if monthdays:
        return len(monthdays) * month_count
    if days:
        per = month_count if months else 1
        return sum(per if nth else (5 * month_count if months else 53) for nth, _day in days)
    return month_count if months else 1
