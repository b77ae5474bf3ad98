"""`/calendar` (the feed picker, in the site's layout) and `/embed` (a compact list of
upcoming events made to be framed by member organisations' websites).

- `GET /calendar?area=…&category=…&audience=…` — pick districts (subregions and powiaty),
  categories and audiences; shows the ICS feed's address, its webcal:// link and the
  `<iframe>` code of `/embed` for the same filters. The feeds themselves stay the
  calendar's (`/calendar.ics`, `/calendar/<area>.ics`).
- `GET /embed?area=…&category=…&audience=…&org=…&limit=…&lang=…` — the next `limit`
  (1..50, default 10) occurrences matching the feed filter, read with the calendar's
  `page_events`. A standalone page (no layout, no navigation) with its own
  Content-Security-Policy whose `frame-ancestors *` lets any site frame it; every other
  page keeps the default `frame-ancestors 'none'` of `infranet.web.headers`.

Filters are read by the calendar's `parse_filter`, so a picker, a feed and an embedded
list with the same parameters show the same events. Bad input is a 400 naming the field.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from infranet.calendar.event_input import AUDIENCES, CATEGORIES, audience_label, category_label
from infranet.calendar.event_links import event_url
from infranet.calendar.event_pages import page_events
from infranet.calendar.feed_filter import FeedFilter, parse_filter
from infranet.calendar.summary import EventSummary
from infranet.errors import InfranetError, ValidationFailed
from infranet.i18n import format_span, t
from infranet.site.pages import Site, lang_param, with_params
from infranet.web.headers import content_security_policy
from infranet.web.params import parse_id

EMBED_DEFAULT = 10
EMBED_MAX = 50
# How far ahead an embedded list looks for its events.
EMBED_HORIZON = timedelta(days=366)
EMBED_CACHE = "public, max-age=300"
IFRAME_HEIGHT = 480


def embed_policy(public_base_url: str) -> str:
    """The site's page policy, except that any site may frame this page."""
    policy = content_security_policy(public_base_url)
    assert "frame-ancestors 'none'" in policy
    return policy.replace("frame-ancestors 'none'", "frame-ancestors *")


def embed_limit(text: str | None) -> int:
    """`?limit=`: 1..EMBED_MAX, EMBED_DEFAULT when absent."""
    if text is None or not text.strip():
        return EMBED_DEFAULT
    try:
        value = parse_id(text, "limit")
    except ValidationFailed:
        value = 0
    if not 1 <= value <= EMBED_MAX:
        raise ValidationFailed("calendar.error.limit", field="limit", limit=EMBED_MAX)
    return value


def embed_src(base_url: str, flt: FeedFilter, lang: str, limit: int = EMBED_DEFAULT) -> str:
    query = flt.query_string()
    tail = urlencode([("limit", str(limit)), *lang_param(lang)])
    return f"{base_url}/embed?" + (f"{query}&" if query else "") + tail


def iframe_code(site: Site, flt: FeedFilter, lang: str) -> str:
    """The HTML a member pastes into its website (escaped again where the picker shows it)."""
    from markupsafe import escape

    title = t(lang, "site.embed.frame_title", region=site.ctx.region.name)
    return (f'<iframe src="{escape(embed_src(site.base_url, flt, lang))}" title="{escape(title)}" '
            f'width="100%" height="{IFRAME_HEIGHT}" loading="lazy"></iframe>')


# --- the picker ----------------------------------------------------------------------


def _picker_params(site: Site, flt: FeedFilter, lang: str) -> dict[str, Any]:
    ctx = site.ctx
    query = flt.query_string()
    feed_url = f"{site.base_url}/calendar.ics" + (f"?{query}" if query else "")
    areas = [{"slug": sub.slug, "name": sub.name, "checked": sub.slug in flt.areas,
              "children": [{"slug": p.slug, "name": p.name, "checked": p.slug in flt.areas}
                           for p in sub.children]}
             for sub in ctx.region.subregions]
    return {
        "feed_url": feed_url, "webcal": "webcal://" + feed_url.split("://", 1)[1],
        "areas": areas,
        "categories": [{"code": c, "label": category_label(c, lang), "checked": c in flt.categories}
                       for c in CATEGORIES],
        "audiences": [{"code": a, "label": audience_label(a, lang), "checked": a in flt.audiences}
                      for a in AUDIENCES],
        "organisations": list(flt.organisations),
        "iframe": iframe_code(site, flt, lang),
        "embed_preview": with_params("/embed", [*_pairs(flt), *lang_param(lang)]),
        "events_link": with_params("/events", [*_pairs(flt), *lang_param(lang)]),
    }


def _pairs(flt: FeedFilter) -> list[tuple[str, str]]:
    return ([("area", a) for a in flt.areas] + [("category", c) for c in flt.categories]
            + [("audience", a) for a in flt.audiences] + [("org", str(o)) for o in flt.organisations])


async def picker_page(site: Site, request: Request) -> Response:
    """The feed picker. A bad filter shows the form again, empty, with what was wrong."""
    lang = site.language(request)
    error, status = "", 200
    try:
        flt = parse_filter(site.ctx, request.query_params)
    except InfranetError as exc:
        flt, error, status = FeedFilter(), exc.localized(lang), 400
    return site.page(request, "picker.html", lang, status_code=status,
                     title=t(lang, "calendar.page.title"), error=error, **_picker_params(site, flt, lang))


# --- the embedded list ---------------------------------------------------------------


def _place(event: EventSummary) -> str:
    district = event.district.name
    return f"{event.location}, {district}" if event.location else district


async def embed_page(site: Site, request: Request) -> Response:
    lang = site.language(request)
    headers = {"Content-Security-Policy": embed_policy(site.base_url), "Cache-Control": EMBED_CACHE}
    ctx = site.ctx
    try:
        flt = parse_filter(ctx, request.query_params)
        limit = embed_limit(request.query_params.get("limit"))
        start = ctx.now()
        async with ctx.db.read() as session:
            page = await page_events(session, ctx, start=start, end=start + EMBED_HORIZON, limit=limit,
                                     area=list(flt.areas) or None, category=list(flt.categories) or None,
                                     audience=list(flt.audiences) or None,
                                     organisation_id=list(flt.organisations) or None)
    except InfranetError as exc:
        headers["Cache-Control"] = "no-store"
        body = site.env.get_template("embed.html").render(
            _=partial(t, lang), lang=lang, region=ctx.region.name,
            error=exc.localized(lang), events=[], more="")
        return HTMLResponse(body, status_code=400, headers=headers)
    events = [{"title": o.event.title,
               "href": with_params(event_url(site.base_url, o.event.id, o.event.title), lang_param(lang)),
               "when": format_span(o.start, o.end, ctx.tz, lang, all_day=o.all_day),
               "start": o.start.isoformat(), "place": _place(o.event)}
              for o in page.occurrences]
    more = site.base_url + with_params("/events", [*_pairs(flt), *lang_param(lang)])
    body = site.env.get_template("embed.html").render(
        _=partial(t, lang), lang=lang, region=ctx.region.name,
        error="", events=events, more=more)
    return HTMLResponse(body, headers=headers)


def routes(site: Site) -> list[BaseRoute]:
    async def picker(request: Request) -> Response:
        return await picker_page(site, request)

    async def embed(request: Request) -> Response:
        return await embed_page(site, request)

    return [Route("/calendar", picker, methods=["GET", "HEAD"]),
            Route("/embed", embed, methods=["GET", "HEAD"])]
