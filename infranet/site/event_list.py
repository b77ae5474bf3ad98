"""`/` and `/events`: the network's upcoming events, by day or as a month grid.

What a visitor can ask, all in the URL (so that every view can be shared and bookmarked):
`area` (powiat or subregion slugs, repeatable; an area includes its parents' events, as
the feeds do), `category`, `audience`, `org` (the feeds' own names, read by the feeds'
`parse_filter`), `q` (words looked for in title, description, place and organiser; no
diacritics needed, any case), `from` (a day to start the list at), `after` (where the
"later events" page starts), `view=month` with `month=2026-12`. A bad value is a 400 page
saying which one and how to fix it, in the page's language.

Cancelled occurrences stay in the list, marked: someone who planned to go looks for the
event where it was and should learn that it is off, not find it gone.

The listing rules are the calendar's (`infranet.calendar.site_listing`); this module only
reads the parameters, calls it in one read transaction and renders.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from babel.dates import format_date as babel_date
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from infranet.calendar import wallclock
from infranet.calendar.event_input import AUDIENCES, CATEGORIES, audience_label, category_label
from infranet.calendar.event_links import event_path
from infranet.calendar.event_queries import Occurrence
from infranet.calendar.event_search import query_words
from infranet.calendar.feed_filter import FeedFilter, parse_filter
from infranet.calendar.site_listing import Day, DayItem, Upcoming, month_days, upcoming
from infranet.calendar.summary import EventSummary
from infranet.errors import InfranetError
from infranet.i18n import format_date, format_span, t, weekday_name
from infranet.network.orgs import list_organisations
from infranet.site.pages import Site, lang_param, with_params
from infranet.storage.models import EventStatus
from infranet.web.params import MAX_YEAR, MIN_YEAR, parse_date

# Occurrences on one page of the list; the "later events" link gives the next ones.
PAGE_SIZE = 50
# Events a month grid shows on one day; "+k more" links to the day's list.
PER_DAY = 4
# How far ahead the list looks (a year and a day: next year's same date included).
WINDOW = timedelta(days=366)
# The organisation picker's names are read again after this many seconds.
ORG_CACHE_SECONDS = 300.0
# The query string is refused above this length (no filter a visitor picks is that long).
MAX_QUERY_STRING = 8000


class Problem(Exception):
    """A parameter the page cannot use; `message` is already in the page's language."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Asked:
    """What the visitor asked for, read and checked from the query string."""

    flt: FeedFilter
    q: str
    words: tuple[str, ...]
    month: date | None  # the first day of the month view; None: the list
    from_day: date | None
    after: tuple[datetime, int] | None

    def params(self) -> list[tuple[str, str]]:
        """The filters and the search, as the URL carries them (no view, no paging)."""
        pairs = [("area", a) for a in self.flt.areas] + [("category", c) for c in self.flt.categories]
        pairs += [("audience", a) for a in self.flt.audiences]
        pairs += [("org", str(o)) for o in self.flt.organisations]
        return pairs + ([("q", self.q)] if self.q else [])


def read_asked(site: Site, request: Request, lang: str) -> Asked:
    """The parameters, checked; raises Problem with a message naming what is wrong."""
    params = request.query_params
    if len(request.url.query) > MAX_QUERY_STRING:
        raise Problem(t(lang, "site.events.error.too_long_query", limit=MAX_QUERY_STRING))
    try:
        flt = parse_filter(site.ctx, params)
    except InfranetError as exc:
        raise Problem(t(lang, "site.events.error.filter", detail=_filter_detail(exc, lang))) from None
    q = " ".join((params.get("q") or "").split())
    try:
        words = query_words(q)
    except InfranetError:
        raise Problem(t(lang, "site.events.error.q", length=len(q), limit=200)) from None
    view = params.get("view") or "list"
    if view not in ("list", "month"):
        raise Problem(t(lang, "site.events.error.view", value=view[:40]))
    month = _month(params.get("month"), site, lang) if view == "month" else None
    from_day = None
    if params.get("from"):
        try:
            from_day = parse_date(params["from"], "from")
        except InfranetError:
            raise Problem(t(lang, "site.events.error.from", value=params["from"][:40])) from None
    after = _after(params.get("after"), lang) if view == "list" else None
    return Asked(flt, q, words, month, from_day, after)


