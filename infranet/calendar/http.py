"""The calendar's HTTP routes: ICS feeds and a small JSON API (the page that picks a feed,
`/calendar`, is the public site's: `infranet.site.embed`).

- `GET /calendar.ics?area=…&category=…&audience=…&org=…` (repeated or comma-separated)
- `GET /calendar/<area>.ics` (area: slug or TERYT/NUTS code; same query filters)
- `GET /api/events?start=…&end=…&area=…&category=…&audience=…&org=…[&limit=…]` — a page of
  occurrences; `next` in the answer is the URL of the following page (null on the last)
- `GET /api/conflicts?start=…&end=…&area=…[&audience=…&category=…&title=…&org=…&rrule=…&exdate=…]`
  — a series with `rrule` (its exceptions: `exdate`); several `area` values: checked in each

Feeds carry ETag and Last-Modified, answer If-None-Match / If-Modified-Since with 304
and are gzipped when the client asks (the gzip body has its own ETag); bodies come from
`FeedCache`, kept whole or streamed. Every parameter is parsed by `infranet.web.params`
(bounded ids, dates, lengths): bad input is a 400 in the language of `lang`, never a 500.
The routes are here; the JSON shapes are `api_json`, the page cursors `api_cursors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from infranet.calendar import recurrence
from infranet.calendar.api_cursors import Cursors
from infranet.calendar.api_json import conflict_json, dumps, occurrence_json, shape_json
from infranet.calendar.conflicts import find_conflicts
from infranet.calendar.dates import localize
from infranet.calendar.day_warnings import DayWarning
from infranet.calendar.event_input import TITLE_MAX, EventInput
from infranet.calendar.event_pages import EventPage, page_events
from infranet.calendar.feed import FeedCache
from infranet.calendar.feed_filter import FeedFilter, filter_values, parse_filter
from infranet.calendar.feed_response import stream_body
from infranet.calendar.free_dates import suggest_dates
from infranet.context import AppContext
from infranet.errors import InfranetError, ValidationFailed
from infranet.i18n import normalise_language
from infranet.web.params import (
    check_length,
    parse_date_or_time,
    parse_id,
    parse_optional_id,
)

T = TypeVar("T")

MAX_API_DAYS = 400
PAGE_READERS = 2
MAX_API_ITEMS = 2000
# `/api/conflicts` checks the candidate once per area: a few districts, not the region's list.
MAX_CONFLICT_AREAS = 10
# Occurrences encoded per json.dumps call (well under a millisecond each).
JSON_BATCH = 100



def _lang(request: Request, default: str) -> str:
    value = request.query_params.get("lang")
    return normalise_language(value[:20] if value else default)


def _error(exc: InfranetError, request: Request) -> JSONResponse:
    return JSONResponse({"error": exc.localized(_lang(request, "en"))}, status_code=400)


def _parse_when(text: str, ctx: AppContext, name: str) -> datetime | date:
    """An ISO date or date-time within the years `infranet.web.params` allows; a naive
    date-time is wall-clock time in the region's zone."""
    parsed = parse_date_or_time(text, name)
    if isinstance(parsed, datetime) and parsed.tzinfo is None:
        return localize(parsed, ctx.tz, name)
    return parsed


