"""The fields of an expert, cleaned: topics, districts, languages and the contact, each
checked by its own rule and refused with its field named, and the bar-separated keys the
search compares.

Apart from `experts` because the bot's form checks each answer with the same rules as it
is typed, before anything is added, and the search reads the same keys and language codes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.region import District, fold
from infranet.storage.models import Expert
from infranet.validation import clean_email, clean_phone, clean_text, plain_text

TOPIC_MAX, CONTACT_MAX = 60, 300
TOPICS_MAX, DISTRICTS_MAX, LANGUAGES_MAX = 10, 10, 8
QUERY_MAX = 100

_SEPARATORS = re.compile(r"[,;\n]+")
# Labels people write before a contact ("tel. 600 100 200", "e-mail: a@b.pl"): not part of it.
_CONTACT_LABELS = re.compile(r"(?<![\w@.])(tel(efon)?|phone|kom(órka)?|mobile|e-?mail|mail)\b\.?:?",
                             re.IGNORECASE)


def _items(value: Sequence[str] | str | None) -> list[str]:
    """A list given as one text ("a, b; c") or as items (each may hold commas too)."""
    if value is None:
        return []
    texts = [value] if isinstance(value, str) else list(value)
    return [part for text in texts for part in _SEPARATORS.split(text)]


def clean_topics(value: Sequence[str] | str | None) -> list[str]:
    """Topics as typed, one line each, told apart by their fold (so "RODO" and "rodo" are
    one), at most TOPICS_MAX of TOPIC_MAX characters."""
    found: dict[str, str] = {}
    for item in _items(value):
        topic = clean_text(item, "topics", TOPIC_MAX)
        if topic is None or not fold(topic):
            continue
        found.setdefault(fold(topic), " ".join(topic.split()))
    if not found:
        raise ValidationFailed("error.empty", field="topics")
    if len(found) > TOPICS_MAX:
        raise ValidationFailed("experts.too_many", field="topics", count=len(found), limit=TOPICS_MAX)
    return list(found.values())


def clean_districts(ctx: AppContext, value: Sequence[str] | str | None) -> list[District]:
    """Districts by name, slug, code or seat (UnknownDistrict, with close matches, for one
    not in the region); one inside another listed is dropped (the larger covers it)."""
    found: list[District] = []
    for item in _items(value):
        text = plain_text(item)
        if not text:
            continue
        if len(text) > QUERY_MAX:
            raise ValidationFailed("error.too_long", field="districts", length=len(text), limit=QUERY_MAX)
        district = ctx.region.find(text)
        if district not in found:
            found.append(district)
    if not found:
        raise ValidationFailed("error.empty", field="districts")
    kept = [d for d in found if not any(o is not d and o.contains(d) for o in found)]
    if len(kept) > DISTRICTS_MAX:
        raise ValidationFailed("experts.too_many", field="districts", count=len(kept),
                               limit=DISTRICTS_MAX)
    return kept


@cache
def _language_names() -> dict[str, str]:
    """Folded language names in Polish and English (and the codes) -> ISO 639 code."""
    from babel import Locale

    names: dict[str, str] = {}
    for lang in ("en", "pl"):
        for code, name in Locale(lang).languages.items():
            if "_" not in code:
                names.setdefault(code.lower(), code.lower())
                names.setdefault(fold(name), code.lower())
    return names


def language_code(text: str) -> str | None:
    """"pl", "PL", "polski", "Ukrainian", "ukraiński" -> an ISO 639 code, None if unknown."""
    key = fold(text).removeprefix("jezyk ").removesuffix(" language").strip()
    return _language_names().get(key)


def language_name(code: str, lang: str) -> str:
    """A code as the reader calls the language ("uk" -> "ukraiński" / "Ukrainian")."""
    from babel import Locale

    return str(Locale(lang).languages.get(code) or code)


def clean_languages(value: Sequence[str] | str | None) -> list[str]:
    codes: list[str] = []
    for item in _items(value):
        text = plain_text(item)
        if not text:
            continue
        code = language_code(text)
        if code is None:
            raise ValidationFailed("experts.bad_language", field="languages", value=text[:40])
        if code not in codes:
            codes.append(code)
    if not codes:
        raise ValidationFailed("error.empty", field="languages")
    if len(codes) > LANGUAGES_MAX:
        raise ValidationFailed("experts.too_many", field="languages", count=len(codes),
                               limit=LANGUAGES_MAX)
    return codes


def parse_contact(text: str) -> tuple[str | None, str | None]:
    """One answer with an e-mail address and/or a phone number, in any order
    ("jan@example.org, 600 100 200") -> (email, phone), each checked by the project's rule."""
    cleaned = clean_text(text, "contact", CONTACT_MAX, required=True) or ""
    emails = [w.strip(",;") for w in cleaned.split() if "@" in w]
    if len(emails) > 1:
        raise ValidationFailed("experts.one_email", field="email")
    rest = cleaned
    for address in emails:
        rest = rest.replace(address, " ")
    rest = _CONTACT_LABELS.sub(" ", rest)
    rest = " ".join(rest.replace(",", " ").replace(";", " ").split())
    email = clean_email(emails[0], "email") if emails else None
    phone = clean_phone(rest, "phone") if rest else None
    return email, phone


def clean_contact(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    """The expert's e-mail and phone, each checked by its one rule (blank: none); at least
    one of the two is required."""
    address = clean_email(email, "email") if email and email.strip() else None
    number = clean_phone(phone, "phone") if phone else None
    if address is None and number is None:
        raise ValidationFailed("experts.no_contact", field="contact")
    return address, number


def _keys(values: Sequence[str]) -> str:
    """Values between bars, so that a LIKE '%|x|%' matches one whole value."""
    return "|" + "|".join(values) + "|" if values else ""


def set_topics(row: Expert, topics: list[str]) -> None:
    """Set topics with their folded search key, which must always change together."""
    row.topics = topics
    row.topics_folded = _keys([fold(t) for t in topics])


def set_districts(row: Expert, districts: list[District]) -> None:
    """Set districts with their search key, which must always change together."""
    row.districts = [d.slug for d in districts]
    row.districts_key = _keys(row.districts)


def set_languages(row: Expert, codes: list[str]) -> None:
    """Set languages with their search key, which must always change together."""
    row.languages = codes
    row.languages_key = _keys(codes)
