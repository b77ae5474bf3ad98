"""Days typed into the chat, in Polish or English, relative to "today": one day or a range.

The bot asks people for dates the way they would write them to a colleague:
`5.12.2026`, `5.12`, `2026-12-05`, `5 grudnia`, `5 XII`, `jutro`, `w piątek`,
`Dec 5`, `tomorrow`; hours as `10:00-14:00`, `10-14`, `od 10 do 14` or
`cały dzień`; date ranges as `5-7.12.2026` or `5.12-7.12`; and for trainings a
list of sessions such as `5.12, 12.12, 19.12 10:00-14:00`.

This module holds the words and patterns people use for days, one day (`parse_date`)
and ranges of days (`parse_days`, built from the one-day pieces); hours are read by
`dateparse_hours`, and a date with hours or a list of training sessions by `dateparse_when`.

Everything here is pure (no database, no clock): the caller passes the local
`today` (see `local_today`) and the region's zone. Every refusal is a
`ValidationFailed` with a message key of its own that names the problem and
shows an accepted example, in Polish and English.

Rules worth knowing:
- A date without a year is the next such date; one that passed less than
  `RECENT_PAST_DAYS` ago is reported as past (most likely a typo), older ones
  mean next year (in December, `10.01` is January next year).
- A weekday (`piątek`, `pt`, `friday`) is the next such day after today, 1 to 7
  days ahead. `przyszły piątek` / `next friday` is refused as ambiguous, with
  both candidate dates shown.
- `05/12/2026` is day-first in Polish; in English it is refused as ambiguous
  when both numbers could be the month. Dots and ISO dates are never ambiguous.
- Local wall-clock times become aware UTC with zoneinfo. A time inside the
  spring-forward gap is refused with a suggestion; a time in the autumn fold
  (which happens twice) is the first occurrence (`fold=0`), and `repeated_times`
  finds such times so that the user is told (`dateparse.repeated_hour`).
"""

from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date, weekday_name

MAX_INPUT = 300
RECENT_PAST_DAYS = 31



# --- vocabulary (folded: lower case, no diacritics) -----------------------------------

_MONTH_WORDS: dict[str, int] = {}
for _number, _names in enumerate([
    ("stycznia", "styczen", "sty", "january", "jan", "i"),
    ("lutego", "luty", "lut", "february", "feb", "ii"),
    ("marca", "marzec", "mar", "march", "iii"),
    ("kwietnia", "kwiecien", "kwi", "april", "apr", "iv"),
    ("maja", "maj", "may", "v"),
    ("czerwca", "czerwiec", "cze", "june", "jun", "vi"),
    ("lipca", "lipiec", "lip", "july", "jul", "vii"),
    ("sierpnia", "sierpien", "sie", "august", "aug", "viii"),
    ("wrzesnia", "wrzesien", "wrz", "september", "sep", "sept", "ix"),
    ("pazdziernika", "pazdziernik", "paz", "october", "oct", "x"),
    ("listopada", "listopad", "lis", "november", "nov", "xi"),
    ("grudnia", "grudzien", "gru", "december", "dec", "xii"),
], start=1):
    for _name in _names:
        _MONTH_WORDS[_name] = _number

_WEEKDAY_WORDS: dict[str, int] = {}
for _number, _names in enumerate([
    ("poniedzialek", "pon", "pn", "monday", "mon"),
    ("wtorek", "wt", "wto", "tuesday", "tue", "tues"),
    ("sroda", "srode", "sr", "sro", "wednesday", "wed"),
    ("czwartek", "czw", "thursday", "thu", "thur", "thurs"),
    ("piatek", "pt", "pia", "friday", "fri"),
    ("sobota", "sobote", "sob", "saturday", "sat"),
    ("niedziela", "niedziele", "niedz", "ndz", "nd", "sunday", "sun"),
]):
    for _name in _names:
        _WEEKDAY_WORDS[_name] = _number

