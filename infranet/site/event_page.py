"""One event's public page, `/events/<id>-<slug>`, and its own calendar file `/events/<id>.ics`.

- Any slug (or none) after the id is accepted and answered with a 301 to the canonical
  path (`calendar.event_links.event_path`), so a link shared before a title changed still
  leads here; an unknown, unpublished or malformed id is a 404 page in the visitor's language.
- The page says everything about the event in words (when, how it repeats, where, who,
  what it costs), offers it to the visitor's calendar (the `.ics`, Google, Outlook) and
  describes it to search engines and link previews (schema.org JSON-LD, Open Graph).
- Everything shown is escaped for where it goes: HTML by Jinja's autoescape, the
  description escaped before its links are made, JSON-LD with `<`, `>` and `&` as \\u
  escapes so that no title can close the `<script>` block, the `.ics` by the calendar's writer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from infranet.calendar import recurrence
from infranet.calendar.event_input import audience_label, category_label
from infranet.calendar.event_links import event_path, slug
from infranet.calendar.event_words import (
    all_day_dates,
    next_occurrences,
    rule_in_words,
    when_in_words,
)
from infranet.calendar.ics_writer import CALENDAR_FOOTER, FeedRow, calendar_header, render_vevent
from infranet.calendar.public_events import PublicEvent, published_event
from infranet.i18n import LANGUAGES, format_amount, t
from infranet.network.public_contacts import PublicContacts, published_contacts
from infranet.site.pages import Site, lang_param, with_params
from infranet.storage.models import Event, EventStatus

# `/events/12`, `/events/12-any-slug`; ASCII digits only (Unicode digits are not ids).
_REF = re.compile(r"([0-9]{1,10})(?:-(.*))?", re.ASCII | re.DOTALL)
_ICS = re.compile(r"([0-9]{1,10})\.ics", re.ASCII)
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
NEXT_DATES = 5
DESCRIPTION_PREVIEW = 200


def linkify(text: str) -> Markup:
    """Plain text as HTML: every character escaped, each bare http(s) URL made a link
    (`rel="nofollow noopener"`); a full stop or bracket after a URL stays text. Line breaks
    are kept by the page's CSS (`white-space: pre-line`)."""
    out: list[str] = []
    position = 0
    for found in _URL.finditer(text):
        url = found.group(0).rstrip(_TRAILING)
        out.append(str(escape(text[position:found.start()])))
        out.append(f'<a href="{escape(url)}" rel="nofollow noopener">{escape(url)}</a>')
        position = found.start() + len(url)
    out.append(str(escape(text[position:])))
    return Markup("".join(out))  # noqa: S704  (every piece escaped above)


