"""How the calendar's JSON API writes an occurrence and a conflict.

`/api/events` and `/api/conflicts` (`infranet.calendar.http`) answer with these shapes;
`dumps` renders as Starlette's JSONResponse does, so that a page can be encoded a batch of
occurrences at a time in a worker thread. The API is public: an organisation's e-mail and
phone appear only when it published them (`published_contacts`), null otherwise.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from infranet.calendar import recurrence
from infranet.calendar.conflicts import Conflict
from infranet.calendar.event_queries import Occurrence
from infranet.calendar.summary import Organiser
from infranet.context import AppContext
from infranet.network.public_contacts import published_contacts
from infranet.storage.models import Organisation


def occurrence_json(ctx: AppContext, occ: Occurrence) -> dict[str, Any]:
    event, tz = occ.event, ctx.tz
    org = event.organisation
    item: dict[str, Any] = {
        "id": event.id, "uid": event.uid, "title": event.title, "all_day": event.all_day,
        "start": occ.start.astimezone(tz).isoformat(), "end": occ.end.astimezone(tz).isoformat(),
        "district": {"slug": event.district.slug, "name": event.district.name},
        "category": event.category, "audiences": list(event.audiences),
        "location": event.location, "description": event.description, "url": event.url,
        "registration_url": event.registration_url, "status": event.status,
        # The rule only: the dates taken out of a series are simply not among its occurrences.
        "recurring": bool(event.rrule), "rrule": recurrence.rule_part(event.rrule),
        "revision": event.revision,
        "organisation": _organisation(org),
    }
    if event.all_day:
        item["first_day"] = occ.first_day(tz).isoformat()
        item["last_day"] = occ.last_day(tz).isoformat()
    return item


def _organisation(org: Organisation | Organiser | None) -> dict[str, Any] | None:
    if org is None:
        return None
    shown = published_contacts(org)
    return {"id": org.id, "name": org.name, "email": shown.email, "phone": shown.phone}


def conflict_json(ctx: AppContext, c: Conflict) -> dict[str, Any]:
    org = c.event.organisation
    shown = published_contacts(org) if org is not None else None
    return {"event": occurrence_json(ctx, Occurrence(c.event, c.start, c.end)),
            "severity": c.severity, "relation": c.relation, "organisation": c.organisation_name,
            "email": shown.email if shown else None, "phone": shown.phone if shown else None}


def shape_json(value: datetime | date) -> str:
    return value.isoformat()


def dumps(value: Any) -> bytes:
    """As Starlette's JSONResponse renders."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")