_RELATIVE = {
    "dzis": 0, "dzisiaj": 0, "today": 0,
    "jutro": 1, "tomorrow": 1,
    "pojutrze": 2, "day after tomorrow": 2, "the day after tomorrow": 2,
}
_NEXT_WORDS = ("przyszly", "przyszla", "przyszla", "przyszle", "nastepny", "nastepna", "next")
_THIS_WORDS = ("ten", "ta", "to", "this", "najblizszy", "najblizsza", "najblizsze", "on", "w", "we")
ALL_DAY_WORDS = {"caly dzien", "calodniowe", "calodniowy", "all day", "allday", "whole day",
                 "full day", "calodzienne"}

_EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"]

_NUMERIC = re.compile(r"^(\d{1,2})[./](\d{1,2})(?:[./](\d{4}|\d{2}))?\.?$")
_SLASH = re.compile(r"^(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?$")
_DAY_MONTH_WORD = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)? (?:of )?([a-z]+) ?(\d{4})?$")
_MONTH_WORD_DAY = re.compile(r"^([a-z]+) (\d{1,2})(?:st|nd|rd|th)?(?: (\d{4}))?$")
_BARE_DAY = re.compile(r"^(\d{1,2})\.?$")
_IN_DAYS = re.compile(r"^(?:za|in) (\d{1,3}) (?:dni|dzien|days?)$")
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")


def normalise(text: str) -> str:
    """Lower case without diacritics, one kind of dash, single spaces; keeps digits and dots.

    ISO dates are rewritten day-first so that a dash means a range from here on.
    """
    text = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    text = text.replace("all-day", "all day").replace("a.m.", "am").replace("p.m.", "pm")
    text = _ISO.sub(r"\3.\2.\1", text)
    text = re.sub(r"(\d{4})\s*r\b\.?", r"\1", text)  # "5.12.2026 r."
    text = re.sub(r"(?<=[a-z])\.", " ", text)  # "5 gru. 2026", "pt."
    text = re.sub(r"[()]", " ", text)
    return " ".join(text.split())


def flat(text: str) -> str:
    """Normalised, with commas as spaces (for one date or one range)."""
    return " ".join(normalise(text).replace(",", " ").replace(";", " ").split())


def check_length(text: str) -> None:
    if len(text) > MAX_INPUT:
        raise ValidationFailed("dateparse.too_long", length=len(text), limit=MAX_INPUT)


def local_today(now: datetime, tz: tzinfo) -> date:
    """The calendar day in the region at the aware instant `now`."""
    return now.astimezone(tz).date()


# --- one day -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Partial:
    """A day as written, before the year (or the month) is known."""

    day: int
    month: int | None
    year: int | None


def _year(text: str | None) -> int | None:
    if text is None:
        return None
    value = int(text)
    return 2000 + value if len(text) == 2 else value


def _make_date(year: int, month: int, day: int, raw: str) -> date:
    if not 1 <= month <= 12:
        raise ValidationFailed("dateparse.bad_month", month=month, value=raw)
    days = monthrange(year, month)[1]
    if not 1 <= day <= days:
        example = date(year, month, min(max(day, 1), days))
        raise ValidationFailed("dateparse.no_such_day", value=f"{day}.{month}.{year}", days=days,
                               example=numeric_date(example))
    return date(year, month, day)


def _partial(text: str, raw: str, lang: str) -> _Partial | None:
    """A written day with day and maybe month and year, or None when it is not one."""
    found = _SLASH.match(text)
    if found and lang == "en":
        first, second = int(found.group(1)), int(found.group(2))
        if first != second and first <= 12 and second <= 12:
            raise ValidationFailed(
                "dateparse.ambiguous", value=raw,
                options=f"{first} {_EN_MONTHS[second - 1]} / {second} {_EN_MONTHS[first - 1]}",
                example=f"{first} {_EN_MONTHS[second - 1][:3]}",
            )
    found = _NUMERIC.match(text)
    if found:
        return _Partial(int(found.group(1)), int(found.group(2)), _year(found.group(3)))
    found = _DAY_MONTH_WORD.match(text)
    if found and found.group(2) in _MONTH_WORDS:
        return _Partial(int(found.group(1)), _MONTH_WORDS[found.group(2)], _year(found.group(3)))
    found = _MONTH_WORD_DAY.match(text)
    if found and found.group(1) in _MONTH_WORDS:
        return _Partial(int(found.group(2)), _MONTH_WORDS[found.group(1)], _year(found.group(3)))
    return None


