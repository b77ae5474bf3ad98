"""Days to avoid for an event: public holidays and bridge days (a working day between a
holiday and a weekend or another holiday), named in the country's language and in English.

The conflict check reports them with its conflicts (`infranet.calendar.conflicts`), free-date
suggestions skip them (`free_dates`), and the bot marks them in its day listings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays

from infranet.context import AppContext


@dataclass(frozen=True)
class DayWarning:
    kind: str  # "holiday" | "bridge"
    day: date
    name: str  # the holiday's name in the country's language (bridge day: the holiday next to it)
    name_en: str = ""

    def message(self, lang: str = "pl") -> str:
        from infranet.i18n import format_date, t

        name = self.name_en if lang == "en" and self.name_en else self.name
        return t(lang, f"calendar.warning.{self.kind}", day=format_date(self.day, lang), name=name)


@lru_cache(maxsize=128)
def _holidays(country: str, year: int, english: bool = False) -> dict[date, str]:
    """The country's public holidays, named in its own language (or in English)."""
    try:
        cls = holidays.country_holidays(country, years=year).__class__
        languages = getattr(cls, "supported_languages", ()) or ()
        language = getattr(cls, "default_language", None)
        if english:
            language = "en_US" if "en_US" in languages else ("en" if "en" in languages else language)
        found = holidays.country_holidays(country, years=year, language=language)
    except NotImplementedError:
        return {}
    return dict(found.items())


def holiday_name(ctx: AppContext, day: date, *, english: bool = False) -> str | None:
    return _holidays(ctx.settings.region.country, day.year, english).get(day)


def day_warning(ctx: AppContext, day: date) -> DayWarning | None:
    """A public holiday, or a working day between a holiday and a weekend (or another holiday)."""
    name = holiday_name(ctx, day)
    if name:
        return DayWarning("holiday", day, name, holiday_name(ctx, day, english=True) or name)
    if day.weekday() >= 5:
        return None

    def off(d: date) -> bool:
        return d.weekday() >= 5 or holiday_name(ctx, d) is not None

    before, after = day - timedelta(days=1), day + timedelta(days=1)
    for holiday_side, other_side in ((before, after), (after, before)):
        name = holiday_name(ctx, holiday_side)
        if name and off(other_side):
            return DayWarning("bridge", day, name,
                              holiday_name(ctx, holiday_side, english=True) or name)
    return None
