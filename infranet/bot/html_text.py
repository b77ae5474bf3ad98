"""Telegram HTML: escaping, visible length, splitting long messages."""

from __future__ import annotations

import html
import logging
import re

from infranet.bot.common_base import MAX_MESSAGE
from infranet.i18n import t

log = logging.getLogger(__name__)


class Html(str):
    """Text that is already safe Telegram HTML: `tr()` does not escape it again."""

    __slots__ = ()


def esc(value: object) -> Html:
    """Escape user text (or anything) for parse_mode=HTML."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=False))


def tr(lang: str | None, key: str, **params: object) -> Html:
    """A registered message in `lang`, every parameter escaped unless it is `Html`."""
    return Html(t(lang, key, **{k: esc(v) for k, v in params.items()}))


TAGS = re.compile(r"<[^>]+>")


def visible_length(text: str) -> int:
    """Length after Telegram's entity parsing (tags removed, entities decoded)."""
    return len(html.unescape(TAGS.sub("", text)))


def split_html(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split HTML into messages of at most `limit` visible characters, on paragraph
    boundaries ("\\n\\n"), then lines; a single over-long line loses its markup and is
    cut plainly. Tags never span paragraphs in our messages, so no tag is cut."""
    if visible_length(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""

    def push(piece: str, sep: str) -> None:
        nonlocal current
        candidate = f"{current}{sep}{piece}" if current else piece
        if visible_length(candidate) <= limit:
            current = candidate
            return
        if current:
            chunks.append(current)
        current = ""
        if visible_length(piece) <= limit:
            current = piece
        elif "\n" in piece and sep == "\n\n":
            for line in piece.split("\n"):
                push(line, "\n")
        else:
            plain = html.unescape(TAGS.sub("", piece))
            for start in range(0, len(plain), limit):
                push(html.escape(plain[start:start + limit], quote=False), sep)

    for paragraph in text.split("\n\n"):
        push(paragraph, "\n\n")
    if current:
        chunks.append(current)
    return [c for c in chunks if c.strip()]


