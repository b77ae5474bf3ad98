"""Checks of free text that every component applies the same way.

Fields are named by a key (`title`, `need`, ...); `InfranetError.localized` shows
the field's name in the reader's language when `field.<key>` is registered here
or by a component.

Plain text, one rule for every stored field (`plain_text`), whoever typed it (bot,
CLI, web form) or whichever calendar it came from (ICS import):

- Any line break (CR LF, CR, LF, vertical tab, form feed, NEL, U+2028, U+2029) becomes
  "\\n" where the field keeps lines (descriptions, needs) and, with the spaces around
  it, one space where it must stay one line (titles, names, places, contacts, UIDs).
  Tabs become spaces.
- Every other control character (C0, DEL, C1 — NUL included), the bidirectional
  overrides and isolates (U+202A–U+202E, U+2066–U+2069), the byte-order mark (U+FEFF)
  and lone surrogates (halves of a character that cannot be shown) are removed.

Removed rather than refused, because none of them is visible: the person saw their text
without them, so storing the rest is storing what they saw, and a refusal would ask
them to delete something they cannot see (and make an all-or-nothing import of someone
else's calendar fail for one stray byte). A text that was nothing but such characters
is empty and refused as such ("required"). Removal happens before the length check,
so limits count what is shown.

`<`, `>` and `&` are ordinary characters: "a < b & c > d" or a title with `<b>` in it
is stored as typed, and every output escapes it (Telegram HTML, web pages and HTML
e-mail through autoescaping, ICS by icalendar). `for_terminal` shows stored text on an
admin's terminal with anything that could drive the terminal made visible.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from infranet.errors import ValidationFailed

URL_MAX = 500

# Line breaks in every form `str.splitlines` knows except the information separators
# (\x1c-\x1e), which nobody types as a line break and are removed with the controls.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x85\u2028\u2029]")
# Invisible characters that have no place in stored text (see the module docstring).
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"
                        "\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
_BREAK_WITH_SPACES = re.compile(r"[ \t]*\n[ \t\n]*")
# For a terminal: everything above, plus what `_INVISIBLE` leaves for `plain_text` to turn
# into line breaks or spaces (text stored before this rule existed may hold any of it).
_UNSAFE_FOR_TERMINAL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029"
                                  "\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")



def plain_text(value: str, *, multiline: bool = False) -> str:
    """`value` by the plain-text rule (module docstring), stripped at both ends."""
    text = _LINE_BREAK.sub("\n", value)
    text = _INVISIBLE.sub("", text).replace("\t", " ")
    if multiline:
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    else:
        text = _BREAK_WITH_SPACES.sub(" ", text)
    return text.strip()


# Characters that are letters or symbols to Unicode but show as blank space: Hangul fillers
# and the blank Braille pattern, favourites for names that look empty.
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_NOT_SHOWN = frozenset(("Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"))


def shows_anything(text: str) -> bool:
    """Whether `text` has a character that shows on screen: a text of zero-width spaces,
    word joiners, lone combining marks or blank glyphs looks empty to everyone, and is
    empty for "required". (They are not removed from text that has something else: a
    zero-width joiner builds emoji, a non-joiner Persian words.)"""
    return any(ch not in _BLANK_GLYPHS and unicodedata.category(ch) not in _NOT_SHOWN
               for ch in text)


def clean_text(value: str | None, field: str, limit: int, *, required: bool = False,
               multiline: bool = False) -> str | None:
    """Plain text (`plain_text`) within `limit` characters; None when empty and optional.
    Only a field that keeps lines (`multiline`) keeps its line breaks."""
    cleaned = plain_text(value or "", multiline=multiline)
    if not shows_anything(cleaned):
        if required:
            raise ValidationFailed("error.empty", field=field)
        return None
    if len(cleaned) > limit:
        raise ValidationFailed("error.too_long", field=field, length=len(cleaned), limit=limit)
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


def clean_email(value: str | None, field: str) -> str:
    """One rule for every e-mail address the service keeps (subscribers, organisations'
    contacts, how to apply for a training): they are all written to by the same mailer.

    Invisible characters pasted along go first (`plain_text`). The address must be one
    the mailer can send to without SMTPUTF8, which not every server accepts: a
    non-ASCII local part is refused, an internationalised domain is kept as punycode.
    The error names the field and the value, in the reader's language (the validator's
    own English explanation is not shown to a Polish reader)."""
    cleaned = plain_text(value or "").strip()
    try:
        checked = validate_email(cleaned, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise ValidationFailed("error.email", field=field, value=cleaned[:100] or "—") from None
    return checked.ascii_email or checked.normalized


# Digits with the separators people write (+48 89 123-45-67, (89) 123 45 67, 89/123 45 67);
# Polish numbers have 9 digits, and E.164 allows at most 15 with the country code.
_PHONE = re.compile(r"^\+?[0-9(][0-9 ()/.-]*[0-9]$")


def is_phone(value: str) -> bool:
    """Whether `value` reads as one phone number (see `clean_phone`)."""
    return bool(_PHONE.match(value)) and 9 <= sum(ch.isdigit() for ch in value) <= 15


def clean_phone(value: str | None, field: str) -> str | None:
    """A phone number as typed (its separators kept, as people read them), None when empty."""
    cleaned = plain_text(value or "").strip()
    if not cleaned:
        return None
    if not is_phone(cleaned):
        raise ValidationFailed("error.phone", field=field, value=cleaned[:40])
    return cleaned


def for_terminal(value: object) -> str:
    """`value` as text that cannot drive a terminal: control characters, bidi overrides and
    lone surrogates are shown as escapes (`\\x1b`, `\\u202e`); line feeds are kept.
    For CLI output of stored text, which may predate `plain_text`."""
    text = "" if value is None else str(value)
    return _UNSAFE_FOR_TERMINAL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"),
                                    text)


def json_for_terminal(value: object) -> str:
    """Indented JSON of `value` (non-ASCII letters kept readable) in which every character
    `for_terminal` would escape is written as a `\\uXXXX` escape: the same JSON, safe to print."""
    import json

    text = json.dumps(value, ensure_ascii=False, indent=2)
    return _UNSAFE_FOR_TERMINAL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
