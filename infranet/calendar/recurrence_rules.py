"""The RRULE parts accepted and the checks that refuse a rule before it is ever expanded.

Kept apart from `recurrence` (the stored text and the expansion) because these checks
are pure text rules: which parts, which values, and which combinations can never give
a date. The last matters for safety, not only for clear messages: dateutil's expander
walks period after period until the year 9999 looking for a date that a contradictory
rule (`FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30`, `BYSETPOS=6` among the Mondays of a month)
never gives, seconds of CPU for a single rule from a file or the API. Such rules are
refused here, each with what makes it impossible (`check_parts`); what is possible in
each part and impossible together (`FREQ=DAILY;INTERVAL=7;BYDAY=MO` from a Tuesday) is
found by `gives_a_date`, which asks dateutil in bounded time.

Also here: how dates are written in rules (UNTIL, RDATE and EXDATE values) and read as
instants in the region's zone, for `recurrence.canonical_rule`.
"""

from __future__ import annotations

import re
from datetime import MAXYEAR, UTC, date, datetime, time, tzinfo

from dateutil.rrule import rrule, rruleset, rrulestr

from infranet.calendar.wallclock import local_midnight, occurrence_to_utc
from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date

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


# --- dates and times in rules, and the bounded search for a first date ---------------

_UNTIL_DATE = re.compile(r"^\d{8}$")
_UNTIL_LOCAL = re.compile(r"^\d{8}T\d{6}$")
_UNTIL_UTC = re.compile(r"^\d{8}T\d{6}Z$")


def canonical_until(until: str, all_day: bool, first_start_local: datetime, tz: tzinfo,
                     latest: datetime) -> str:
    if _UNTIL_DATE.match(until):
        local_until = datetime.combine(_parse_date(until), time(23, 59, 59), tz)
    elif _UNTIL_UTC.match(until):
        local_until = _parse_datetime(until[:-1]).replace(tzinfo=UTC).astimezone(tz)
    elif _UNTIL_LOCAL.match(until):
        local_until = _parse_datetime(until).replace(tzinfo=tz)
    else:
        raise fail(f"UNTIL {until!r} must look like 20270630 or 20270630T235959Z")
    if local_until < first_start_local:
        raise fail("UNTIL is before the first meeting")
    if local_until > latest:
        raise fail(f"UNTIL is too far ahead; the calendar plans until {numeric_date(latest.date())}")
    return (f"{local_until.date():%Y%m%d}" if all_day
            else f"{local_until.astimezone(UTC):%Y%m%dT%H%M%SZ}")


def gives_a_date(canonical: str, dtstart: datetime, latest: datetime) -> bool:
    """Whether the rule has a date from `dtstart` to `latest`, looked for in bounded time.

    A rule with no date there may have none at all, and dateutil would look for one up to
    the year 9999 (seconds of CPU for `FREQ=DAILY;INTERVAL=7;BYDAY=MO` from a Tuesday). The
    Gregorian calendar repeats every 400 years (146097 days, whole weeks), and a rule's
    periods are counted from its start, so the same rule started 400·n years later has the
    same dates 400·n years later: it is asked near the year 9999, where its search ends
    within 400 years (about 0.2 s for a daily rule)."""
    naive_start = dtstart.replace(tzinfo=None)
    naive_latest = latest.astimezone(dtstart.tzinfo).replace(tzinfo=None) if dtstart.tzinfo else \
        latest.replace(tzinfo=None)
    shift = 400 * ((MAXYEAR - 1 - naive_latest.year) // 400)
    parts = [p for p in canonical.split(";") if not p.startswith("UNTIL=")]
    until = parse_parts(canonical).get("UNTIL")
    if until:  # the rule's own end, when nearer than the horizon
        naive_latest = min(naive_latest, datetime.combine(_parse_date(until[:8]), time(23, 59, 59)))
    try:
        probe = rule_object(";".join(parts), naive_start.replace(year=naive_start.year + shift))
        first = next(iter(probe), None)
    except (ValueError, OverflowError):  # not expected; the real expansion then decides
        return True
    return first is not None and first <= naive_latest.replace(year=naive_latest.year + shift)


def given_line(line: str) -> tuple[str, str]:
    name, _, values = line.strip().partition(":")
    name = name.split(";", 1)[0].strip().upper()
    if name in DATE_PARTS and "/" in values:
        raise fail(f"{name} periods (start/end) are not supported; give dates or date-times")
    return name, values.strip().upper()


def given_moment(value: str, all_day: bool, first_start_local: datetime, tz: tzinfo) -> datetime:
    """An RDATE/EXDATE value as the UTC start of the occurrence it names."""
    value = value.strip()
    if _UNTIL_DATE.match(value):
        day = _parse_date(value)
    elif _UNTIL_UTC.match(value):
        moment = _parse_datetime(value[:-1]).replace(tzinfo=UTC)
        day = moment.astimezone(tz).date()
        if not all_day:
            return moment
    elif _UNTIL_LOCAL.match(value):
        naive = _parse_datetime(value)
        day = naive.date()
        if not all_day:
            return occurrence_to_utc(naive, tz)
    else:
        raise fail(f"{value!r} must look like 20261224, 20261224T100000 or 20261224T090000Z")
    if all_day:
        return local_midnight(day, tz)
    return occurrence_to_utc(datetime.combine(day, first_start_local.time()), tz)


def _parse_date(text: str) -> date:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise fail(f"{text!r} is not a real date") from None


def _parse_datetime(text: str) -> datetime:
    day = _parse_date(text[:8])
    try:
        return datetime.combine(day, time(int(text[9:11]), int(text[11:13]), int(text[13:15])))
    except ValueError:
        raise fail(f"{text!r} is not a real time") from None


def dtstart_for(first_start_local: datetime, all_day: bool) -> datetime:
    if all_day:
        return datetime.combine(first_start_local.date(), time())  # naive: DATE rules
    return first_start_local


def rule_object(canonical: str, dtstart: datetime) -> rrule | rruleset:
    return rrulestr("RRULE:" + canonical, dtstart=dtstart)
