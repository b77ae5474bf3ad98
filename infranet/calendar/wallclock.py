"""Local wall-clock time to UTC and back: the one place that decides what a time in the
region's zone means across the daylight-saving changes.

Two rules, for two different questions:

- What a *person typed* (`to_utc`): a time skipped by the spring change (02:30 on the last
  Sunday of March in Europe/Warsaw) does not exist, so it is refused with the nearest valid
  time as a suggestion; a time repeated in autumn is its first occurrence (`fold=0`, still
  summer time), and `repeated_times` lets the caller tell the person so.
- Where an *occurrence of a series* falls (`occurrence_to_utc`): nobody typed it, so it
  cannot be refused. RFC 5545 (3.3.5) says a nonexistent local time is read with the UTC
  offset from before the gap, which moves it forward by the gap's length (02:30 becomes
  03:30); a repeated one is again the first occurrence. Feeds and calendar programs
  expand the same series the same way.

Stored times are UTC; `local_midnight` gives the instant a local day begins (all-day events
are stored as local midnights, their end exclusive).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date


def to_utc(day: date, clock: time, tz: tzinfo) -> datetime:
    """A local wall-clock time in `tz` as an aware UTC datetime.

    A time skipped by the spring-forward change is refused with the nearest
    valid time as the suggestion; a repeated autumn time is its first
    occurrence (fold=0, still summer time).
    """
    naive = datetime.combine(day, clock)
    aware = naive.replace(tzinfo=tz, fold=0)
    as_utc = aware.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) != naive:
        suggestion = as_utc.astimezone(tz)
        raise ValidationFailed("wallclock.dst_gap", time=clock.strftime("%H:%M"),
                               date=numeric_date(day),
                               zone=str(tz), suggestion=suggestion.strftime("%H:%M"))
    return as_utc


def occurs_twice(moment: datetime, tz: tzinfo) -> bool:
    """Whether the local wall-clock time of the aware `moment` happens twice in `tz` (the
    hour the clocks go back in autumn: 31.10.2027 02:30 in Europe/Warsaw is first summer
    time, then an hour later winter time)."""
    local = moment.astimezone(tz).replace(tzinfo=None)
    first = local.replace(tzinfo=tz, fold=0).utcoffset()
    second = local.replace(tzinfo=tz, fold=1).utcoffset()
    return first != second and first is not None and second is not None and first > second


def repeated_times(start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """The ends of a span (aware) whose local time happens twice, in local time: the bot
    tells the user which occurrence it took (the first, `to_utc`) and how long that makes
    the event, instead of silently storing a length they did not expect."""
    return [moment.astimezone(tz) for moment in (start, end) if occurs_twice(moment, tz)]


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The first instant of `day` in `tz`, in UTC (where midnight is skipped, the first valid time)."""
    naive = datetime.combine(day, time(0))
    as_utc = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if as_utc.astimezone(tz).date() != day:  # midnight in a gap: start when the day does
        as_utc = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return as_utc


def all_day_span(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The days `first` to `last` (inclusive, as people say them) as UTC instants: from the
    first local midnight to the midnight after the last day, the exclusive end every all-day
    event, feed and query uses."""
    return local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)


def occurrence_to_utc(naive_local: datetime, tz: tzinfo) -> datetime:
    """A series' occurrence at this local wall-clock time, in UTC (the RFC 5545 rule above:
    a time in the spring gap moves forward by the gap, a repeated time is the first)."""
    return naive_local.replace(tzinfo=tz, fold=0).astimezone(UTC)
