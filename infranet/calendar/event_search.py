"""What the public search compares: an event's folded text and the words of a query.

- `search_text(event) -> str` — title, description, place and free-text organiser folded
  (`infranet.region.fold`: lower case, diacritics and ł removed), stored in
  `events.search_folded` by every write of an event's text (`events._apply`).
- `query_words(text) -> tuple[str, ...]` — a visitor's query, folded the same way and split
  into words; every word must occur in the event's text or its organisation's name.

Folding once when an event is written makes the search a plain LIKE on both engines, with
no per-row work at query time ("lodz" finds "Łódź", "ŁÓDŹ" finds "łódź").
"""

from __future__ import annotations

from typing import Protocol

from infranet.errors import ValidationFailed
from infranet.region import fold

# A query longer than this is not something a visitor types; refused with a message.
MAX_QUERY_CHARS = 200
# Words looked for at most (each is one LIKE): more add nothing a visitor notices.
MAX_QUERY_WORDS = 8


class _Texts(Protocol):
    title: str
    description: str | None
    location: str | None
    organiser_name: str | None


def search_text(event: _Texts) -> str:
    """The folded text the site's search looks in (the organisation's name is looked up in
    `organisations.name_folded`, so renaming an organisation needs no rewrite here)."""
    parts = (event.title, event.description, event.location, event.organiser_name)
    return fold(" ".join(p for p in parts if p))


def query_words(text: str) -> tuple[str, ...]:
    """The distinct folded words of a query, at most MAX_QUERY_WORDS; () for a blank one."""
    if len(text) > MAX_QUERY_CHARS:
        raise ValidationFailed("error.too_long", field="q", length=len(text), limit=MAX_QUERY_CHARS)
    return tuple(dict.fromkeys(fold(text).split()))[:MAX_QUERY_WORDS]
