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
    # Refusals of the business rules, worded for whoever reads them (bot, web, CLI).
    "error.need_member": {
        "pl": "Brak uprawnień: mogą to zrobić tylko zatwierdzeni członkowie sieci. Dołącz przez /join.",
        "en": "Not allowed: only approved members of the network may do this. Join with /join."},
    "error.need_admin": {"pl": "Brak uprawnień: mogą to zrobić tylko administratorzy sieci.",
                         "en": "Not allowed: only the network's admins may do this."},
    "error.need_org": {"pl": "Brak uprawnień: dane organizacji mogą zmieniać tylko jej członkowie.",
                       "en": "Not allowed: only members of the organisation may change its data."},
    "error.not_found.event": {"pl": "Nie znaleziono wydarzenia nr {id} (mogło zostać usunięte).",
                              "en": "There is no event #{id} (it may have been removed)."},
    "error.not_found.training": {"pl": "Nie znaleziono ogłoszenia o szkoleniu nr {id}.",
                                 "en": "There is no training notice #{id}."},
    "error.not_found.organisation": {"pl": "Nie znaleziono organizacji nr {id}.",
                                     "en": "There is no organisation #{id}."},
    "error.not_found.organisation_named": {
        "pl": "Nie znaleziono organizacji „{name}”. Sprawdź nazwę albo podaj jej numer.",
        "en": "I found no organisation “{name}”. Check the name or give its number."},
    "error.not_found.member": {"pl": "Nie znaleziono członka nr {id}.", "en": "There is no member #{id}."},
    "error.not_found.member_ref": {
        "pl": "Nie znaleziono członka „{ref}”. Podaj numer z listy /members (np. #12) albo @nazwę.",
        "en": "I found no member “{ref}”. Give the number from /members (e.g. #12) or the @name."},
    "error.not_found.referral": {"pl": "Nie znaleziono skierowania nr {id}.",
                                 "en": "There is no referral #{id}."},
    "error.not_found.join_request": {"pl": "Nie znaleziono prośby o dołączenie nr {id}.",
                                     "en": "There is no request to join #{id}."},
    "error.telegram_id": {"pl": "{field}: to musi być dodatni identyfikator użytkownika Telegrama.",
                          "en": "{field}: must be a positive Telegram user id."},
    "error.one_of": {"pl": "{field}: „{value}” nie jest na liście; wybierz jedno z: {choices}.",
                     "en": "{field}: '{value}' is not one of {choices}."},
    "error.choose_from": {"pl": "{field}: nieznane {values}; wybierz spośród: {choices}.",
                          "en": "{field}: unknown {values}; choose from {choices}."},
    "error.email": {"pl": "{field}: {value} nie wygląda na adres e-mail, np. biuro@example.org.",
                    "en": "{field}: {value} does not look like an e-mail address, e.g. office@example.org."},
    "error.phone": {"pl": "{field}: {value} nie wygląda na numer telefonu, np. +48 89 123 45 67.",
                    "en": "{field}: {value} does not look like a phone number, e.g. +48 89 123 45 67."},
    "error.name_taken": {"pl": "{field}: organizacja „{value}” już jest w sieci.",
                         "en": "{field}: an organisation named '{value}' already exists."},
    "error.choose_org": {"pl": "{field}: wybierz organizację albo zaproponuj nową.",
                         "en": "{field}: choose an organisation or propose a new one."},
    "error.needs_time": {"pl": "{field}: podaj godzinę (albo zaznacz wydarzenie jako całodniowe).",
                         "en": "{field}: needs a time of day (or mark the event as all-day)."},
    "error.uid_taken": {"pl": "{field}: wydarzenie o UID {value} już istnieje.",
                        "en": "{field}: an event with UID '{value}' already exists."},
    "error.event_cancelled": {
        "pl": "Wydarzenie nr {id} jest odwołane i nie można go zmienić; dodaj nowe.",
        "en": "Event #{id} is cancelled and cannot be changed; add a new one."},
    "error.session_shape": {"pl": "{field}: termin potrzebuje dwóch dat albo dwóch godzin.",
                            "en": "{field}: a session needs two dates or two times."},
    "error.training_needs_org": {"pl": "{field}: ogłoszenie o szkoleniu musi mieć organizację.",
                                 "en": "{field}: a training notice needs an organisation."},
    "error.district_unknown": {"pl": "nieznany powiat/obszar {query} (poza regionem?)",
                               "en": "unknown district {query} (outside the region?)"},
    "error.district_hint": {"pl": "nieznany powiat/obszar {query}; czy chodzi o: {names}?",
                            "en": "unknown district {query}; did you mean: {names}?"},
    # Field names in messages (`InfranetError.localized`); components add their own.
    "field.category": {"pl": "Rodzaj", "en": "Kind"},
    "field.audiences": {"pl": "Dla kogo", "en": "Audience"},
    "field.organisation": {"pl": "Organizacja", "en": "Organisation"},
    "field.status": {"pl": "Stan", "en": "Status"},
    "field.sessions": {"pl": "Terminy", "en": "Sessions"},
    "field.language": {"pl": "Język", "en": "Language"},
    "field.type": {"pl": "Rodzaj organizacji", "en": "Type of organisation"},
    "field.services": {"pl": "Usługi", "en": "Services"},
    "field.phone": {"pl": "Telefon", "en": "Phone"},
    "field.contact_email": {"pl": "E-mail kontaktowy", "en": "Contact e-mail"},
    "field.email": {"pl": "E-mail", "en": "E-mail"},
    "field.client_kind": {"pl": "Rodzaj klienta", "en": "Kind of client"},
    "field.telegram_id": {"pl": "Identyfikator Telegrama", "en": "Telegram id"},
    "field.district": {"pl": "Powiat", "en": "District"},
    "field.start": {"pl": "Początek", "en": "Start"},
    "field.end": {"pl": "Koniec", "en": "End"},
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
