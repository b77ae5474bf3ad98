"""Callback data and inline keyboards."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)

from infranet.bot.common_base import MAX_CALLBACK
from infranet.errors import ValidationFailed
from infranet.web.params import parse_id

log = logging.getLogger(__name__)


def cb(*parts: object) -> str:
    """Callback data such as `ev:123:ok` (at most 64 bytes; parts must not contain ':')."""
    data = ":".join(str(p) for p in parts)
    if len(data.encode()) > MAX_CALLBACK:
        raise ValueError(f"callback data {data!r} is over {MAX_CALLBACK} bytes")
    return data


def parse_cb(data: str | None) -> list[str]:
    return (data or "").split(":")


def int_part(parts: Sequence[str], index: int) -> int | None:
    """The integer at `parts[index]` (0 to `MAX_ID`, ASCII digits only, as the web's
    parameters), or None for a missing or forged value: a huge number would overflow the
    database driver, and "²" passes `str.isdigit()` but not `int()`."""
    if not 0 <= index < len(parts):
        return None
    try:
        return parse_id(parts[index], "callback", minimum=0)
    except ValidationFailed:
        return None


Buttons = Sequence[Sequence[tuple[str, str]]] | InlineKeyboardMarkup | None


def keyboard(buttons: Buttons) -> InlineKeyboardMarkup | None:
    """Rows of (label, callback data); a value starting with http(s):// becomes a URL button."""
    if buttons is None or isinstance(buttons, InlineKeyboardMarkup):
        return buttons
    rows = [[InlineKeyboardButton(label, url=value) if value.startswith(("http://", "https://"))
             else InlineKeyboardButton(label, callback_data=value) for label, value in row]
            for row in buttons if row]
    return InlineKeyboardMarkup(rows) if rows else None


def rows_of(items: Iterable[tuple[str, str]], per_row: int = 2) -> list[list[tuple[str, str]]]:
    items = list(items)
    return [items[i:i + per_row] for i in range(0, len(items), per_row)]


