"""An event's time and its series rule in words, in the reader's language:
"sobota, 5 grudnia 2026, 10:00–14:00", "5–7 grudnia 2026", "co tydzień we wtorek do
30 czerwca 2027".

The calendar owns these because the site's event page, its list and any later reader
(newsletter, bot) must say the same thing the same way. Words come from the catalogs;
only what Polish grammar needs beyond them (which weekdays are feminine) is here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

from babel.dates import format_interval

from infranet.calendar import recurrence
from infranet.calendar.recurrence_rules import parse_parts
from infranet.errors import ValidationFailed
from infranet.i18n import format_date, format_span, normalise_language, t

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Polish: "w pierwszą środę", "w ostatnią sobotę", "w pierwszy wtorek".
_FEMININE = frozenset({"WE", "SA", "SU"})
_EVERY = {"DAILY": ("calendar.words.daily", "calendar.words.every_days"),
          "WEEKLY": ("calendar.words.weekly", "calendar.words.every_weeks"),
          "MONTHLY": ("calendar.words.monthly", "calendar.words.every_months"),
          "YEARLY": ("calendar.words.yearly", "calendar.words.every_years")}


def days_of(starts_at: datetime, ends_at: datetime, tz: tzinfo) -> tuple[date, date]:
    """First and last local day of an all-day event stored as the local midnights that bound
    it (the end is exclusive)."""
    days = recurrence.local_days(starts_at, ends_at, tz)
    return days[0], days[-1]


def _aware(value: datetime) -> datetime:
    """Stored times are naive UTC in the database (aware when read through the ORM)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def when_in_words(starts_at: datetime, ends_at: datetime, all_day: bool, tz: tzinfo,
                  lang: str) -> str:
    """One occurrence: a timed day with its hours, a timed span over days with both ends,
    an all-day day ("…, cały dzień") or a range of days ("5–7 grudnia 2026")."""
    start, end = _aware(starts_at), _aware(ends_at)
    if not all_day:
        return format_span(start, end, tz, lang)
    first, last = days_of(start, end, tz)
    if first == last:
        return f"{format_date(first, lang)}, {t(lang, 'calendar.words.all_day')}"
    return str(format_interval(first, last, "yMMMMd", locale=normalise_language(lang)))


def _join(lang: str, parts: list[str]) -> str:
    if len(parts) < 2:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} {t(lang, 'calendar.words.and')} {parts[-1]}"


def _weekday(lang: str, code: str) -> str:
    """`TU` -> "we wtorek"; `1TU` -> "w pierwszy wtorek miesiąca"; `-1SA` -> "w ostatnią sobotę
    miesiąca". A position beyond the catalog's ordinals gives the plain weekday."""
    day, nth = code[-2:], code[:-2].lstrip("+")
    if day not in WEEKDAYS:
        return code
    if not nth or nth not in ("1", "2", "3", "4", "5", "-1"):
        return t(lang, f"calendar.words.on.{day}")
    kind = "ordinal_f" if day in _FEMININE else "ordinal"
    return t(lang, "calendar.words.nth", ordinal=t(lang, f"calendar.words.{kind}.{nth}"),
             day=t(lang, f"calendar.words.day.{day}"))


def _until(value: str, tz: tzinfo) -> date | None:
    """UNTIL as the local day it ends on (a DATE, or a UTC date-time)."""
    try:
        if "T" in value:
            moment = datetime.strptime(value.rstrip("Z")[:15], "%Y%m%dT%H%M%S")
            return moment.replace(tzinfo=UTC).astimezone(tz).date()
        return datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return None


def rule_in_words(rule: str | None, tz: tzinfo, lang: str) -> str | None:
    """A stored series rule as a sentence ("co tydzień we wtorek do 30 czerwca 2027"), or
    None for a single event. Extra, cancelled and moved dates are left to the list of next
    dates, which shows each as it is."""
    head = recurrence.rule_part(rule)
    if not head:
        return None
    try:
        parts = parse_parts(head)
    except ValidationFailed:  # a stored rule is canonical; an odd one is simply not put in words
        return None
    freq = parts.get("FREQ", "")
    if freq not in _EVERY:
        return None
    try:
        interval = int(parts.get("INTERVAL", "1"))
    except ValueError:
        interval = 1
    once, many = _EVERY[freq]
    words = [t(lang, once) if interval <= 1 else t(lang, many, count=interval)]
    if parts.get("BYDAY"):
        words.append(_join(lang, [_weekday(lang, code) for code in parts["BYDAY"].split(",")]))
    elif parts.get("BYMONTHDAY") and freq == "MONTHLY":
        words.append(t(lang, "calendar.words.month_day", day=parts["BYMONTHDAY"]))
    if parts.get("UNTIL"):
        last = _until(parts["UNTIL"], tz)
        if last is not None:
            words.append(t(lang, "calendar.words.until", date=format_date(last, lang, weekday=False)))
    elif parts.get("COUNT", "").isdigit():
        words.append(t(lang, "calendar.words.times", count=int(parts["COUNT"])))
    return " ".join(words)


def next_occurrences(rule: str | None, starts_at: datetime, ends_at: datetime, all_day: bool,
                     tz: tzinfo, now: datetime, limit: int = 5) -> list[recurrence.Span]:
    """The series' next `limit` occurrences that have not ended by `now` (cached expansion)."""
    spans = recurrence.expand(rule, _aware(starts_at), _aware(ends_at), all_day, tz)
    current = _aware(now)
    upcoming = [span for span in spans if span.end > current]
    return upcoming[:limit]


def all_day_dates(starts_at: datetime, ends_at: datetime, tz: tzinfo) -> tuple[date, date]:
    """(first day, the day after the last): what calendars take as an all-day range."""
    first, last = days_of(_aware(starts_at), _aware(ends_at), tz)
    return first, last + timedelta(days=1)
