"""Checks of free text that every component applies the same way.

Fields are named by a key (`title`, `need`, ...); `InfranetError.localized` shows
the field's name in the reader's language when `field.<key>` is registered here
or by a component.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from infranet.errors import ValidationFailed
from infranet.i18n import register

URL_MAX = 500
# A tag-like run of text; plain "<" or "a < b" stays allowed.
_HTML = re.compile(r"<\s*[a-zA-Z!/][^>]*>")

register({
    "error.empty": {"pl": "{field}: to pole jest wymagane.", "en": "{field}: this is required."},
    "error.too_long": {
        "pl": "{field}: {length} znaków, najwyżej {limit}. Skróć tekst.",
        "en": "{field}: {length} characters, at most {limit}. Please shorten it.",
    },
    "error.html": {
        "pl": "{field}: HTML nie jest dozwolony, napisz zwykły tekst.",
        "en": "{field}: HTML is not allowed; write plain text.",
    },
    "error.url": {
        "pl": "{field}: {value} to nie jest adres strony; musi zaczynać się od http:// lub https://.",
        "en": "{field}: {value} is not a web address; it must start with http:// or https://.",
    },
    "field.title": {"pl": "Tytuł", "en": "Title"},
    "field.description": {"pl": "Opis", "en": "Description"},
    "field.location": {"pl": "Miejsce", "en": "Place"},
    "field.url": {"pl": "Link", "en": "Link"},
    "field.registration_url": {"pl": "Link do zapisów", "en": "Registration link"},
    "field.uid": {"pl": "UID", "en": "UID"},
})


def clean_text(value: str | None, field: str, limit: int, *, required: bool = False,
               allow_html: bool = False) -> str | None:
    """Trimmed text within `limit` characters and, unless allowed, without HTML; None when
    empty and optional."""
    cleaned = (value or "").replace("\r\n", "\n").strip()
    if not cleaned:
        if required:
            raise ValidationFailed("error.empty", field=field)
        return None
    if len(cleaned) > limit:
        raise ValidationFailed("error.too_long", field=field, length=len(cleaned), limit=limit)
    if not allow_html and _HTML.search(cleaned):
        raise ValidationFailed("error.html", field=field)
    return cleaned


def clean_url(value: str | None, field: str, limit: int = URL_MAX) -> str | None:
    """An absolute http(s) address, or None when empty."""
    cleaned = clean_text(value, field, limit)
    if cleaned is None:
        return None
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in cleaned):
        raise ValidationFailed("error.url", field=field, value=repr(cleaned))
    return cleaned
