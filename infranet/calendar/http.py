"""The calendar's HTTP routes: ICS feeds, the subscribe page and a small JSON API.

- `GET /calendar.ics?area=…&category=…&audience=…&org=…` (repeated or comma-separated)
- `GET /calendar/<area>.ics` (area: slug or TERYT/NUTS code; same query filters)
- `GET /calendar` — pick districts, categories, audiences; get the feed and webcal:// URLs
- `GET /api/events?start=…&end=…&area=…&category=…&audience=…&org=…`
- `GET /api/conflicts?start=…&end=…&area=…[&audience=…&category=…&title=…&org=…]`

Feeds carry ETag and Last-Modified, answer If-None-Match / If-Modified-Since with 304
and are gzipped when the client asks; bodies come from `FeedCache`.
"""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from infranet.calendar.conflicts import Conflict, find_conflicts, suggest_dates
from infranet.calendar.dates import localize
from infranet.calendar.events import (
    AUDIENCES,
    CATEGORIES,
    EventInput,
    Occurrence,
    audience_label,
    category_label,
    list_events,
)
from infranet.calendar.feed import Feed, FeedCache, FeedFilter, parse_filter
from infranet.context import AppContext
from infranet.errors import InfranetError, ValidationFailed
from infranet.i18n import normalise_language

MAX_API_DAYS = 400
MAX_API_ITEMS = 2000


def _error(exc: InfranetError, request: Request) -> JSONResponse:
    lang = normalise_language(request.query_params.get("lang") or "en")
    return JSONResponse({"error": exc.localized(lang)}, status_code=400)


def _parse_when(text: str, ctx: AppContext, name: str) -> datetime | date:
    value = text.strip()
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(field=name, detail=f"{text!r} is not an ISO date (2026-12-05) or "
                               "date-time (2026-12-05T10:00)") from None
    return parsed if parsed.tzinfo else localize(parsed, ctx.tz, name)


def _instant(value: datetime | date, ctx: AppContext, *, end: bool = False) -> datetime:
    if isinstance(value, datetime):
        return value
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), ctx.tz).astimezone(UTC)


def _occurrence_json(ctx: AppContext, occ: Occurrence) -> dict[str, Any]:
    event, tz = occ.event, ctx.tz
    org = event.organisation
    item: dict[str, Any] = {
        "id": event.id, "uid": event.uid, "title": event.title, "all_day": event.all_day,
        "start": occ.start.astimezone(tz).isoformat(), "end": occ.end.astimezone(tz).isoformat(),
        "district": {"slug": event.district.slug, "name": event.district.name},
        "category": event.category, "audiences": list(event.audiences),
        "location": event.location, "description": event.description, "url": event.url,
        "registration_url": event.registration_url, "status": event.status,
        "recurring": bool(event.rrule), "rrule": event.rrule, "revision": event.revision,
        "organisation": ({"id": org.id, "name": org.name, "email": org.contact_email,
                          "phone": org.phone} if org else None),
    }
    if event.all_day:
        item["first_day"] = occ.first_day(tz).isoformat()
        item["last_day"] = occ.last_day(tz).isoformat()
    return item


def _conflict_json(ctx: AppContext, c: Conflict) -> dict[str, Any]:
    return {"event": _occurrence_json(ctx, Occurrence(c.event, c.start, c.end)),
            "severity": c.severity, "relation": c.relation,
            "organisation": c.organisation_name, "email": c.contact_email, "phone": c.phone}


def _shape_json(value: datetime | date) -> str:
    return value.isoformat()