# The feeds' parameter names -> the labels the form shows them by.
_FILTER_LABELS = {"area": "site.events.area", "district": "site.events.area",
                  "category": "site.events.category", "audience": "site.events.audience",
                  "org": "site.events.organisation"}


def _filter_detail(exc: InfranetError, lang: str) -> str:
    """The feeds' message about a filter, naming it as the form does, as one sentence."""
    label = _FILTER_LABELS.get(str(exc.params.get("field")))
    if label is not None:
        exc = type(exc)(exc.key, **{**exc.params, "field": t(lang, label)})
    detail = exc.localized(lang).strip()
    return detail if detail.endswith((".", "!", "?")) else detail + "."


def _month(text: str | None, site: Site, lang: str) -> date:
    if not text:
        return site.ctx.now().astimezone(site.ctx.tz).date().replace(day=1)
    parts = text.strip().split("-")
    if (len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts)
            and len(parts[0]) == 4 and len(parts[1]) == 2):
        year, month = int(parts[0]), int(parts[1])
        if MIN_YEAR <= year < MAX_YEAR and 1 <= month <= 12:
            return date(year, month, 1)
    raise Problem(t(lang, "site.events.error.month", value=text[:40]))


def _after(text: str | None, lang: str) -> tuple[datetime, int] | None:
    """`after=<microseconds since 1970>.<event id>`: the last occurrence of the previous page."""
    if not text:
        return None
    parts = text.split(".")
    if len(text) <= 40 and len(parts) == 2 and all(p.isascii() and p.isdigit() and p for p in parts):
        micros, event_id = int(parts[0]), int(parts[1])
        if micros < 7 * 10**15 and event_id < 2**31:
            return _EPOCH + timedelta(microseconds=micros), event_id
    raise Problem(t(lang, "site.events.error.after"))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventList:
    """The list and month pages, with the organisation picker's names kept a while."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._orgs: tuple[float, list[tuple[int, str]]] = (-1e9, [])

    async def page(self, request: Request) -> Response:
        site = self.site
        lang = site.language(request)
        try:
            asked = read_asked(site, request, lang)
        except Problem as problem:
            return self.render(request, lang, None, error=problem.message, status_code=400)
        async with site.ctx.db.read() as session:
            orgs = await self._organisations(session)
            if asked.month is not None:
                last = (asked.month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
                days = await month_days(session, site.ctx, asked.flt, asked.words,
                                        first=asked.month, last=last, per_day=PER_DAY)
                return self.render(request, lang, asked, orgs=orgs, month=self.month_view(asked, lang, days))
            start = self._start(asked)
            found = await upcoming(session, site.ctx, asked.flt, asked.words, start=start,
                                   end=start + WINDOW, limit=PAGE_SIZE, after=asked.after)
        return self.render(request, lang, asked, orgs=orgs, days=self.by_day(asked, lang, found, start),
                           later=self.later_link(asked, lang, found))

    def _start(self, asked: Asked) -> datetime:
        ctx = self.site.ctx
        if asked.from_day is not None:
            return wallclock.local_midnight(asked.from_day, ctx.tz)
        return ctx.now()

    async def _organisations(self, session: Any) -> list[tuple[int, str]]:
        read_at, names = self._orgs
        if clock.monotonic() - read_at > ORG_CACHE_SECONDS:
            names = [(o.id, o.name) for o in await list_organisations(session)]
            self._orgs = (clock.monotonic(), names)
        return names

    # --- what the templates get -------------------------------------------------------

    def render(self, request: Request, lang: str, asked: Asked | None, *, error: str | None = None,
               status_code: int = 200, orgs: list[tuple[int, str]] | None = None,
               days: list[dict[str, Any]] | None = None, later: str | None = None,
               month: dict[str, Any] | None = None) -> Response:
        site = self.site
        shown = asked or Asked(FeedFilter(), "", (), None, None, None)
        title = t(lang, "site.events.title")
        if month is not None:
            title = t(lang, "site.events.month_title", month=month["name"])
        return site.page(
            request, "events.html", lang, status_code=status_code, title=title, error=error,
            asked=shown, form=self.form(shown, lang, orgs or []), active=self.active(shown, lang, orgs or []),
            days=days, later=later, month=month, links=self.links(shown, lang),
            headers={"Cache-Control": "no-store"} if error else None)

    def link(self, asked: Asked, lang: str, extra: dict[str, str] | None = None, *,
             drop: tuple[str, str] | None = None) -> str:
        """`/events` with the filters and search of `asked` (less `drop`), `extra` and the
        language: every view keeps what the visitor chose."""
        pairs = [p for p in asked.params() if p != drop] + list((extra or {}).items())
        return with_params("/events", pairs + lang_param(lang))

    def links(self, asked: Asked, lang: str) -> dict[str, str]:
        feed = asked.flt.query_string()
        rss = [*asked.params(), *lang_param(lang)]
        month = asked.month or self.site.ctx.now().astimezone(self.site.ctx.tz).date().replace(day=1)
        return {"ics": "/calendar.ics" + (f"?{feed}" if feed else ""),
                "rss": with_params("/events.rss", rss),
                "list": self.link(asked, lang),
                "month": self.link(asked, lang, {"view": "month", "month": f"{month:%Y-%m}"}),
                "clear": with_params("/events", lang_param(lang))}

    def form(self, asked: Asked, lang: str, orgs: list[tuple[int, str]]) -> dict[str, Any]:
        region = self.site.ctx.region
        flt = asked.flt
        groups = [{"label": sub.name, "options": [
            {"value": d.slug, "label": d.name, "selected": d.slug in flt.areas}
            for d in [sub, *sorted(sub.children, key=lambda c: c.name)]]} for sub in region.subregions]
        return {
            "areas": groups, "many_areas": len(flt.areas) > 1,
            "categories": [{"value": c, "label": category_label(c, lang), "selected": c in flt.categories}
                           for c in CATEGORIES], "many_categories": len(flt.categories) > 1,
            "audiences": [{"value": a, "label": audience_label(a, lang), "selected": a in flt.audiences}
                          for a in AUDIENCES], "many_audiences": len(flt.audiences) > 1,
            "orgs": [{"value": str(i), "label": n, "selected": i in flt.organisations} for i, n in orgs],
            "many_orgs": len(flt.organisations) > 1,
            "month": f"{asked.month:%Y-%m}" if asked.month else None,
            "category_links": [{"label": category_label(c, lang), "current": flt.categories == (c,),
                                "href": self._only(asked, lang, "category", c)} for c in CATEGORIES],
        }

    def _only(self, asked: Asked, lang: str, name: str, value: str) -> str:
        pairs = [p for p in asked.params() if p[0] != name] + [(name, value)]
        if asked.month is not None:
            pairs += [("view", "month"), ("month", f"{asked.month:%Y-%m}")]
        return with_params("/events", pairs + lang_param(lang))

    def active(self, asked: Asked, lang: str, orgs: list[tuple[int, str]]) -> list[dict[str, str]]:
        """The filters in force, each with a link that removes it (the rest kept)."""
        region = self.site.ctx.region.by_slug
        names = dict(orgs)
        shown: list[tuple[tuple[str, str], str]] = []
        shown += [(("area", a), region[a].name if a in region else a) for a in asked.flt.areas]
        shown += [(("category", c), category_label(c, lang)) for c in asked.flt.categories]
        shown += [(("audience", a), audience_label(a, lang)) for a in asked.flt.audiences]
        shown += [(("org", str(o)), names.get(o, f"#{o}")) for o in asked.flt.organisations]
        if asked.q:
            shown.append((("q", asked.q), f"„{asked.q}”" if lang == "pl" else f"“{asked.q}”"))
        extra = {"view": "month", "month": f"{asked.month:%Y-%m}"} if asked.month else {}
        return [{"label": label, "href": self.link(asked, lang, extra, drop=pair)} for pair, label in shown]

    def item(self, occurrence: Occurrence[EventSummary], lang: str, found: Upcoming) -> dict[str, Any]:
        tz = self.site.ctx.tz
        event = occurrence.event
        local_start, local_end = occurrence.start.astimezone(tz), occurrence.end.astimezone(tz)
        first, last = occurrence.first_day(tz), occurrence.last_day(tz)
        if event.all_day and first == last:
            when = t(lang, "site.events.all_day")
        elif first == last:
            when = f"{local_start:%H:%M}–{local_end:%H:%M}"
        else:
            when = format_span(occurrence.start, occurrence.end, tz, lang, all_day=event.all_day)
        return {"href": with_params(event_path(event.id, event.title), lang_param(lang)),
                "title": event.title, "when": when, "datetime": local_start.isoformat(),
                "place": event.location, "district": event.district.name,
                "category": category_label(event.category, lang),
                "organiser": found.organiser(event),
                "cancelled": event.status == EventStatus.CANCELLED}

    def by_day(self, asked: Asked, lang: str, found: Upcoming, start: datetime) -> list[dict[str, Any]]:
        """Occurrences under the day they start on (one running since an earlier day: under
        the list's first day, where a visitor looks for what is on now)."""
        tz = self.site.ctx.tz
        first_day = start.astimezone(tz).date()
        days: dict[date, list[dict[str, Any]]] = {}
        for occurrence in found.occurrences:
            day = max(occurrence.first_day(tz), first_day)
            days.setdefault(day, []).append(self.item(occurrence, lang, found))
        return [{"label": format_date(day, lang), "iso": day.isoformat(), "items": items}
                for day, items in days.items()]

    def later_link(self, asked: Asked, lang: str, found: Upcoming) -> str | None:
        if found.next_after is None:
            return None
        moment, event_id = found.next_after
        extra = {"from": asked.from_day.isoformat()} if asked.from_day else {}
        micros = (moment - _EPOCH) // timedelta(microseconds=1)
        return self.link(asked, lang, {**extra, "after": f"{micros}.{event_id}"})

    def _time(self, item: DayItem, day: date) -> str | None:
        """The start time, on the day it starts (not for all-day events, nor on the later
        days of an event that goes on over midnight)."""
        local = item.start.astimezone(self.site.ctx.tz)
        return None if item.all_day or local.date() != day else f"{local:%H:%M}"

    def month_view(self, asked: Asked, lang: str, days: list[Day]) -> dict[str, Any]:
        assert asked.month is not None
        first = asked.month
        previous = (first - timedelta(days=1)).replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        cells: list[dict[str, Any] | None] = [None] * first.weekday()
        for day in days:
            cells.append({
                "number": day.day.day, "label": format_date(day.day, lang), "iso": day.day.isoformat(),
                "items": [{"title": i.title, "cancelled": i.cancelled, "time": self._time(i, day.day),
                           "href": with_params(event_path(i.id, i.title), lang_param(lang))}
                          for i in day.items],
                "more": day.total - len(day.items),
                "day_href": self.link(asked, lang, {"from": day.day.isoformat()}),
            })
        cells += [None] * (-len(cells) % 7)
        weeks = [cells[i:i + 7] for i in range(0, len(cells), 7)]
        return {"name": babel_date(first, "LLLL y", locale=lang), "weeks": weeks,
                "weekdays": [weekday_name(i, lang) for i in range(7)],
                "previous": self.link(asked, lang, {"view": "month", "month": f"{previous:%Y-%m}"}),
                "previous_name": babel_date(previous, "LLLL y", locale=lang),
                "next": self.link(asked, lang, {"view": "month", "month": f"{following:%Y-%m}"}),
                "next_name": babel_date(following, "LLLL y", locale=lang)}


def routes(site: Site) -> list[BaseRoute]:
    pages = EventList(site)
    return [Route("/", pages.page, methods=["GET", "HEAD"]),
            Route("/events", pages.page, methods=["GET", "HEAD"])]
