"""Dates and times the way people in the region write them.

`parse_day("5.12.2026")`, `parse_moment("5.12.2026 10:00", tz)`: Polish
formats (day first, dots or slashes, "5 grudnia 2026"), ISO 8601 and the
ISO forms with a time zone. A local time that does not exist (skipped by the
spring DST change) or exists twice (autumn) is reported, not guessed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo

from infranet.errors import ValidationFailed
from infranet.i18n import MONTHS_GENITIVE, register
from infranet.region import fold

register({
    "calendar.error.date": {
        "pl": "{field}: nie rozumiem daty {value} — napisz np. 5.12.2026 albo 2026-12-05{hint}",
        "en": "{field}: cannot read the date {value} — write e.g. 5.12.2026 or 2026-12-05{hint}",
    },
    "calendar.error.dst_gap": {
        "pl": "{field}: godzina {value} nie istnieje w strefie {zone} (zmiana czasu na letni); "
              "wybierz inną godzinę",
        "en": "{field}: {value} does not exist in {zone} (the clocks go forward); choose another time",
    },
})

_MONTHS = {fold(name): i + 1 for i, name in enumerate(MONTHS_GENITIVE["pl"])}
_MONTHS.update({fold(name): i + 1 for i, name in enumerate(MONTHS_GENITIVE["en"])})
_DAY_FIRST = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$")
_ISO_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_WORDS = re.compile(r"^(\d{1,2}) ([a-z]+) (\d{4})$")
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")


def _date_error(field: str, value: str, hint: str = "") -> ValidationFailed:
    return ValidationFailed("calendar.error.date", field=field, value=repr(value), hint=hint)


def parse_day(text: str, field: str = "date") -> date:
    value = text.strip()
    for pattern, order in ((_DAY_FIRST, (3, 2, 1)), (_ISO_DAY, (1, 2, 3))):
        found = pattern.match(value)
        if found:
            year, month, day = (int(found.group(i)) for i in order)
            break
    else:
        found = _WORDS.match(fold(value))
        if not found or found.group(2) not in _MONTHS:
            raise _date_error(field, text)
        year, month, day = int(found.group(3)), _MONTHS[found.group(2)], int(found.group(1))
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise _date_error(field, text, f" ({exc})") from None


def localize(naive: datetime, tz: tzinfo, field: str = "start") -> datetime:
    """Attach the region's zone to a wall-clock time, refusing times skipped by DST."""
    aware = naive.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise ValidationFailed("calendar.error.dst_gap", field=field,
                               value=naive.strftime("%Y-%m-%d %H:%M"), zone=str(tz))
    return aware


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
