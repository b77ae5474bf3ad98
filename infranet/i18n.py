"""Messages in Polish (default) and English, and dates the way people write them.

Every text a person reads comes from the gettext catalogs under `infranet/locale/`:
`infranet.pot` lists the messages, `pl/LC_MESSAGES/infranet.po` and
`en/LC_MESSAGES/infranet.po` hold their translations, which a translator can edit with
any PO editor (Poedit, Lokalize, Weblate). Code names a message by its id ("error.empty",
"bot.events.saved") and passes its parameters by name; the text belongs to the catalog.

- A message that counts something has plural forms (Polish has three: "1 znak", "2 znaki",
  "5 znaków"); the catalog marks which parameter chooses the form with a translator
  comment `plural: NAME`.
- The catalogs are compiled in memory when the process first needs a message (about
  a tenth of a second), so an edited .po takes effect at the next start.
- `tests/test_catalogs.py` fails on a message used in code but missing from a catalog, on a
  message no code uses, and on a translation whose parameters differ from the template's.
  Under the tests (`strict(True)`), a message rendered without one of its parameters raises
  instead of showing an empty gap; in service it logs once and shows the gap.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from gettext import GNUTranslations
from importlib import resources
from string import Formatter
from typing import Any

from babel.dates import format_date as babel_format_date
from babel.dates import get_day_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

LANGUAGES = ("pl", "en")
DEFAULT_LANGUAGE = "pl"
DOMAIN = "infranet"
PLURAL_NOTE = "plural: "


@dataclass(frozen=True)
class Catalog:
    """One language's messages: gettext's lookup (with the language's plural rule) and,
    per plural message, the parameter that chooses its form."""

    translations: GNUTranslations
    plural_param: dict[str, str]
    ids: frozenset[str]


_catalogs: dict[str, Catalog] = {}
_loading = threading.Lock()
_strict = False
_warned: set[tuple[str, str]] = set()


def strict(on: bool) -> None:
    """Raise on a message rendered without one of its parameters (the tests turn this on)."""
    global _strict
    _strict = on


def po_path(lang: str) -> Any:
    return resources.files("infranet") / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _load(lang: str) -> Catalog:
    with po_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    plural_param = {}
    for message in catalog:
        if isinstance(message.id, tuple):
            note = next((c for c in message.auto_comments if c.startswith(PLURAL_NOTE)), None)
            if note is None:
                raise ValueError(f"{lang}: plural message {message.id[0]!r} names no parameter "
                                 f"(a translator comment '#. {PLURAL_NOTE}NAME')")
            plural_param[message.id[0]] = note.removeprefix(PLURAL_NOTE).strip()
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    ids = frozenset(str(m.id[0] if isinstance(m.id, (tuple, list)) else m.id) for m in catalog if m.id)
    return Catalog(GNUTranslations(buffer), plural_param, ids)


def catalog(lang: str) -> Catalog:
    found = _catalogs.get(lang)
    if found is None:
        with _loading:
            found = _catalogs.get(lang) or _load(lang)
            _catalogs[lang] = found
    return found


def normalise_language(code: str | None) -> str:
    """Telegram's language_code ("pl", "en-GB", None) to one we speak."""
    if not code:
        return DEFAULT_LANGUAGE
    base = code.split("-")[0].lower()
    return base if base in LANGUAGES else "en"


def known(key: str) -> bool:
    return key in catalog(DEFAULT_LANGUAGE).ids


def t(lang: str | None, key: str, **params: Any) -> str:
    """The message `key` in `lang` with its parameters filled in."""
    code = normalise_language(lang) if lang else DEFAULT_LANGUAGE
    messages = catalog(code)
    if key not in messages.ids:
        if _strict:
            raise KeyError(f"no message {key!r} in the catalogs")
        return key if not params else f"{key} {params}"
    plural = messages.plural_param.get(key)
    if plural is None:
        template = messages.translations.gettext(key)
    else:
        template = messages.translations.ngettext(key, key, _count(params.get(plural)))
    return _fill(code, key, template, params)


def _count(value: Any) -> int:
    try:
        return abs(int(value))
    except (TypeError, ValueError):
        return 0


@lru_cache(maxsize=2048)
def _fields(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in Formatter().parse(template) if name)


def _fill(lang: str, key: str, template: str, params: dict[str, Any]) -> str:
    fields = _fields(template)
    missing = fields - params.keys()
    if missing:
        if _strict:
            raise KeyError(f"message {key!r} ({lang}) needs {sorted(missing)}")
        if (key, lang) not in _warned:
            _warned.add((key, lang))
            log.warning("message %s (%s) rendered without %s", key, lang, ", ".join(sorted(missing)))
    return template.format(**{k: params.get(k, "") for k in fields})



@lru_cache(maxsize=4096)
def format_date(day: date, lang: str = DEFAULT_LANGUAGE, *, weekday: bool = True) -> str:
    """"piątek, 5 grudnia 2026" / "Friday, 5 December 2026": names from the Unicode CLDR
    through Babel (Polish months in the genitive, as a date needs). Cached: listings and
    every copy of a newsletter show the same few days again and again."""
    return babel_format_date(day, "EEEE, d MMMM y" if weekday else "d MMMM y",
                             locale=normalise_language(lang))


def numeric_date(day: date) -> str:
    """A date as people write it in messages, in either language: 5.12.2099 (never ISO)."""
    return f"{day.day}.{day.month}.{day.year}"


def weekday_name(weekday: int, lang: str = DEFAULT_LANGUAGE) -> str:
    """Monday is 0, as `date.weekday()` counts."""
    return str(get_day_names("wide", locale=normalise_language(lang))[weekday])


def format_amount(value: float | str, lang: str = DEFAULT_LANGUAGE, *, decimals: int = 2) -> str:
    """A number as the reader writes it: "1 250,50" in Polish (a no-break space groups
    thousands, a comma before the decimals), "1,250.50" in English. The currency is the
    message's business ("{cost} zł" / "PLN {cost}")."""
    text = f"{float(value):,.{decimals}f}"  # "1,250.50"
    if normalise_language(lang) == "pl":
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


def format_time(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def format_span(
    start: datetime, end: datetime, tz: tzinfo, lang: str = DEFAULT_LANGUAGE, *,
    all_day: bool = False,
) -> str:
    """A human span in local time: one day with hours, or a range of days.

    For all-day events `end` is the exclusive end (midnight after the last day).
    """

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
