"""Messages in Polish (default) and English, and dates the way people write them.

Each component registers its own messages with `register()` at import time,
so the catalog stays next to the code that uses it.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from string import Formatter
from typing import Any

LANGUAGES = ("pl", "en")
DEFAULT_LANGUAGE = "pl"

_CATALOG: dict[str, dict[str, str]] = {}


def register(messages: dict[str, dict[str, str]]) -> None:
    for key, texts in messages.items():
        missing = set(LANGUAGES) - set(texts)
        if missing:
            raise ValueError(f"message {key!r} lacks {sorted(missing)}")
        _CATALOG[key] = texts


def normalise_language(code: str | None) -> str:
    """Telegram's language_code ("pl", "en-GB", None) to one we speak."""
    if not code:
        return DEFAULT_LANGUAGE
    base = code.split("-")[0].lower()
    return base if base in LANGUAGES else "en"


def known(key: str) -> bool:
    return key in _CATALOG


def t(lang: str | None, key: str, **params: Any) -> str:
    texts = _CATALOG.get(key)
    if texts is None:
        return key if not params else f"{key} {params}"
    template = texts.get(normalise_language(lang) if lang else DEFAULT_LANGUAGE) or texts["en"]
    fields = {name for _, name, _, _ in Formatter().parse(template) if name}
    return template.format(**{k: params.get(k, "") for k in fields})


register({
    "error.generic": {"pl": "Coś poszło nie tak: {detail}", "en": "Something went wrong: {detail}"},
    "error.invalid": {"pl": "{field}: {detail}", "en": "{field}: {detail}"},
    "error.forbidden": {"pl": "Brak uprawnień: {detail}", "en": "Not allowed: {detail}"},
    "error.not_found": {"pl": "Nie znaleziono: {detail}", "en": "Not found: {detail}"},
})

WEEKDAYS = {
    "pl": ["poniedziałek", "wtorek", "środa", "czwartek", "piątek", "sobota", "niedziela"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
# Polish dates use the genitive: "5 grudnia".
MONTHS_GENITIVE = {
    "pl": ["stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia",
           "września", "października", "listopada", "grudnia"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
}


def format_date(day: date, lang: str = DEFAULT_LANGUAGE, *, weekday: bool = True) -> str:
    """"piątek, 5 grudnia 2026" / "Friday, 5 December 2026"."""
    lang = normalise_language(lang)
    text = f"{day.day} {MONTHS_GENITIVE[lang][day.month - 1]} {day.year}"
    return f"{WEEKDAYS[lang][day.weekday()]}, {text}" if weekday else text


def format_time(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def format_span(
    start: datetime, end: datetime, tz: tzinfo, lang: str = DEFAULT_LANGUAGE, *,
    all_day: bool = False,
) -> str:
    """A human span in local time: one day with hours, or a range of days.

    For all-day events `end` is the exclusive end (midnight after the last day).
    """
    from datetime import timedelta

    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    if all_day:
        last = (local_end - timedelta(days=1)).date() if local_end > local_start else local_start.date()
        if last <= local_start.date():
            return format_date(local_start.date(), lang)
        return f"{format_date(local_start.date(), lang)} – {format_date(last, lang)}"
    if local_start.date() == local_end.date():
        return (f"{format_date(local_start.date(), lang)}, "
                f"{format_time(local_start)}–{format_time(local_end)}")
    return (f"{format_date(local_start.date(), lang)}, {format_time(local_start)} – "
            f"{format_date(local_end.date(), lang)}, {format_time(local_end)}")