def _resolve(part: _Partial, today: date, raw: str, *, allow_past: bool) -> date:
    """Fill in the year of a written day: the next such day from today."""
    assert part.month is not None
    if part.year is not None:
        return _make_date(part.year, part.month, part.day, raw)
    year = today.year
    if part.month == 2 and part.day == 29:
        # The next 29 February, even if that is a few years ahead.
        while monthrange(year, 2)[1] != 29 or (today - date(year, 2, 29)).days > RECENT_PAST_DAYS:
            year += 1
    if 1 <= part.month <= 12:
        probe = date(year, part.month, max(1, min(part.day, monthrange(year, part.month)[1])))
        if (today - probe).days > RECENT_PAST_DAYS and not (part.month == 2 and part.day == 29):
            # Long past this year: the user means next year ("10.01" written in December).
            year += 1
    return _make_date(year, part.month, part.day, raw)


def _relative(text: str, today: date, raw: str) -> date | None:
    if text in _RELATIVE:
        return today + timedelta(days=_RELATIVE[text])
    found = _IN_DAYS.match(text)
    if found:
        return today + timedelta(days=int(found.group(1)))
    if text in ("za tydzien", "in a week"):
        return today + timedelta(days=7)
    words = text.split()
    if not words or words[-1] not in _WEEKDAY_WORDS:
        return None
    head = " ".join(words[:-1])
    weekday = _WEEKDAY_WORDS[words[-1]]
    ahead = (weekday - today.weekday() - 1) % 7 + 1  # 1..7: strictly after today
    nearest = today + timedelta(days=ahead)
    if head in ("", *_THIS_WORDS) or (len(words) == 3 and words[0] in ("w", "we", "on")
                                      and words[1] in _THIS_WORDS):
        return nearest
    if any(word in _NEXT_WORDS for word in words[:-1]) and all(
        word in (*_NEXT_WORDS, "w", "we", "on") for word in words[:-1]
    ):
        later = nearest + timedelta(days=7)
        raise ValidationFailed("dateparse.ambiguous", value=raw,
                               options=f"{numeric_date(nearest)} / {numeric_date(later)}",
                               example=numeric_date(later))
    return None


def _strip_weekday(text: str) -> tuple[str, int | None]:
    """`pt 5.12` or `5.12 piątek`: the date and the weekday written beside it."""
    words = text.split()
    if len(words) >= 2 and words[0] in _WEEKDAY_WORDS and any(ch.isdigit() for ch in words[1]):
        return " ".join(words[1:]), _WEEKDAY_WORDS[words[0]]
    if len(words) >= 2 and words[-1] in _WEEKDAY_WORDS and any(ch.isdigit() for ch in text):
        return " ".join(words[:-1]), _WEEKDAY_WORDS[words[-1]]
    return text, None


def _check_past(day: date, today: date, raw: str, allow_past: bool) -> date:
    if not allow_past and day < today:
        raise ValidationFailed("dateparse.past", value=numeric_date(day), today=numeric_date(today),
                               example=numeric_date(today + timedelta(days=1)))
    return day