class CalendarHttp:
    def __init__(self, ctx: AppContext, cache: FeedCache | None = None) -> None:
        self.ctx = ctx
        self.cache = cache or FeedCache(ctx)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/calendar.ics", self.feed, methods=["GET", "HEAD"]),
            Route("/calendar/{area}.ics", self.area_feed, methods=["GET", "HEAD"]),
            Route("/calendar", self.page, methods=["GET"]),
            Route("/api/events", self.api_events, methods=["GET"]),
            Route("/api/conflicts", self.api_conflicts, methods=["GET"]),
        ]

    # --- feeds ---------------------------------------------------------------------

    async def feed(self, request: Request) -> Response:
        try:
            flt = parse_filter(self.ctx, request.query_params)
        except InfranetError as exc:
            return Response(exc.localized("en") + "\n", status_code=400, media_type="text/plain")
        return await self._serve(request, flt)

    async def area_feed(self, request: Request) -> Response:
        params: dict[str, list[str]] = {k: request.query_params.getlist(k)
                                        for k in request.query_params}
        params["area"] = [*params.get("area", []), request.path_params["area"]]
        try:
            flt = parse_filter(self.ctx, params)
        except InfranetError as exc:
            return Response(exc.localized("en") + "\n", status_code=404, media_type="text/plain")
        return await self._serve(request, flt)

    async def _serve(self, request: Request, flt: FeedFilter) -> Response:
        feed: Feed = await self.cache.get(flt)
        headers = {
            "ETag": feed.etag,
            "Last-Modified": format_datetime(feed.last_modified.astimezone(UTC), usegmt=True),
            "Cache-Control": "public, max-age=300",
            "Vary": "Accept-Encoding",
        }
        if _not_modified(request, feed):
            return Response(status_code=304, headers=headers)
        body = feed.body
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            body = await feed.gzipped()
            headers["Content-Encoding"] = "gzip"
        headers["Content-Disposition"] = 'inline; filename="calendar.ics"'
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return Response(status_code=200, headers=headers, media_type="text/calendar; charset=utf-8")
        return Response(body, headers=headers, media_type="text/calendar; charset=utf-8")

    # --- page ------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        lang = normalise_language(request.query_params.get("lang") or "pl")
        error = ""
        try:
            flt = parse_filter(self.ctx, request.query_params)
        except InfranetError as exc:
            flt, error = FeedFilter(), exc.localized(lang)
        return HTMLResponse(render_page(self.ctx, flt, lang, error))

    # --- JSON API ---------------------------------------------------------------------

    async def api_events(self, request: Request) -> Response:
        ctx, q = self.ctx, request.query_params
        try:
            flt = parse_filter(ctx, q)
            now = ctx.now()
            start = _instant(_parse_when(q["start"], ctx, "start"), ctx) if q.get("start") else now
            end = (_instant(_parse_when(q["end"], ctx, "end"), ctx, end=True) if q.get("end")
                   else start + timedelta(days=30))
            if end <= start:
                raise ValidationFailed(field="end", detail="must be after start")
            if end - start > timedelta(days=MAX_API_DAYS):
                raise ValidationFailed(field="end", detail=f"the period is limited to {MAX_API_DAYS} days")
            async with ctx.db.read() as session:
                occs = await list_events(session, ctx, start=start, end=end, area=list(flt.areas) or None,
                                         category=list(flt.categories) or None,
                                         audience=list(flt.audiences) or None,
                                         organisation_id=list(flt.organisations) or None)
                items = [_occurrence_json(ctx, o) for o in occs[:MAX_API_ITEMS]]
        except InfranetError as exc:
            return _error(exc, request)
        return JSONResponse({"start": start.isoformat(), "end": end.isoformat(), "count": len(occs),
                             "truncated": len(occs) > MAX_API_ITEMS, "events": items})

    async def api_conflicts(self, request: Request) -> Response:
        ctx, q = self.ctx, request.query_params
        try:
            if not q.get("start") or not q.get("end"):
                raise ValidationFailed(field="start/end", detail="both are required, e.g. "
                                       "start=2026-12-05T10:00&end=2026-12-05T14:00 (or two dates)")
            start = _parse_when(q["start"], ctx, "start")
            end = _parse_when(q["end"], ctx, "end")
            all_day = not isinstance(start, datetime) and not isinstance(end, datetime)
            if isinstance(start, datetime) != isinstance(end, datetime):
                raise ValidationFailed(field="start/end", detail="give two dates or two date-times")
            areas = q.getlist("area")
            org = q.get("org")
            candidate = EventInput(
                title=q.get("title") or "?", start=start, end=end, all_day=all_day,
                district=areas[0] if areas else "region",
                category=q.get("category") or "other",
                audiences=[a for v in q.getlist("audience") for a in v.split(",") if a],
                organisation_id=int(org) if org and org.isdigit() else None)
            async with ctx.db.read() as session:
                report = await find_conflicts(session, ctx, candidate)
                suggestions = (await suggest_dates(session, ctx, candidate)
                               if report.conflicts or report.warnings else [])
                body = {
                    "conflicts": [_conflict_json(ctx, c) for c in report.conflicts],
                    "duplicates": [_conflict_json(ctx, c) for c in report.duplicates],
                    "warnings": [{"kind": w.kind, "day": w.day.isoformat(), "name": w.name,
                                  "name_en": w.name_en,
                                  "message": w.message(normalise_language(q.get("lang") or "pl"))}
                                 for w in report.warnings],
                    "suggestions": [{"start": _shape_json(s), "end": _shape_json(e)}
                                    for s, e in suggestions],
                }
        except InfranetError as exc:
            return _error(exc, request)
        return JSONResponse(body)


