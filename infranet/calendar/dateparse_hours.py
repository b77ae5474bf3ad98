"""Hours typed into the chat: `10:00-14:00`, `10-14`, `od 10 do 14`, `10am-2pm`, `cały dzień`.

Pure, like `infranet.calendar.dateparse` (the days), whose normalisation it shares; a
time in the autumn's repeated hour gets a note for the user (`repeated_note`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from infranet.calendar.dateparse import ALL_DAY_WORDS, check_length, flat
from infranet.calendar.wallclock import repeated_times
from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date, t

TIME_TOKEN = r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?"  # noqa: S105 (a pattern)
_TIME_RANGE = re.compile(
    rf"^(?:od|from|godz|godzina|godziny|w godz|w godzinach|h)?\s*{TIME_TOKEN}\s*"
    rf"(?:-|do|to|until|till)\s*{TIME_TOKEN}$"
)
_SINGLE_TIME = re.compile(rf"^(?:od|from|o|at|godz|h)?\s*{TIME_TOKEN}$")


# --- hours -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hours:
    """A time range within a day, or the whole day (`start is None`).

    `end` may be `time(0)` with `ends_next_day` for "until 24:00".
    """

    start: time | None = None
    end: time | None = None
    ends_next_day: bool = False

    @property
    def all_day(self) -> bool:
        return self.start is None

    def label(self) -> str:
        if self.start is None or self.end is None:
            return ""
        end = "24:00" if self.ends_next_day else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}–{end}"


ALL_DAY = Hours()


def _clock(hour_text: str, minute_text: str | None, suffix: str | None, raw: str) -> tuple[int, int]:
    hour, minute = int(hour_text), int(minute_text or 0)
    if suffix:
        if not 1 <= hour <= 12:
            raise ValidationFailed("dateparse.bad_time", value=f"{hour}{suffix}")
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        raise ValidationFailed("dateparse.bad_time", value=f"{hour}:{minute:02d}")
    return hour, minute


def parse_hours(text: str) -> Hours:
    """`10:00-14:00`, `10-14`, `10.00–14.00`, `od 10 do 14`, `10am-2pm`, `cały dzień`."""
    check_length(text)
    norm = flat(text)
    raw = text.strip()
    if not norm:
        raise ValidationFailed("dateparse.unreadable_time", value=raw)
    if norm in ALL_DAY_WORDS:
        return ALL_DAY
    found = _TIME_RANGE.match(norm)
    if found is None:
        single = _SINGLE_TIME.match(norm)
        if single:
            hour, minute = _clock(single.group(1), single.group(2), single.group(3), raw)
            end = min(hour + 2, 23) if hour < 23 else 23
            raise ValidationFailed("dateparse.no_end_time", start=f"{hour}:{minute:02d}",
                                   end=f"{end}:{59 if hour >= 22 else minute:02d}")
        raise ValidationFailed("dateparse.unreadable_time", value=raw)
    h1, m1, s1, h2, m2, s2 = found.groups()
    _clock(h1, m1, s1, raw)  # report a wrong start before a wrong end
    end_hour, end_minute = _clock(h2, m2, s2, raw)
    if s1 is None and s2 is not None:
        # "1-3pm" is 13-15, "10-2pm" is 10-14: the start takes the end's half of the day if it fits.
        shifted = _clock(h1, m1, s2, raw) if 1 <= int(h1) <= 12 else None
        start_hour, start_minute = (
            shifted if shifted and shifted < (end_hour, end_minute) else _clock(h1, m1, None, raw)
        )
    else:
        start_hour, start_minute = _clock(h1, m1, s1, raw)
    if start_hour == 24:
        raise ValidationFailed("dateparse.bad_time", value="24:00")
    if (end_hour, end_minute) <= (start_hour, start_minute):
        raise ValidationFailed("dateparse.end_before_start", start=f"{start_hour}:{start_minute:02d}",
                               end=f"{end_hour}:{end_minute:02d}")
    if end_hour == 24:
        return Hours(time(start_hour, start_minute), time(0), ends_next_day=True)
    return Hours(time(start_hour, start_minute), time(end_hour, end_minute))


def repeated_note(start: datetime, end: datetime, tz: tzinfo, lang: str) -> str | None:
    """The note for a span with an end in the autumn's repeated hour (`repeated_times`), or None."""
    repeated = repeated_times(start, end, tz)
    if not repeated:
        return None
    first = repeated[0]
    offset = first.utcoffset() or timedelta(0)
    minutes = int((end - start).total_seconds() // 60)
    hours_part = f"{minutes // 60} h {minutes % 60:02d} min"
    return t(lang, "dateparse.repeated_hour", date=numeric_date(first.date()),
             time=" / ".join(dict.fromkeys(m.strftime("%H:%M") for m in repeated)),
             offset=f"+{int(offset.total_seconds() // 3600)}", duration=hours_part)
