"""One set of parsers for query, path and form parameters, each bounded.

Why: ids beyond what the column holds overflow the database driver (SQLite integers are
signed 64-bit, PostgreSQL's `integer` 32-bit),
`str.isdigit()` accepts "²" which `int()` refuses, and dates at year 1 or 9999 overflow
the arithmetic done on them (a day after 9999-12-31 does not exist). Every route parses
through these helpers, so each such value is a 400 with a message naming the parameter,
never a 500.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo

from infranet.errors import ValidationFailed
from infranet.i18n import DEFAULT_LANGUAGE, LANGUAGES

# The largest id a primary-key column holds on both engines: the models' ids are plain
# `Integer`, which is signed 32-bit on PostgreSQL (asyncpg refuses a larger parameter, a
# 500 unless caught) and 64-bit on SQLite.
MAX_ID = 2**31 - 1
# Dates the service can compute with: far enough for any plan, far from the calendar's ends.
MIN_YEAR = 1970
MAX_YEAR = 2200
# A parameter longer than this is not a value of any kind we accept.
MAX_PARAM_CHARS = 200



def _shown(text: str) -> str:
    """The value as quoted in an error message, cut short so a huge value cannot flood it."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def parse_id(text: str | None, field: str, *, minimum: int = 1) -> int:
    """A positive database id written in ASCII digits, at most MAX_ID."""
    value = (text or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise ValidationFailed("web.error.id", field=field, value=_shown(value))
    number = int(value)
    if not minimum <= number <= MAX_ID:
        raise ValidationFailed("web.error.id", field=field, value=_shown(value))
    return number


def parse_optional_id(text: str | None, field: str) -> int | None:
    """`parse_id`, or None when the parameter is absent or empty."""
    return None if text is None or not text.strip() else parse_id(text, field)


def parse_ids(values: list[str], field: str) -> tuple[int, ...]:
    """Ids given repeated or comma-separated (`org=1&org=2`, `org=1,2`), sorted, without repeats."""
    found = {parse_id(part, field) for value in values for part in value.split(",") if part.strip()}
    return tuple(sorted(found))


def check_length(text: str, field: str, limit: int = MAX_PARAM_CHARS) -> str:
    if len(text) > limit:
        raise ValidationFailed("web.error.too_long", field=field, limit=limit)
    return text


def _check_year(year: int, field: str) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationFailed("web.error.year", field=field, year=year, low=MIN_YEAR, high=MAX_YEAR)


def parse_date(text: str, field: str) -> date:
    """An ISO date (2026-12-05) within the years the service computes with."""
    value = check_length(text.strip(), field, 40)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("web.error.date", field=field, value=_shown(value)) from None
    _check_year(parsed.year, field)
    return parsed


def parse_date_or_time(text: str, field: str) -> date | datetime:
    """An ISO date, or an ISO date-time with or without an offset (a trailing Z is UTC).

    A naive date-time is returned naive: only the caller knows the region's zone and
    its rule for wall-clock times that DST skips."""
    value = check_length(text.strip(), field, 40)
    if len(value) == 10:
        return parse_date(value, field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed("web.error.date", field=field, value=_shown(value)) from None
    _check_year(parsed.year, field)
    return parsed


def day_start(day: date, tz: tzinfo) -> datetime:
    """The instant (UTC) a local day begins."""
    return datetime.combine(day, time(), tz).astimezone(UTC)


def preferred_language(asked: str | None, accept_language: str | None,
                       default: str = DEFAULT_LANGUAGE) -> str:
    """The language to answer in: `lang` when it names one we speak, else the first of
    `Accept-Language` we speak, else `default` (Polish). Header values are only compared
    against LANGUAGES, so any text in them is harmless."""
    if asked in LANGUAGES:
        return asked
    for part in (accept_language or "")[:MAX_PARAM_CHARS].split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return default
