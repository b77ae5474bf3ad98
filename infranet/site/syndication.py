"""What other sites and search engines read: `/events.rss` and `/sitemap.xml`.

- `/events.rss?area=…&category=…&audience=…&org=…&q=…` — RSS 2.0 of upcoming events with
  the filters of the list and the ICS feeds (`calendar.feed_filter.parse_filter`) and the
  list's search (`calendar.event_search`), read through the site's listing
  (`calendar.site_listing.upcoming`); one item per event (a series by its next date), at
  most `RSS_ITEMS`, each linking to the event's page. Bad parameters: 400, plain text in
  the visitor's language naming the parameter.
- `/sitemap.xml` — the site's main pages and every upcoming event page (at most
  `SITEMAP_EVENTS`), with the date each event last changed.

Both are built with ElementTree, which escapes every text for XML.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import format_datetime
from xml.etree import ElementTree

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from infranet.calendar.event_links import event_url
from infranet.calendar.event_search import query_words
from infranet.calendar.event_words import when_in_words
from infranet.calendar.feed_filter import feed_name, parse_filter
from infranet.calendar.public_events import upcoming_published
from infranet.calendar.site_listing import upcoming
from infranet.errors import InfranetError
from infranet.i18n import t
from infranet.site.pages import NAVIGATION, Site, lang_param, with_params
from infranet.storage.models import EventStatus

RSS_ITEMS = 100
# Occurrences read to find RSS_ITEMS distinct events (a weekly series fills many of them).
RSS_OCCURRENCES = 400
RSS_WINDOW = timedelta(days=366)
SITEMAP_EVENTS = 50_000
MAX_QUERY_STRING = 4000
ITEM_TEXT = 1000


def _xml(root: ElementTree.Element) -> bytes:
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _bad(message: str) -> Response:
    return Response(message + "\n", status_code=400, media_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


async def rss(site: Site, request: Request) -> Response:
    ctx = site.ctx
    lang = site.language(request)
    if len(request.url.query) > MAX_QUERY_STRING:
        return _bad(t(lang, "error.too_long", field="query", length=len(request.url.query),
                      limit=MAX_QUERY_STRING))
    try:
        flt = parse_filter(ctx, request.query_params)
        words = query_words(" ".join((request.query_params.get("q") or "").split()))
    except InfranetError as exc:
        return _bad(exc.localized(lang))
    now = ctx.now()
    async with ctx.db.read() as session:
        found = await upcoming(session, ctx, flt, words, start=now, end=now + RSS_WINDOW,
                               limit=RSS_OCCURRENCES)
    query = [(k, v) for k, v in request.query_params.multi_items() if k in ("area", "category",
                                                                           "audience", "org", "q")]
    root = ElementTree.Element("rss", version="2.0")
    channel = ElementTree.SubElement(root, "channel")
    name = feed_name(ctx, flt)
    ElementTree.SubElement(channel, "title").text = name
    ElementTree.SubElement(channel, "link").text = site.base_url + with_params(
        "/events", query + lang_param(lang))
    ElementTree.SubElement(channel, "description").text = t(lang, "site.rss.description", name=name)
    ElementTree.SubElement(channel, "language").text = lang
    seen: set[int] = set()
    for occurrence in found.occurrences:
        event = occurrence.event
        if event.id in seen:
            continue
        seen.add(event.id)
        if len(seen) > RSS_ITEMS:
            break
        url = event_url(site.base_url, event.id, event.title)
        item = ElementTree.SubElement(channel, "item")
        cancelled = event.status == EventStatus.CANCELLED
        title = f"{t(lang, 'site.event.cancelled_title')}: {event.title}" if cancelled else event.title
        ElementTree.SubElement(item, "title").text = title
        ElementTree.SubElement(item, "link").text = url
        ElementTree.SubElement(item, "guid", isPermaLink="true").text = url
        # The date the item is about: when it takes place (an event feed's readers sort by it).
        ElementTree.SubElement(item, "pubDate").text = format_datetime(occurrence.start, usegmt=True)
        when = when_in_words(occurrence.start, occurrence.end, event.all_day, ctx.tz, lang)
        place = ", ".join(x for x in (event.location, event.district.name) if x)
        text = "\n".join(x for x in (when, place, (event.description or "")[:ITEM_TEXT]) if x)
        organiser = found.organiser(event)
        ElementTree.SubElement(item, "description").text = "\n".join(
            x for x in (text, organiser) if x)
    return Response(_xml(root), media_type="application/rss+xml; charset=utf-8")


async def sitemap(site: Site, request: Request) -> Response:
    ctx = site.ctx
    async with ctx.db.read() as session:
        events = await upcoming_published(session, ctx.now(), SITEMAP_EVENTS)

    def build() -> bytes:
        root = ElementTree.Element("urlset", xmlns="http://www.sitemaps.org/schemas/sitemap/0.9")
        for path in ["/", "/events", *(href for href, _ in NAVIGATION if href != "/events")]:
            entry = ElementTree.SubElement(root, "url")
            ElementTree.SubElement(entry, "loc").text = site.base_url + path
        for event in events:
            entry = ElementTree.SubElement(root, "url")
            ElementTree.SubElement(entry, "loc").text = event_url(site.base_url, event.id, event.title)
            ElementTree.SubElement(entry, "lastmod").text = event.updated_at.date().isoformat()
        return _xml(root)

    # 50,000 entries take a noticeable time to build: not on the event loop.
    body = await asyncio.to_thread(build) if len(events) > 1000 else build()
    return Response(body, media_type="application/xml; charset=utf-8")


def routes(site: Site) -> list[BaseRoute]:
    async def rss_route(request: Request) -> Response:
        return await rss(site, request)

    async def sitemap_route(request: Request) -> Response:
        return await sitemap(site, request)

    return [Route("/events.rss", rss_route, methods=["GET", "HEAD"], name="events_rss"),
            Route("/sitemap.xml", sitemap_route, methods=["GET", "HEAD"], name="sitemap")]
