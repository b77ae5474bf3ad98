"""A date with optional hours (`parse_when`), as a span of time (`make_span`), and the lists
of training sessions (`parse_sessions`): what the bot's date steps read.

Built on the days (`infranet.calendar.dateparse`) and the hours (`dateparse_hours`); pure
like them: the caller passes the local `today` and the region's zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from itertools import pairwise

from infranet.calendar.dateparse import (
    ALL_DAY_WORDS,
    MAX_INPUT,
    check_length,
    flat,
    local_today,
    normalise,
    parse_days,
)
from infranet.calendar.dateparse_hours import ALL_DAY, TIME_TOKEN, Hours, parse_hours
from infranet.calendar.wallclock import all_day_span, to_utc
from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date

MAX_SESSIONS = 60

_TIME_SUFFIX = re.compile(
    rf"^(?P<head>.+?),?\s+(?P<times>(?:(?:od|from|godz|w godz)\s+)?{TIME_TOKEN}\s*"
    rf"(?:-|do|to|until|till)\s*{TIME_TOKEN}|{'|'.join(sorted(ALL_DAY_WORDS, key=len, reverse=True))})$"
)

_SINGLE_SUFFIX = re.compile(
    r"^(?P<head>.+?),?\s+(?P<time>(?:od |from |o |at |godz )?\d{1,2}[:.]\d{2}\s*(?:am|pm)?)$")


@dataclass(frozen=True)
class Span:
    """A stretch of time ready for the calendar: aware UTC, `end` exclusive for all-day."""

    start: datetime
    end: datetime
    all_day: bool = False

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def make_span(first: date, last: date, hours: Hours, tz: tzinfo) -> Span:
    """Days and hours as one span: all-day from the first local midnight to the midnight after
    the last day; with hours, from the start on the first day to the end on the last."""
    if last < first:
        raise ValidationFailed("dateparse.range_reversed", start=numeric_date(first), end=numeric_date(last))
    if hours.all_day:
        return Span(*all_day_span(first, last, tz), True)
    assert hours.start is not None and hours.end is not None
    end_day = last + timedelta(days=1) if hours.ends_next_day else last
    return Span(to_utc(first, hours.start, tz), to_utc(end_day, hours.end, tz))


# --- date with optional hours, and session lists ------------------------------------------------


@dataclass(frozen=True)
class When:
    """What the user wrote at the date step: days, and hours if they gave them too."""

    first: date
    last: date
    hours: Hours | None = None

    @property
    def is_range(self) -> bool:
        return self.last != self.first


def parse_when(text: str, today: date, *, lang: str = "pl", allow_past: bool = False) -> When:
    """A day or a range of days, optionally followed by hours: `5.12 10-14`, `5-7.12.2026 cały dzień`."""
    check_length(text)
    norm = flat(text)
    found = _TIME_SUFFIX.match(norm)
    if found:
        try:
            first, last = parse_days(found.group("head"), today, lang=lang, allow_past=allow_past)
        except ValidationFailed as exc:
            if exc.key != "dateparse.unreadable_date":
                raise
        else:
            return When(first, last, parse_hours(found.group("times")))
    single = _SINGLE_SUFFIX.match(norm)
    if single:  # "5.12 10:00": a start without an end
        try:
            parse_days(single.group("head"), today, lang=lang, allow_past=True)
        except ValidationFailed:
            pass
        else:
            parse_hours(single.group("time"))  # raises no_end_time (or bad_time)
    first, last = parse_days(text, today, lang=lang, allow_past=allow_past)
    return When(first, last)


def _session_items(norm: str) -> list[str]:
    """Split a session list on commas, semicolons and new lines; `Dec 5, 2026` stays whole."""
    pieces = [p.strip() for p in re.split(r"[,;\n]| i | and ", norm) if p.strip()]
    items: list[str] = []
    for piece in pieces:
        if items and re.fullmatch(r"\d{4}( .*)?", piece) and re.search(r"[a-z]", items[-1]):
            items[-1] = f"{items[-1]} {piece}"
        else:
            items.append(piece)
    return items


def parse_sessions(
    text: str, today: date, tz: tzinfo, *, lang: str = "pl", allow_past: bool = False,
) -> list[Span]:
    """Training sessions: `5.12, 12.12, 19.12 10:00-14:00`, `5.12 9-13; 6.12 10-14`, `5-7.12 10-14`.

    Hours apply to the dates written before them that have none of their own
    (dates after the last hours take those hours); without any hours every
    session is all-day. A range of days with hours is one session per day;
    without hours it is one all-day session over those days. The result is
    sorted, and overlapping sessions are refused.
    """
    if len(text) > MAX_INPUT * 3:
        raise ValidationFailed("dateparse.too_long", length=len(text), limit=MAX_INPUT * 3)
    lines = text.replace("\r", "\n").split("\n")
    norm = "\n".join(normalise(line) for line in lines)
    items = _session_items(norm)
    if not items:
        raise ValidationFailed("dateparse.no_sessions")
    parsed = [parse_when(item, today, lang=lang, allow_past=allow_past) for item in items]
    hours: list[Hours | None] = [w.hours for w in parsed]
    following: Hours | None = None
    for index in range(len(hours) - 1, -1, -1):
        if hours[index] is None:
            hours[index] = following
        else:
            following = hours[index]
    previous: Hours | None = None
    for index, value in enumerate(hours):
        if value is None:
            hours[index] = previous
        previous = hours[index]
    spans: list[Span] = []
    for when, given in zip(parsed, hours, strict=True):
        own = given or ALL_DAY
        if own.all_day:
            spans.append(make_span(when.first, when.last, own, tz))
        else:
            day = when.first
            while day <= when.last:
                spans.append(make_span(day, day, own, tz))
                day += timedelta(days=1)
        if len(spans) > MAX_SESSIONS:
            raise ValidationFailed("dateparse.too_many_sessions", count=len(spans), limit=MAX_SESSIONS)
    spans.sort(key=lambda s: (s.start, s.end))
    for before, after in pairwise(spans):
        if after.start < before.end:
            raise ValidationFailed(
                "dateparse.sessions_overlap",
                first=numeric_date(local_today(before.start, tz)),
                second=numeric_date(local_today(after.start, tz)),
            )
    return spans
