"""Where an event lives on the public site: `/events/<id>-<slug>`.

The id alone finds the event; the slug after it is made from the title only so that a
shared link says what it points to. The site accepts any slug (or none) and redirects to
the canonical one, so a title edited after the link was shared still leads to the page.
The calendar owns this rule because its feeds, the newsletter and the bot all link to
event pages, and none of them may depend on the site.
"""

from __future__ import annotations

from infranet.region import fold

SLUG_MAX = 60


def slug(title: str) -> str:
    """"Szkolenie: Księgowość NGO!" -> "szkolenie-ksiegowosc-ngo"; Latin letters and digits
    only, so the URL stays readable in every client (other scripts give an empty slug)."""
    words = [w for w in fold(title).split() if w.isascii() and w.isalnum()]
    text = "-".join(words)[:SLUG_MAX].strip("-")
    return text


def event_path(event_id: int, title: str = "") -> str:
    tail = slug(title)
    return f"/events/{event_id}-{tail}" if tail else f"/events/{event_id}"


def event_url(base_url: str, event_id: int, title: str = "") -> str:
    return base_url.rstrip("/") + event_path(event_id, title)