def _instant(value: datetime | date, ctx: AppContext, *, end: bool = False) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), ctx.tz).astimezone(UTC)


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding value accepts gzip (`gzip;q=0` refuses it)."""
    for item in header.lower().split(","):
        token, _, rest = item.partition(";")
        if token.strip() not in ("gzip", "x-gzip"):
            continue
        quality = 1.0
        for param in rest.split(";"):
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


class CalendarHttp:
    """The routes. `cpu` runs the CPU-bound part of an answer (rows to objects, JSON) away
    from the event loop; one worker thread keeps the loop's wait for the GIL short (None:
    asyncio's default executor)."""

    def __init__(self, ctx: AppContext, cache: FeedCache | None = None, *,
                 cpu: Executor | None = None) -> None:
        self.ctx = ctx
        self.cache = cache or FeedCache(ctx)
        self.cursors = Cursors(ctx.secret_key)
        self.cpu = cpu
        # Pages read at once. Each reader's database thread converts rows holding the GIL;
        # more of them at a time add nothing to throughput (one core's worth of GIL) but make
        # the event loop, and every short request, wait longer for the GIL.
        self._readers = asyncio.Semaphore(PAGE_READERS)

    async def _offload(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.cpu, work)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/calendar.ics", self.feed, methods=["GET", "HEAD"]),
            Route("/calendar/{area}.ics", self.area_feed, methods=["GET", "HEAD"]),
            Route("/api/events", self.api_events, methods=["GET"]),
            Route("/api/conflicts", self.api_conflicts, methods=["GET"]),
        ]

    # --- feeds ---------------------------------------------------------------------

    async def feed(self, request: Request) -> Response:
        try:
            flt = parse_filter(self.ctx, request.query_params)
        except InfranetError as exc:
            return Response(exc.localized(_lang(request, "en")) + "\n", status_code=400,
                            media_type="text/plain")
        return await self._serve(request, flt)

    async def area_feed(self, request: Request) -> Response:
        params: dict[str, list[str]] = {k: request.query_params.getlist(k)
                                        for k in request.query_params}
        params["area"] = [*params.get("area", []), request.path_params["area"]]
        try:
            flt = parse_filter(self.ctx, params)
        except InfranetError as exc:
            return Response(exc.localized(_lang(request, "en")) + "\n", status_code=404,
                            media_type="text/plain")
        return await self._serve(request, flt)

    async def _serve(self, request: Request, flt: FeedFilter) -> Response:
        feed = await self.cache.get(flt)
        parts = feed.parts() if feed.streamed else None  # at once: no await since `get`
        zipped = accepts_gzip(request.headers.get("accept-encoding", ""))
        etag = feed.gzip_etag if zipped else feed.etag
        headers = {
            "ETag": etag,
            "Last-Modified": format_datetime(feed.last_modified.astimezone(UTC), usegmt=True),
            "Cache-Control": "public, max-age=300",
            "Vary": "Accept-Encoding",
        }
        if _not_modified(request, etag, feed.last_modified):
            return Response(status_code=304, headers=headers)
        headers["Content-Disposition"] = 'inline; filename="calendar.ics"'
        if zipped:
            headers["Content-Encoding"] = "gzip"
        media = "text/calendar; charset=utf-8"
        if parts is not None:
            if not zipped:
                headers["Content-Length"] = str(feed.size)
            if request.method == "HEAD":
                return Response(status_code=200, headers=headers, media_type=media)
            return StreamingResponse(stream_body(parts, gzipped=zipped), headers=headers, media_type=media)
        assert feed.body is not None
        body = await self.cache.gzipped(feed) if zipped else feed.body
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return Response(status_code=200, headers=headers, media_type=media)
        return Response(body, headers=headers, media_type=media)

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
                raise ValidationFailed("calendar.error.period_end", field="end")
            if end - start > timedelta(days=MAX_API_DAYS):
                raise ValidationFailed("calendar.error.period_long", field="end", days=MAX_API_DAYS)
            limit = MAX_API_ITEMS
            if q.get("limit"):
                try:
                    limit = parse_id(q["limit"], "limit")
                except ValidationFailed:
                    limit = 0
                if not 1 <= limit <= MAX_API_ITEMS:
                    raise ValidationFailed("calendar.error.limit", field="limit", limit=MAX_API_ITEMS)
            query = f"{start.isoformat()}\0{end.isoformat()}\0{flt.query_string()}"
            after = self.cursors.read(query, q["cursor"]) if q.get("cursor") else None
            async with self._readers, ctx.db.read() as session:
                page = await page_events(session, ctx, start=start, end=end, limit=limit, after=after,
                                         area=list(flt.areas) or None,
                                         category=list(flt.categories) or None,
                                         audience=list(flt.audiences) or None,
                                         organisation_id=list(flt.organisations) or None,
                                         offload=self._offload)
        except InfranetError as exc:
            return _error(exc, request)
        next_url = None
        if page.next_after is not None:
            pairs = [("start", start.isoformat()), ("end", end.isoformat())]
            if q.get("limit"):
                pairs.append(("limit", str(limit)))
            if q.get("lang"):
                pairs.append(("lang", _lang(request, "en")))
            pairs.append(("cursor", self.cursors.make(query, page.next_after)))
            filters = flt.query_string()
            next_url = "/api/events?" + (f"{filters}&" if filters else "") + urlencode(pairs)
        return Response(await self._page_json(page, start, end, next_url), media_type="application/json")

    async def _page_json(self, page: EventPage, start: datetime, end: datetime,
                         next_url: str | None) -> bytes:
        """The answer's JSON, made in the worker thread (2,000 occurrences take tens of
        milliseconds), a batch of occurrences per `json.dumps` call: one C call holds the GIL
        throughout, and the event loop needs it back within milliseconds."""
        ctx = self.ctx
        head = dumps({"start": start.isoformat(), "end": end.isoformat(), "count": page.total,
                       "truncated": page.next_after is not None, "next": next_url})
        occurrences = page.occurrences

        def encode() -> bytes:
            pieces = [dumps([occurrence_json(ctx, o) for o in occurrences[i:i + JSON_BATCH]])[1:-1]
                      for i in range(0, len(occurrences), JSON_BATCH)]
            return head[:-1] + b',"events":[' + b",".join(pieces) + b"]}"

        return await self._offload(encode)

    async def api_conflicts(self, request: Request) -> Response:
        """The conflicts of a candidate event: `rrule` (and `exdate`, repeated or
        comma-separated ISO dates or date-times) make it a series; with several `area`
        values it is checked in each (at most MAX_CONFLICT_AREAS), the answer merging what
        each found (`area` in every item says where) and suggesting only dates free in all."""
        ctx, q = self.ctx, request.query_params
        try:
            if not q.get("start") or not q.get("end"):
                raise ValidationFailed("calendar.error.start_end", field="start/end")
            start = _parse_when(q["start"], ctx, "start")
            end = _parse_when(q["end"], ctx, "end")
            all_day = not isinstance(start, datetime) and not isinstance(end, datetime)
            if isinstance(start, datetime) != isinstance(end, datetime):
                raise ValidationFailed("calendar.error.date_kinds", field="start/end")
            given = filter_values(q, "area")
            if len(given) > MAX_CONFLICT_AREAS:
                raise ValidationFailed("calendar.error.too_many_values", field="area", count=len(given),
                                       limit=MAX_CONFLICT_AREAS)
            areas = list(dict.fromkeys(given)) or ["region"]
            candidate = EventInput(
                title=check_length(q.get("title") or "?", "title", TITLE_MAX), start=start, end=end,
                all_day=all_day, district=areas[0],
                category=check_length(q.get("category") or "other", "category"),
                audiences=filter_values(q, "audience"),
                organisation_id=parse_optional_id(q.get("org"), "org"),
                rrule=self._candidate_rule(q))
            async with ctx.db.read() as session:
                body = await self._conflicts_body(session, candidate, areas, _lang(request, "pl"))
        except InfranetError as exc:
            return _error(exc, request)
        return JSONResponse(body)

    def _candidate_rule(self, q: Any) -> str | None:
        """`rrule` with the `exdate` values as an EXDATE line (`recurrence.canonical_rule`)."""
        rule = check_length(q.get("rrule") or "", "rrule", recurrence.TEXT_MAX).strip()
        if "\n" in rule or "\r" in rule:
            raise ValidationFailed("calendar.error.rrule", field="rrule", detail="one line: the RRULE only")
        exdates = filter_values(q, "exdate")
        if exdates and not rule:
            raise ValidationFailed("calendar.error.rrule", field="exdate", detail="exdate needs an rrule")
        if not rule:
            return None
        stamps = []
        for text in exdates:
            value = _parse_when(text, self.ctx, "exdate")
            stamps.append(f"{value.astimezone(UTC):%Y%m%dT%H%M%SZ}" if isinstance(value, datetime)
                          else f"{value:%Y%m%d}")
        return rule + ("\nEXDATE:" + ",".join(stamps) if stamps else "")

    async def _conflicts_body(self, session: AsyncSession, candidate: EventInput, areas: list[str],
                              lang: str) -> dict[str, Any]:
        ctx = self.ctx
        conflicts: dict[tuple[int, datetime], dict[str, Any]] = {}
        duplicates: dict[tuple[int, datetime], dict[str, Any]] = {}
        warnings: list[DayWarning] = []
        busy = False
        for area in areas:
            report = await find_conflicts(session, ctx, replace(candidate, district=area))
            busy = busy or bool(report.conflicts or report.warnings)
            warnings = warnings or report.warnings  # the same days, whatever the area
            for found, into in ((report.conflicts, conflicts), (report.duplicates, duplicates)):
                for c in found:  # an event near two of the areas: listed once, where it weighs most
                    key = (c.event.id, c.start)
                    if key not in into or (c.severity == "high" and into[key]["severity"] != "high"):
                        into[key] = {**conflict_json(ctx, c), "area": area}
        suggestions = await self._free_in_all(session, candidate, areas) if busy else []
        return {
            "conflicts": list(conflicts.values()),
            "duplicates": list(duplicates.values()),
            "warnings": [{"kind": w.kind, "day": w.day.isoformat(), "name": w.name, "name_en": w.name_en,
                          "message": w.message(lang)} for w in warnings],
            "suggestions": [{"start": shape_json(s), "end": shape_json(e)} for s, e in suggestions],
        }

    async def _free_in_all(self, session: AsyncSession, candidate: EventInput, areas: list[str],
                           ) -> list[tuple[datetime | date, datetime | date]]:
        """The first area's free dates that are free in the other areas as well."""
        if len(areas) == 1:
            return await suggest_dates(session, self.ctx, candidate)
        kept: list[tuple[datetime | date, datetime | date]] = []
        for start, end in await suggest_dates(session, self.ctx, candidate, n=3 * len(areas)):
            moved = replace(candidate, start=start, end=end)
            clean = True
            for area in areas[1:]:
                report = await find_conflicts(session, self.ctx, replace(moved, district=area))
                if report.conflicts or report.duplicates:
                    clean = False
                    break
            if clean:
                kept.append((start, end))
                if len(kept) == 3:
                    break
        return kept


def _not_modified(request: Request, etag: str, last_modified: datetime) -> bool:
    """If-None-Match against the ETag of the representation this request gets (gzip or not);
    If-Modified-Since only without If-None-Match (RFC 9110 13.2.2)."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = [tag.strip().removeprefix("W/") for tag in inm.split(",")]
        return "*" in tags or etag in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return last_modified.replace(microsecond=0) <= since
    return False
