"""What the public search compares: the words of an event and the words of a query.

- `event_words(event) -> list[str]` — the distinct words of the title, description, place
  and free-text organiser, folded (`infranet.region.fold`: lower case, diacritics and ł
  removed), at most MAX_EVENT_WORDS of them, each cut to WORD_MAX characters.
- `async index_words(session, event)` — stores them in `event_words` (replacing the
  event's old ones); every write of an event's text calls it (`infranet.calendar.events`).
- `query_words(text) -> tuple[str, ...]` — a visitor's query, folded the same way.

A query word matches an event when one of the event's words begins with it ("lodz" finds
"Łodzi", "ŁÓDŹ" finds "łódź"), or its organisation's folded name holds it (read live, so a
renamed organisation needs no rewrite here). Folding once when an event is written makes
the search an indexed range on both engines, with no per-row work at query time.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.errors import ValidationFailed
from infranet.region import fold
from infranet.storage.models import EventWord

# A query longer than this is not something a visitor types; refused with a message.
MAX_QUERY_CHARS = 200
# Words looked for at most: more add nothing a visitor notices.
MAX_QUERY_WORDS = 8
# The length of event_words.word; longer words are kept by their beginning.
WORD_MAX = 64
# Distinct words indexed per event (a 4,000-character description has a few hundred).
MAX_EVENT_WORDS = 600


class _Texts(Protocol):
    title: str
    description: str | None
    location: str | None
    organiser_name: str | None


def event_words(event: _Texts) -> list[str]:
    parts = (event.title, event.description, event.location, event.organiser_name)
    words = dict.fromkeys(w[:WORD_MAX] for w in fold(" ".join(p for p in parts if p)).split())
    return list(words)[:MAX_EVENT_WORDS]


async def index_words(session: AsyncSession, event: _Texts, event_id: int, *,
                      new: bool = False) -> None:
    """The event's words, as its text now is (after a flush: the event has its id).
    `new`: the event was just inserted and has no words to replace (one statement less on
    every event added)."""
    if not new:
        await session.execute(delete(EventWord).where(EventWord.event_id == event_id))
    words = event_words(event)
    if words:
        await session.execute(insert(EventWord), [{"word": w, "event_id": event_id} for w in words])


def query_words(text: str) -> tuple[str, ...]:
    """The distinct folded words of a query, at most MAX_QUERY_WORDS; () for a blank one."""
    if len(text) > MAX_QUERY_CHARS:
        raise ValidationFailed("error.too_long", field="q", length=len(text), limit=MAX_QUERY_CHARS)
    return tuple(dict.fromkeys(w[:WORD_MAX] for w in fold(text).split()))[:MAX_QUERY_WORDS]