def json_ld(data: dict[str, Any]) -> Markup:
    """JSON for a `<script type="application/ld+json">` block: `<`, `>` and `&` as \\u
    escapes, so nothing in it can end the block or open a comment."""
    text = (json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return Markup(text)  # noqa: S704  (nothing in it can end the script block)


def is_online(location: str | None) -> bool:
    """A place that is an address on the web, or says "online"."""
    if not location:
        return False
    text = location.strip().lower()
    return text.startswith(("http://", "https://")) or text == "online"


def web_link(value: str | None) -> str | None:
    """Only http(s) addresses become links (no `javascript:` from a stored field)."""
    if value and value.strip().lower().startswith(("http://", "https://")):
        return value.strip()
    return None


@dataclass(frozen=True)
class Times:
    """The occurrence the page describes (the next one of a series) in the region's zone."""

    start: datetime
    end: datetime
    all_day: bool


def shown_times(event: Event, tz: tzinfo, now: datetime) -> Times:
    upcoming = next_occurrences(event.rrule, event.starts_at, event.ends_at, event.all_day, tz, now, 1)
    if upcoming:
        return Times(upcoming[0].start, upcoming[0].end, event.all_day)
    return Times(event.starts_at, event.ends_at, event.all_day)


def _utc_stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def google_link(title: str, times: Times, tz: tzinfo, details: str, location: str,
                rule: str | None) -> str:
    """Google Calendar's "create event" template; all-day dates are YYYYMMDD/the day after."""
    if times.all_day:
        first, after = all_day_dates(times.start, times.end, tz)
        dates = f"{first:%Y%m%d}/{after:%Y%m%d}"
    else:
        dates = f"{_utc_stamp(times.start)}/{_utc_stamp(times.end)}"
    params = [("action", "TEMPLATE"), ("text", title), ("dates", dates), ("details", details),
              ("location", location)]
    if rule:
        params.append(("recur", f"RRULE:{rule}"))
    return "https://calendar.google.com/calendar/render?" + urlencode(params, quote_via=quote)


def outlook_link(title: str, times: Times, tz: tzinfo, details: str, location: str) -> str:
    """Outlook.com's compose link; times in the region's zone with their offset."""
    if times.all_day:
        first, after = all_day_dates(times.start, times.end, tz)
        start, end = first.isoformat(), after.isoformat()
    else:
        start = times.start.astimezone(tz).isoformat(timespec="seconds")
        end = times.end.astimezone(tz).isoformat(timespec="seconds")
    params = [("subject", title), ("startdt", start), ("enddt", end), ("body", details),
              ("location", location), ("allday", "true" if times.all_day else "false")]
    return ("https://outlook.live.com/calendar/0/action/compose?"
            + urlencode(params, quote_via=quote))


def _schema_date(value: datetime, tz: tzinfo) -> str:
    """2026-12-05T10:00:00+01:00: local time with its offset, as schema.org asks."""
    return value.astimezone(tz).isoformat(timespec="seconds")


def structured_data(item: PublicEvent, times: Times, tz: tzinfo, url: str, district: str,
                    contacts: PublicContacts | None) -> dict[str, Any]:
    """schema.org Event: what search engines show of the event."""
    event = item.event
    data: dict[str, Any] = {"@context": "https://schema.org", "@type": "Event", "name": event.title,
                            "url": url}
    if times.all_day:
        first, after = all_day_dates(times.start, times.end, tz)
        last = date.fromordinal(after.toordinal() - 1)
        data["startDate"], data["endDate"] = first.isoformat(), last.isoformat()
    else:
        data["startDate"] = _schema_date(times.start, tz)
        data["endDate"] = _schema_date(times.end, tz)
    data["eventStatus"] = ("https://schema.org/EventCancelled" if event.status == EventStatus.CANCELLED
                           else "https://schema.org/EventScheduled")
    if is_online(event.location):
        data["eventAttendanceMode"] = "https://schema.org/OnlineEventAttendanceMode"
        data["location"] = {"@type": "VirtualLocation",
                            "url": web_link(event.location) or url}
    else:
        data["eventAttendanceMode"] = "https://schema.org/OfflineEventAttendanceMode"
        address: dict[str, Any] = {"@type": "PostalAddress", "addressRegion": district,
                                   "addressCountry": "PL"}
        if event.location:
            address["streetAddress"] = event.location
        data["location"] = {"@type": "Place", "name": event.location or district, "address": address}
    if item.organiser:
        organizer: dict[str, Any] = {"@type": "Organization", "name": item.organiser}
        website = web_link(contacts.website) if contacts else None
        if website and not event.organiser_name:
            organizer["url"] = website
        data["organizer"] = organizer
    if item.cost_pln is not None:
        data["offers"] = {"@type": "Offer", "price": f"{item.cost_pln:.2f}", "priceCurrency": "PLN",
                          "url": web_link(event.registration_url) or url}
        if item.cost_pln == 0:
            data["isAccessibleForFree"] = True
    if event.description:
        data["description"] = event.description
    return data


def event_file(site: Site, item: PublicEvent) -> bytes:
    """The event alone as an iCalendar file (a series with its RRULE), written by the
    calendar's writer, so that it reads exactly as the event does in the feeds."""
    ctx = site.ctx
    event = item.event
    org = event.organisation
    contacts = published_contacts(org) if org is not None else None
    row = FeedRow(
        id=event.id, uid=event.uid, title=event.title, description=event.description,
        location=event.location, url=event.url, registration_url=event.registration_url,
        starts_at=event.starts_at, ends_at=event.ends_at, all_day=event.all_day, rrule=event.rrule,
        category=event.category, audiences=tuple(event.audiences or ()), status=event.status,
        revision=event.revision, created_at=event.created_at, updated_at=event.updated_at,
        district_name=_district_name(site, event), district_slug=event.district.slug,
        org_name=item.organiser, org_email=contacts.email if contacts else None,
        org_phone=contacts.phone if contacts else None,
        org_website=contacts.website if contacts else None)
    now = ctx.now()
    return (calendar_header(ctx, event.title, now)
            + render_vevent(row, ctx.tz, str(ctx.tz), site.base_url) + CALENDAR_FOOTER)


def _district_name(site: Site, event: Event) -> str:
    known = site.ctx.region.by_slug.get(event.district.slug)
    return known.name if known is not None else event.district.name


def _cost_text(cost: Decimal | None, lang: str) -> str | None:
    if cost is None:
        return None
    if cost == 0:
        return t(lang, "site.event.free")
    decimals = 0 if cost == cost.to_integral_value() else 2
    return t(lang, "site.event.price", cost=format_amount(str(cost), lang, decimals=decimals))


def _calendar_text(item: PublicEvent, url: str) -> str:
    """The details put in Google's and Outlook's forms: the description and the page."""
    parts = [item.event.description or "", url]
    return "\n\n".join(part for part in parts if part)[:1500]


def page_params(site: Site, item: PublicEvent, lang: str) -> dict[str, Any]:
    """What `event.html` shows, all plain values (the template escapes them)."""
    ctx = site.ctx
    tz, now = ctx.tz, ctx.now()
    event = item.event
    path = event_path(event.id, event.title)
    url = site.base_url + path
    district = _district_name(site, event)
    times = shown_times(event, tz, now)
    org = event.organisation
    contacts = published_contacts(org) if org is not None else None
    place = ", ".join(x for x in (event.location, district) if x)
    online = is_online(event.location)
    rule = recurrence.rule_part(event.rrule)
    series = [when_in_words(s.start, s.end, event.all_day, tz, lang)
              for s in next_occurrences(event.rrule, event.starts_at, event.ends_at, event.all_day,
                                        tz, now, NEXT_DATES)] if rule else []
    details = _calendar_text(item, url)
    description = event.description or ""
    preview = description if len(description) <= DESCRIPTION_PREVIEW else (
        description[:DESCRIPTION_PREVIEW - 1].rstrip() + "…")
    when = when_in_words(times.start, times.end, event.all_day, tz, lang)
    alternates = [{"lang": code, "href": url + ("" if code == "pl" else f"?lang={code}")}
                  for code in LANGUAGES]
    return {
        "title": event.title, "event": event, "cancelled": event.status == EventStatus.CANCELLED,
        "when": when, "repeats": rule_in_words(event.rrule, tz, lang), "next_dates": series,
        "location": event.location, "online": online,
        "online_link": web_link(event.location) if online else None,
        "map_link": None if online or not event.location else
        "https://www.openstreetmap.org/search?query=" + quote(place, safe=""),
        "district": district, "category": category_label(event.category, lang),
        "audiences": [audience_label(a, lang) for a in event.audiences or ()],
        "organiser": item.organiser, "contacts": contacts,
        "website": web_link(contacts.website) if contacts else None,
        "registration": web_link(event.registration_url),
        "organiser_link": web_link(event.url),
        "cost": _cost_text(item.cost_pln, lang),
        "description": linkify(description) if description else None,
        "ics": f"/events/{event.id}.ics",
        "google": google_link(event.title, Times(event.starts_at, event.ends_at, event.all_day)
                              if rule else times, tz, details, place, rule),
        "outlook": outlook_link(event.title, times, tz, details, place),
        "canonical": url, "alternates": alternates, "og_description": preview or when,
        "json_ld": json_ld(structured_data(item, times, tz, url, district, contacts)),
    }


def routes(site: Site) -> list[BaseRoute]:
    async def not_found(request: Request, lang: str) -> Response:
        return site.page(request, "problem.html", lang, status_code=404,
                         title=t(lang, "site.event.not_found_title"),
                         message=t(lang, "site.event.not_found"))

    async def event(request: Request) -> Response:
        lang = site.language(request)
        ref = str(request.path_params.get("ref", ""))
        ics = _ICS.fullmatch(ref)
        found = ics or _REF.fullmatch(ref)
        if found is None:
            return await not_found(request, lang)
        async with site.ctx.db.read() as session:
            item = await published_event(session, int(found.group(1)))
            if item is None:
                return await not_found(request, lang)
            if ics is not None:
                # ASCII letters, digits and hyphens only: safe in the header and on any disk
                name = ((slug(item.event.title)[:40].strip("-") or "event")
                        + f"-{item.event.id}.ics")
                return Response(event_file(site, item), media_type="text/calendar; charset=utf-8",
                                headers={"Content-Disposition": f'attachment; filename="{name}"'})
            canonical = event_path(item.event.id, item.event.title)
            if request.url.path != canonical:
                return RedirectResponse(with_params(canonical, lang_param(lang)
                                                    if "lang" in request.query_params else []),
                                        status_code=301)
            params = page_params(site, item, lang)
        return site.page(request, "event.html", lang, **params)

    return [Route("/events/{ref}", event, methods=["GET", "HEAD"], name="event_page")]