def _parse_one(text: str, today: date, raw: str, lang: str, allow_past: bool) -> date:
    """One normalised day (no range, no hours)."""
    relative = _relative(text, today, raw)
    if relative is not None:
        return relative
    body, weekday = _strip_weekday(text)
    part = _partial(body, raw, lang)
    if part is None:
        found = _NUMERIC.match(body.replace(" ", ""))
        if found is None:
            raise ValidationFailed("dateparse.unreadable_date", value=raw)
        part = _Partial(int(found.group(1)), int(found.group(2)), _year(found.group(3)))
    day = _resolve(part, today, raw, allow_past=allow_past)
    if weekday is not None and day.weekday() != weekday:
        raise ValidationFailed("dateparse.weekday_mismatch", value=numeric_date(day),
                               actual=weekday_name(day.weekday(), lang),
                               given=weekday_name(weekday, lang))
    return day


def parse_date(text: str, today: date, *, lang: str = "pl", allow_past: bool = False) -> date:
    """One day: `5.12.2026`, `5.12`, `2026-12-05`, `5 grudnia`, `jutro`, `piątek`, `Dec 5`."""
    check_length(text)
    norm = flat(text)
    if not norm:
        raise ValidationFailed("dateparse.empty")
    day = _parse_one(norm, today, text.strip(), lang, allow_past)
    return _check_past(day, today, text, allow_past)


# --- ranges of days --------------------------------------------------------------------

_RANGE_SPLIT = re.compile(r"^(?:od |from )?(?P<left>.+?)\s*(?:-| do | to | until | till )\s*(?P<right>.+)$")


def parse_days(
    text: str, today: date, *, lang: str = "pl", allow_past: bool = False,
) -> tuple[date, date]:
    """A single day or a range of days: `5.12`, `5-7.12.2026`, `5.12-7.12`, `od 5 do 7 grudnia`.

    The left end may leave out what the right end says (`5-7 grudnia`: the
    month; `30.12-2.01`: the year, which then is the year before).
    """
    check_length(text)
    norm = flat(text)
    if not norm:
        raise ValidationFailed("dateparse.empty")
    raw = text.strip()
    found = _RANGE_SPLIT.match(norm)
    if found is None or norm in _RELATIVE:
        day = _parse_one(norm, today, raw, lang, allow_past)
        _check_past(day, today, raw, allow_past)
        return day, day
    left, right = found.group("left"), found.group("right")
    if "-" in right or " do " in f" {right} ":
        raise ValidationFailed("dateparse.unreadable_date", value=raw)
    bare_right = _BARE_DAY.match(right)
    if bare_right and not _BARE_DAY.match(left):
        # "Dec 5-7", "5.12-7": the right end is a day of the left end's month.
        first = _parse_one(left, today, raw, lang, allow_past=True)
        last = _make_date(first.year, first.month, int(bare_right.group(1)), raw)
    else:
        last = _parse_one(right, today, raw, lang, allow_past=True)
        first = _left_end(left, last, today, raw, lang)
        if last < first and right.split()[-1] in _WEEKDAY_WORDS:
            last += timedelta(days=7)  # "pt-pon": the Monday after that Friday
    if last < first:
        raise ValidationFailed("dateparse.range_reversed", start=numeric_date(first), end=numeric_date(last))
    _check_past(first, today, raw, allow_past)
    return first, last


def _left_end(left: str, last: date, today: date, raw: str, lang: str) -> date:
    bare = _BARE_DAY.match(left)
    if bare:
        day = int(bare.group(1))
        year, month = last.year, last.month
        if day > last.day:  # 30-2.12: from the previous month
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return _make_date(year, month, day, raw)
    relative = _relative(left, today, raw)
    if relative is not None:
        return relative
    body, _ = _strip_weekday(left)
    part = _partial(body, raw, lang)
    if part is None:
        raise ValidationFailed("dateparse.unreadable_date", value=raw)
    if part.year is not None:
        return _make_date(part.year, part.month or last.month, part.day, raw)
    assert part.month is not None
    first = _make_date(last.year, part.month, part.day, raw)
    if first > last:  # 30.12-2.01.2027: the year before
        first = _make_date(last.year - 1, part.month, part.day, raw)
    return first