def _not_modified(request: Request, feed: Feed) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = [tag.strip().removeprefix("W/") for tag in inm.split(",")]
        return "*" in tags or feed.etag in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return feed.last_modified.replace(microsecond=0) <= since
    return False


_PAGE_TEXT = {
    "pl": {
        "title": "Kalendarz sieci — subskrypcja",
        "intro": "Wybierz powiaty, kategorie i odbiorców (nic nie zaznaczone = wszystko) i subskrybuj "
                 "kalendarz w swoim programie. Wydarzenia całego regionu i podregionu pojawiają się "
                 "też w kalendarzach powiatów.",
        "areas": "Obszar", "categories": "Kategorie", "audiences": "Odbiorcy",
        "show": "Pokaż adres kalendarza", "feed": "Adres kalendarza (ICS)", "webcal": "Subskrybuj (webcal)",
        "google": "Google Calendar: Inne kalendarze → + → Z adresu URL → wklej adres.",
        "outlook": "Outlook: Dodaj kalendarz → Subskrybuj z sieci Web → wklej adres.",
        "thunderbird": "Thunderbird: Nowy kalendarz → W sieci → wklej adres (format iCalendar).",
        "other": "English",
    },
    "en": {
        "title": "Network calendar — subscribe",
        "intro": "Pick districts, categories and audiences (nothing ticked = everything) and subscribe "
                 "in your calendar program. Region-wide and subregion events also appear in the "
                 "districts' calendars.",
        "areas": "Area", "categories": "Categories", "audiences": "Audiences",
        "show": "Show the calendar address", "feed": "Calendar address (ICS)", "webcal": "Subscribe (webcal)",
        "google": "Google Calendar: Other calendars → + → From URL → paste the address.",
        "outlook": "Outlook: Add calendar → Subscribe from web → paste the address.",
        "thunderbird": "Thunderbird: New calendar → On the network → paste the address (iCalendar).",
        "other": "Polski",
    },
}


def render_page(ctx: AppContext, flt: FeedFilter, lang: str, error: str = "") -> str:
    text, esc = _PAGE_TEXT[lang], html.escape
    base = ctx.settings.http.public_base_url
    query = flt.query_string()
    feed_url = f"{base}/calendar.ics" + (f"?{query}" if query else "")
    webcal = "webcal://" + feed_url.split("://", 1)[1]

    def box(name: str, value: str, label: str, checked: bool) -> str:
        mark = " checked" if checked else ""
        return (f'<label><input type="checkbox" name="{esc(name)}" value="{esc(value)}"{mark}> '
                f"{esc(label)}</label>")

    area_boxes = []
    for sub in ctx.region.subregions:
        inner = " ".join(box("area", p.slug, p.name, p.slug in flt.areas) for p in sub.children)
        area_boxes.append(f"<p><b>{box('area', sub.slug, sub.name, sub.slug in flt.areas)}</b><br>"
                          f"{inner}</p>")
    cats = " ".join(box("category", c, category_label(c, lang), c in flt.categories) for c in CATEGORIES)
    auds = " ".join(box("audience", a, audience_label(a, lang), a in flt.audiences) for a in AUDIENCES)
    other = "en" if lang == "pl" else "pl"
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{esc(text['title'])}</title>
<style>body{{font-family:sans-serif;max-width:52rem;margin:1rem auto;padding:0 1rem}}
label{{margin-right:.8rem;white-space:nowrap}} code{{word-break:break-all}} .err{{color:#a00}}</style>
</head><body>
<p style="float:right"><a href="/calendar?lang={other}">{esc(text['other'])}</a></p>
<h1>{esc(text['title'])}</h1>
<p>{esc(ctx.region.name)}. {esc(text['intro'])}</p>
{f'<p class="err">{esc(error)}</p>' if error else ''}
<form method="get" action="/calendar"><input type="hidden" name="lang" value="{lang}">
<h2>{esc(text['areas'])}</h2>{''.join(area_boxes)}
<h2>{esc(text['categories'])}</h2><p>{cats}</p>
<h2>{esc(text['audiences'])}</h2><p>{auds}</p>
<p><button type="submit">{esc(text['show'])}</button></p></form>
<h2>{esc(text['feed'])}</h2>
<p><code id="feed">{esc(feed_url)}</code></p>
<p><a href="{esc(webcal)}">{esc(text['webcal'])}</a> · <a href="{esc(feed_url)}">ICS</a></p>
<ul><li>{esc(text['google'])}</li><li>{esc(text['outlook'])}</li><li>{esc(text['thunderbird'])}</li></ul>
</body></html>"""
