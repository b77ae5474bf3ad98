"""Reading a feed's events: which rows a filter selects and how they become `FeedRow`s.

The feed cache (`infranet.calendar.feed`) streams these rows in chunks for a full build
and reads only the changed ones otherwise; an export (`load_rows`) reads them at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from infranet.calendar.district_ids import area_district_ids, district_id_map
from infranet.calendar.feed_filter import FeedFilter
from infranet.calendar.ics_writer import FeedRow
from infranet.context import AppContext
from infranet.network.public_contacts import published
from infranet.storage.models import Event, EventStatus, Moderation, Organisation
from infranet.storage.types import parse_timestamp, raw_timestamp

_SERIES = aliased(Event)
FULL_COLUMNS = (
    Event.id, Event.uid, Event.title, Event.description, Event.location, Event.url,
    Event.registration_url, raw_timestamp(Event.starts_at), raw_timestamp(Event.ends_at), Event.all_day,
    Event.rrule, Event.category, Event.audiences, Event.status, Event.revision,
    raw_timestamp(Event.created_at), raw_timestamp(Event.updated_at), Event.district_id,
    Organisation.name, Organisation.contact_email,
    Organisation.phone, Organisation.website,
    # An override's series' UID (NULL for every other event: an index look-up per override).
    select(_SERIES.uid).where(_SERIES.id == Event.series_id).correlate(Event).scalar_subquery(),
    raw_timestamp(Event.recurrence_id),
    # What the organisation chose to publish: feeds are public (`feed_rows`).
    Organisation.publish_email, Organisation.publish_phone,
)


async def feed_conditions(session: AsyncSession, ctx: AppContext, flt: FeedFilter,
                      now: datetime) -> list[Any]:
    settings = ctx.settings.calendar
    conditions: list[Any] = [
        Event.moderation == Moderation.PUBLISHED,
        Event.last_ends_at >= now - timedelta(days=settings.feed_past_days),
        or_(Event.status == EventStatus.SCHEDULED,
            and_(Event.status == EventStatus.CANCELLED,
                 Event.cancelled_at >= now - timedelta(days=settings.cancelled_keep_days))),
    ]
    if flt.areas:
        areas = [ctx.region.by_slug[s] for s in flt.areas if s in ctx.region.by_slug]
        conditions.append(Event.district_id.in_(await area_district_ids(session, ctx, areas)))
    if flt.categories:
        conditions.append(Event.category.in_(flt.categories))
    if flt.organisations:
        conditions.append(Event.organisation_id.in_(flt.organisations))
    return conditions


def feed_rows(result_rows: Iterable[Any], names: Mapping[int, tuple[str, str]]) -> list[FeedRow]:
    """FeedRows from FULL_COLUMNS. The organiser's e-mail and phone only as published: feeds
    and exports are read by anyone (a VEVENT is cached per event revision, and the cache is
    rebuilt when an organisation changes, publication included)."""
    rows = []
    for r in result_rows:
        shown = published(r[19], r[20], r[21], publish_email=bool(r[24]), publish_phone=bool(r[25]))
        rows.append(FeedRow(
            id=r[0], uid=r[1], title=r[2], description=r[3], location=r[4], url=r[5],
            registration_url=r[6], starts_at=parse_timestamp(r[7]), ends_at=parse_timestamp(r[8]),
            all_day=r[9], rrule=r[10],
            category=r[11], audiences=tuple(r[12] or ()), status=r[13], revision=r[14],
            created_at=parse_timestamp(r[15]), updated_at=parse_timestamp(r[16]),
            district_name=names.get(r[17], ("", ""))[0], district_slug=names.get(r[17], ("", ""))[1],
            org_name=r[18], org_email=shown.email, org_phone=shown.phone, org_website=shown.website,
            series_uid=r[22], recurrence_id=parse_timestamp(r[23]) if r[23] is not None else None))
    return rows


async def load_rows(session: AsyncSession, ctx: AppContext, flt: FeedFilter,
                    now: datetime, *, extra: Sequence[Any] = ()) -> list[FeedRow]:
    """The rows of a feed in feed order (by start, then id). Sorted here rather than in SQL,
    so the database may pick the cheapest access path for the filter."""
    conditions = [*await feed_conditions(session, ctx, flt, now), *extra]
    query = (select(*FULL_COLUMNS).outerjoin(Organisation, Organisation.id == Event.organisation_id)
             .where(*conditions))
    rows = feed_rows((await session.execute(query)).all(), await district_names(session, ctx))
    rows.sort(key=attrgetter("starts_at", "id"))
    return audience_filter(rows, flt)


def audience_filter(rows: list[FeedRow], flt: FeedFilter) -> list[FeedRow]:
    if not flt.audiences:
        return rows
    wanted = set(flt.audiences)
    return [r for r in rows if not r.audiences or wanted & set(r.audiences)]


async def district_names(session: AsyncSession, ctx: AppContext) -> dict[int, tuple[str, str]]:
    ids = await district_id_map(session, ctx)
    return {i: (ctx.region.by_slug[s].name if s in ctx.region.by_slug else s, s) for s, i in ids.items()}
