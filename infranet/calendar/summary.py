"""Events read as plain rows: what conflict checks, suggestions and `/check` need of them.

Building ORM objects (with organisation and district joined) costs more than the indexed
queries that find the events, and those paths read many events and show few. The types here
carry the model's attribute names, so the bot, the CLI and the JSON API read an
`EventSummary` like an `Event`; the district is the region's, the organiser a small record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.district_ids import district_id_map
from infranet.context import AppContext
from infranet.region import District as RegionDistrict
from infranet.storage.models import Event, Organisation
from infranet.storage.types import parse_timestamp


@dataclass(frozen=True, slots=True)
class Organiser:
    """Who to call about an event: every contact (members' outputs show them all) with the
    organisation's choice of what the public sees (`infranet.network.public_contacts`)."""

    id: int
    name: str
    contact_email: str | None
    phone: str | None
    website: str | None = None
    publish_email: bool = False
    publish_phone: bool = False


@dataclass(frozen=True, slots=True)
class PoolRow:
    """The part of an event that says whether it collides: enough for suggestions, which
    compare many dates against thousands of events and report none of them."""

    id: int
    district_id: int
    organisation_id: int | None
    title: str
    title_folded: str
    audiences: list[str]
    category: str
    rrule: str | None
    starts_at: datetime
    ends_at: datetime
    last_ends_at: datetime
    all_day: bool


@dataclass(frozen=True, slots=True)
class EventSummary(PoolRow):
    """An event as reports and listings show it, with its region district and organiser."""

    uid: str
    location: str | None
    description: str | None
    url: str | None
    registration_url: str | None
    status: str
    revision: int
    district: RegionDistrict
    organisation: Organiser | None


# A statement of many columns (SQLAlchemy 2.1 types a Select by its column types).
Rows = Select[*tuple[Any, ...]]

POOL_COLUMNS = (Event.id, Event.district_id, Event.organisation_id, Event.title, Event.title_folded,
                Event.audiences, Event.category, Event.rrule, Event.starts_at, Event.ends_at,
                Event.last_ends_at, Event.all_day)
# Read through `select_summaries`: these come from the event and its organiser.
SUMMARY_COLUMNS = (*POOL_COLUMNS, Event.uid, Event.location, Event.description, Event.url,
                   Event.registration_url, Event.status, Event.revision,
                   Organisation.name, Organisation.contact_email, Organisation.phone,
                   Organisation.website, Organisation.publish_email, Organisation.publish_phone)
_ORGANISER = slice(len(POOL_COLUMNS) + 7, len(POOL_COLUMNS) + 13)


def select_summaries() -> Rows:
    """SUMMARY_COLUMNS from events and their organisers, to be filtered by the caller."""
    return select(*SUMMARY_COLUMNS).select_from(Event).outerjoin(
        Organisation, Organisation.id == Event.organisation_id)


def _pool_values(values: Sequence[Any]) -> list[Any]:
    """POOL_COLUMNS' values as Python values, from either SQLAlchemy's processed row or the
    SQLite driver's raw one (see `infranet.storage.hotpath`)."""
    (id_, district_id, organisation_id, title, title_folded, audiences, category, rrule,
     starts_at, ends_at, last_ends_at, all_day) = values[:len(POOL_COLUMNS)]
    if isinstance(audiences, str):
        audiences = json.loads(audiences)
    return [id_, district_id, organisation_id, title, title_folded, audiences or [], category, rrule,
            parse_timestamp(starts_at), parse_timestamp(ends_at), parse_timestamp(last_ends_at),
            bool(all_day)]


def pool_row(values: Sequence[Any]) -> PoolRow:
    """A `PoolRow` from a row that starts with POOL_COLUMNS."""
    return PoolRow(*_pool_values(values))


def summarise(values: Sequence[Any], districts: dict[int, RegionDistrict]) -> EventSummary:
    """An `EventSummary` from a row that starts with SUMMARY_COLUMNS (more columns may follow)."""
    organiser = None
    if values[2] is not None:
        name, email, phone, website, publish_email, publish_phone = values[_ORGANISER]
        organiser = Organiser(values[2], name, email, phone, website, bool(publish_email),
                              bool(publish_phone))
    fields = (*_pool_values(values), *values[len(POOL_COLUMNS):_ORGANISER.start],
              districts[values[1]], organiser)
    return EventSummary(*fields)


async def districts_by_id(session: AsyncSession, ctx: AppContext) -> dict[int, RegionDistrict]:
    """districts.id -> the region's district. A district the region file no longer has (its
    events outlive it) gets a stand-in outside the region's tree, which overlaps nothing."""
    ids = await district_id_map(session, ctx)
    region = ctx.region.by_slug
    return {i: region.get(slug) or RegionDistrict(slug, slug, "powiat", "") for slug, i in ids.items()}
