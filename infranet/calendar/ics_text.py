"""The text properties of an imported event: plain text, except Google's HTML descriptions.

In iCalendar SUMMARY, DESCRIPTION and LOCATION are plain text: `<b>nie</b>` in a title is
nine characters, and `a < b & c > d` is what it says. Google Calendar, however, writes the
descriptions its users format as HTML (`<br>`, `<a href>`, `<p>`, lists), and Outlook puts
an HTML copy into X-ALT-DESC;FMTTYPE=text/html. Such a description is turned into readable
text with its links kept (`[zapisy](https://…)`), by inscriptis (Apache-2.0; html2text
would do too, but it is GPL and this project is MIT). A description counts as HTML only
when it holds the markup those programs write (a line break, a paragraph, a link, a list,
a div): a lone `<b>` is left as the characters it is. Titles and places are never read as
HTML. Whatever comes out is plain text again, cleaned and escaped on output like any other.
"""

from __future__ import annotations

import re
from typing import Any

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

_HTML = re.compile(r"<(br\s*/?|p|div|ul|ol|li|a\s+href=|html|body|span\s+style=|table)[\s>]",
                   re.IGNORECASE)
_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True)
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")


def looks_like_html(text: str) -> bool:
    return bool(_HTML.search(text))


def html_to_text(html: str) -> str:
    text = get_text(html, _CONFIG)
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def text_of(component: Any, name: str) -> str | None:
    value = component.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0]
    return str(value)


def description(component: Any) -> str | None:
    """DESCRIPTION as readable text: HTML (Google's, or Outlook's X-ALT-DESC when there is no
    plain one) turned into text with its links."""
    plain = text_of(component, "DESCRIPTION")
    if plain is not None and plain.strip():
        return html_to_text(plain) if looks_like_html(plain) else plain
    alt = component.get("X-ALT-DESC")
    if alt is not None and "html" in str(getattr(alt, "params", {}).get("FMTTYPE", "")).lower():
        return html_to_text(unescape(str(alt)) or "") or None
    return plain


def unescape(value: str | None) -> str | None:
    """RFC 5545 TEXT unescaping, for X- properties (icalendar leaves unknown ones raw)."""
    if value is None:
        return None
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)
