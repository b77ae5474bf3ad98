"""Member calendars followed by URL: which calendars an organisation has the network follow.

Organisations keep their events in Google Calendar, Outlook, Nextcloud or on their website;
instead of typing them again, a member registers the calendar's public address and the
service fetches it every `[sources] interval_minutes` and imports it
(`source_refresh.refresh_due`, through the one seam `source_sync.sync_source`).

Here: adding (a member of the organisation, or an admin; the URL checked as the fetcher
will fetch it, `webcal://` taken as `https://`; the same URL twice refused), listing,
removing (kept as `removed`, so that adding the URL again continues the same source) and
reading one source. Fetching now and reporting is `source_refresh.check_source`.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.event_input import CATEGORIES, resolve_district
from infranet.context import AppContext
from infranet.errors import NotFound, PermissionDenied, ValidationFailed
from infranet.storage.actors import Actor
from infranet.storage.audit import record
from infranet.storage.models import CalendarSource, Organisation, SourceStatus
from infranet.validation import plain_text
from infranet.web.fetch import FetchFailed, allowed, normalise_url

URL_MAX = 2000
NAME_MAX = 200
# How many sources one organisation may follow: enough for every calendar it keeps, and a
# bound on what a member can make the server fetch.
MAX_PER_ORGANISATION = 20


def check_url(ctx: AppContext, url: str) -> str:
    """The URL as it will be fetched, or ValidationFailed naming what is wrong with it. An
    address written as an IP is judged here already; names are judged when fetched, by
    what they resolve to then."""
    if len(url.strip()) > URL_MAX:
        raise ValidationFailed("error.too_long", field="url", length=len(url.strip()), limit=URL_MAX)
    normal = normalise_url(url)
    if isinstance(normal, FetchFailed):
        raise ValidationFailed(normal.key, **normal.params)
    host = (urlsplit(normal).hostname or "").strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return normal
    if not allowed(address, allow_private=ctx.settings.sources.allow_private):
        raise ValidationFailed("fetch.blocked", host=host, address=str(address))
    return normal


async def get_source(session: AsyncSession, source_id: int) -> CalendarSource:
    source = await session.get(CalendarSource, source_id) if 0 < source_id < 2**63 else None
    if source is None or source.status != SourceStatus.ACTIVE:
        raise NotFound("sources.not_found", id=source_id)
    return source


async def add_source(session: AsyncSession, ctx: AppContext, actor: Actor, organisation_id: int,
                     url: str, *, name: str | None = None, district: str | None = None,
                     category: str | None = None) -> CalendarSource:
    """Follow `url` for the organisation from now on (the first fetch is due at once)."""
    actor.require_org(organisation_id)
    org = await session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound("error.not_found.organisation", id=organisation_id)
    normal = check_url(ctx, url)
    slug = resolve_district(ctx, district).slug if district else None
    if category is not None and category not in CATEGORIES:
        raise ValidationFailed("error.one_of", field="category", value=category,
                               choices=", ".join(CATEGORIES))
    label = plain_text(name or "")[:NAME_MAX] or (urlsplit(normal).hostname or normal)[:NAME_MAX]
    source = await session.scalar(select(CalendarSource).where(
        CalendarSource.organisation_id == organisation_id, CalendarSource.url == normal))
    if source is not None and source.status == SourceStatus.ACTIVE:
        raise ValidationFailed("sources.duplicate", id=source.id)
    followed = await session.scalars(select(CalendarSource.id).where(
        CalendarSource.organisation_id == organisation_id,
        CalendarSource.status == SourceStatus.ACTIVE))
    if len(followed.all()) >= MAX_PER_ORGANISATION:
        raise ValidationFailed("sources.too_many", limit=MAX_PER_ORGANISATION)
    member_id = actor.member.id if actor.member is not None else None
    if source is None:
        source = CalendarSource(organisation_id=organisation_id, url=normal)
        session.add(source)
    # A source removed before comes back with its history of events, its fetch state forgotten.
    source.status = SourceStatus.ACTIVE
    source.name, source.district, source.category, source.added_by = label, slug, category, member_id
    source.created_at = ctx.now()
    source.etag = source.last_modified = source.content_hash = source.last_error = None
    source.last_fetched_at = source.last_ok_at = None
    source.failures, source.failure_notified, source.next_fetch_at = 0, False, ctx.now()
    await session.flush()
    await record(session, actor, "source.add", "calendar_source", source.id,
                 organisation_id=organisation_id, url=normal)
    return source


async def list_sources(session: AsyncSession, actor: Actor,
                       organisation_id: int | None = None) -> list[CalendarSource]:
    """The followed sources of `organisation_id` (a member: of their own organisation; an
    admin or the CLI: of any, or of all with None), oldest first."""
    if organisation_id is None and not actor.is_admin:
        organisation_id = actor.require_approved().organisation_id
        if organisation_id is None:
            raise PermissionDenied("error.need_org")
    if organisation_id is not None:
        actor.require_org(organisation_id)
    query = select(CalendarSource).where(CalendarSource.status == SourceStatus.ACTIVE)
    if organisation_id is not None:
        query = query.where(CalendarSource.organisation_id == organisation_id)
    return list((await session.scalars(query.order_by(CalendarSource.id))).all())


async def remove_source(session: AsyncSession, ctx: AppContext, actor: Actor,
                        source_id: int) -> CalendarSource:
    """Stop following the source. Its events stay where they are (what becomes of them when
    a source goes is the importer's sync rule, not this one)."""
    source = await get_source(session, source_id)
    actor.require_org(source.organisation_id)
    source.status = SourceStatus.REMOVED
    source.next_fetch_at = None
    await record(session, actor, "source.remove", "calendar_source", source.id,
                 organisation_id=source.organisation_id, url=source.url)
    return source
