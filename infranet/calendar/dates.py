"""Exact dates and moments for the CLI and the HTTP API.

`parse_day("5.12.2026")`, `parse_moment("5.12.2026 10:00", tz)`: what the chat's
parser (`dateparse`) reads as a day, plus ISO 8601 moments with or without a
zone. Days and the wall-clock-to-UTC rule (a time skipped by the spring DST change
is refused, a repeated autumn time is its first occurrence) come from `dateparse`,
so the bot, the CLI and the API agree.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, tzinfo

from infranet.calendar.dateparse import parse_date
from infranet.calendar.wallclock import to_utc
from infranet.errors import ValidationFailed

_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")


def _date_error(field: str, value: str, hint: str = "") -> ValidationFailed:
    return ValidationFailed("calendar.error.date", field=field, value=repr(value), hint=hint)


def parse_day(text: str, field: str = "date", today: date | None = None) -> date:
    """One exact day, read by the chat's parser (one set of rules for every way in)."""
    return parse_date(text, today or date.today(), lang="en", allow_past=True)


def localize(naive: datetime, tz: tzinfo, field: str = "start") -> datetime:
    """Attach the region's zone to a wall-clock time, by the same rule as the chat:
    a time skipped by the spring DST change is refused, a repeated autumn time is
    its first occurrence."""
    return to_utc(naive.date(), naive.time(), tz).astimezone(tz)


def parse_moment(text: str, tz: tzinfo, field: str = "start") -> datetime:
    """A date with a time; without an explicit offset it is local time in `tz`."""
    value = " ".join(text.strip().replace("T", " ", 1).split()) if "T" in text[:11] else \
        " ".join(text.strip().split())
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is not None:
        if parsed.tzinfo is not None:
            return parsed
        if len(value) <= 10:
            raise _date_error(field, text, " 10:00 (a time is needed)")
        return localize(parsed, tz, field)
    head, _, tail = value.rpartition(" ")
    found = _TIME.match(tail)
    if not head or not found:
        raise _date_error(field, text, " 10:00 (a time is needed)")
    hour, minute = int(found.group(1)), int(found.group(2))
    if hour > 23 or minute > 59:
        raise _date_error(field, text, f" ({tail} is not a time of day)")
    day = parse_day(head.rstrip(","), field)
    return localize(datetime.combine(day, time(hour, minute)), tz, field)
