"""What an issue says: gathered once into a JSON snapshot, then cut per subscriber.

The snapshot (stored in `NewsletterIssue.content`) makes the issue immutable:
the archive shows exactly what was sent, and a resumed send after a restart
renders the same text. Each subscriber gets the items that match their
districts (an item in a powiat reaches those who chose the powiat or its
subregion; region-wide items reach everyone) and, for events, categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.event_links import event_url
from infranet.context import AppContext
from infranet.i18n import format_amount, format_date, format_span, t
from infranet.region import District, Region
from infranet.storage.models import (
    Moderation,
    NewsletterNote,
    Organisation,
    OrgStatus,
    Training,
    TrainingStatus,
)

SNAPSHOT_VERSION = 1


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


async def upcoming_events(session: AsyncSession, ctx: AppContext, start: datetime,
                          end: datetime) -> list[dict[str, Any]]:
    """Published, not cancelled occurrences in [start, end) from the calendar."""
    from infranet.calendar.event_queries import list_events

    occurrences = await list_events(session, ctx, start=start, end=end)
    items = []
    for occ in occurrences:
        event = occ.event
        if getattr(event, "status", "scheduled") == "cancelled":
            continue
        if getattr(event, "moderation", Moderation.PUBLISHED) != Moderation.PUBLISHED:
            continue
        organisation = getattr(event, "organisation", None)
        items.append({
            "event_id": event.id, "title": event.title, "start": _iso(occ.start),
            "end": _iso(occ.end), "all_day": bool(event.all_day),
            "district": event.district.slug if event.district is not None else ctx.region.root.slug,
            "category": event.category, "location": event.location, "url": event.url,
            "registration_url": event.registration_url,
            "organisation": organisation.name if organisation is not None else None,
        })
    items.sort(key=lambda e: (e["start"], e["title"]))
    return items


async def open_trainings(session: AsyncSession, ctx: AppContext, today: date) -> list[dict[str, Any]]:
    rows = (await session.scalars(
        select(Training).where(Training.status == TrainingStatus.OPEN, Training.deadline >= today,
                               Training.moderation == Moderation.PUBLISHED)
        .order_by(Training.deadline, Training.id))).all()
    return [{
        "id": tr.id, "title": tr.title, "deadline": tr.deadline.isoformat(),
        "district": tr.district.slug, "organisation": tr.organisation.name,
        "target_group": tr.target_group, "places": tr.places,
        "cost_pln": None if tr.cost_pln is None else f"{tr.cost_pln:.2f}",
        "apply_url": tr.apply_url, "apply_email": tr.apply_email,
    } for tr in rows]


async def new_organisations(session: AsyncSession, since: datetime,
                            until: datetime) -> list[dict[str, Any]]:
    rows = (await session.scalars(
        select(Organisation).where(Organisation.status == OrgStatus.ACTIVE,
                                   Organisation.approved_at >= since,
                                   Organisation.approved_at < until)
        .order_by(Organisation.approved_at, Organisation.id))).all()
    return [{"id": o.id, "name": o.name, "type": o.type, "website": o.website,
             "districts": [d.slug for d in o.districts]} for o in rows]


async def pending_notes(session: AsyncSession) -> list[NewsletterNote]:
    return list((await session.scalars(
        select(NewsletterNote).where(NewsletterNote.issue_id.is_(None))
        .order_by(NewsletterNote.created_at, NewsletterNote.id))).all())




def newsletter_title(ctx: AppContext, lang: str) -> str:
    """The newsletter's name in `lang`. `[newsletter] title` is a proper name the network
    chose and is kept as typed; left at its default (a Polish description, not a name),
    the English issue gets the English description instead."""
    from infranet.config import NewsletterSettings

    configured = ctx.settings.newsletter.title
    if configured == NewsletterSettings.model_fields["title"].default:
        return t(lang, "newsletter.default_title")
    return configured


def feed_links(ctx: AppContext) -> list[dict[str, str]]:
    """The calendar's ICS feed of the whole region and its page with the per-area feeds."""
    base = ctx.settings.http.public_base_url
    return [{"kind": "all", "url": f"{base}/calendar.ics"},
            {"kind": "picker", "url": f"{base}/calendar"}]


async def gather(session: AsyncSession, ctx: AppContext, *, start: datetime, end: datetime,
                 since: datetime, notes: list[NewsletterNote]) -> dict[str, Any]:
    today = start.astimezone(ctx.tz).date()
    return {
        "version": SNAPSHOT_VERSION,
        "period_start": _iso(start), "period_end": _iso(end),
        "events": await upcoming_events(session, ctx, start, end),
        "trainings": await open_trainings(session, ctx, today),
        "organisations": await new_organisations(session, since, start),
        "note": "\n\n".join(n.text for n in notes) or None,
        "feeds": feed_links(ctx),
    }


def has_news(content: dict[str, Any]) -> bool:
    return bool(content["events"] or content["trainings"] or content["organisations"]
                or content.get("note"))


# --- selection per subscriber ---------------------------------------------------------


class Matcher:
    """Answers "does an item in these districts concern this subscriber?" quickly
    (cached per distinct preference set; 10,000 subscribers share few)."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self._cache: dict[tuple[tuple[str, ...], str], bool] = {}

    def _district(self, slug: str) -> District | None:
        return self.region.by_slug.get(slug)

    def matches(self, chosen: tuple[str, ...], item_slug: str) -> bool:
        if not chosen:
            return True
        key = (chosen, item_slug)
        found = self._cache.get(key)
        if found is None:
            item = self._district(item_slug)
            if item is None or item.kind == "region":
                found = True  # unknown (renamed) or region-wide: everyone
            else:
                found = any((d := self._district(s)) is not None and d.overlaps(item) for s in chosen)
            self._cache[key] = found
        return found


@dataclass(frozen=True)
class Selection:
    events: tuple[int, ...]
    trainings: tuple[int, ...]
    organisations: tuple[int, ...]
    note: bool
    # The calendar feed of exactly the reader's districts and categories, as the query of
    # /calendar.ics ("" for a reader of everything: the link goes to the feed picker).
    feed_query: str = ""

    @property
    def empty(self) -> bool:
        return not (self.events or self.trainings or self.organisations or self.note)


def select_for(content: dict[str, Any], matcher: Matcher, districts: list[str] | tuple[str, ...],
               categories: list[str] | tuple[str, ...]) -> Selection:
    """Indexes of the items of `content` meant for one subscriber's preferences."""
    chosen = tuple(sorted(districts or ()))
    cats = set(categories or ())
    events = tuple(i for i, e in enumerate(content["events"])
                   if matcher.matches(chosen, e["district"]) and (not cats or e["category"] in cats))
    # Training notices are trainings: a reader who chose categories without "training"
    # (fairs only, say) does not get them.
    wants_trainings = not cats or "training" in cats
    trainings = tuple(i for i, tr in enumerate(content["trainings"])
                      if wants_trainings and matcher.matches(chosen, tr["district"]))
    orgs = tuple(i for i, o in enumerate(content["organisations"])
                 if not o["districts"] or any(matcher.matches(chosen, s) for s in o["districts"]))
    feed = [("area", slug) for slug in chosen] + [("category", c) for c in sorted(cats)]
    return Selection(events, trainings, orgs, bool(content.get("note")), urlencode(feed))


def everything(content: dict[str, Any]) -> Selection:
    return Selection(tuple(range(len(content["events"]))), tuple(range(len(content["trainings"]))),
                     tuple(range(len(content["organisations"]))), bool(content.get("note")))


# --- view model for the templates ---------------------------------------------------------


def period_label(content: dict[str, Any], ctx: AppContext, lang: str) -> str:
    start = datetime.fromisoformat(content["period_start"]).astimezone(ctx.tz).date()
    end = (datetime.fromisoformat(content["period_end"]) - timedelta(seconds=1)).astimezone(ctx.tz).date()
    return f"{format_date(start, lang, weekday=False)} – {format_date(end, lang, weekday=False)}"


def prepare(content: dict[str, Any], ctx: AppContext, lang: str) -> dict[str, Any]:
    """Every item of the issue ready for the templates, in the reader's language and the
    region's time zone: events carry their day and area (subregion) for grouping."""
    region = ctx.region
    tz = ctx.tz
    region_wide = t(lang, "newsletter.region_wide")
    base_url = ctx.settings.http.public_base_url  # each event links to its page on the site

    def area_of(slug: str) -> tuple[int, str]:
        district = region.by_slug.get(slug)
        if district is None or district.kind == "region":
            return (-1, region_wide)
        sub = district if district.kind == "subregion" else (district.parent or district)
        return (region.subregions.index(sub) if sub in region.subregions else 99, sub.name)

    def district_name(slug: str) -> str:
        district = region.by_slug.get(slug)
        return region_wide if district is None or district.kind == "region" else district.name

    events = []
    for e in content["events"]:
        start, end = datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"])
        day = start.astimezone(tz).date()
        events.append(dict(e, when=format_span(start, end, tz, lang, all_day=e["all_day"]),
                           page=event_url(base_url, e["event_id"], e["title"]),
                           district_name=district_name(e["district"]),
                           category_label=t(lang, f"calendar.category.{e['category']}"),
                           day=day, day_label=format_date(day, lang), area=area_of(e["district"])))
    trainings = [dict(tr, deadline_text=format_date(date.fromisoformat(tr["deadline"]), lang),
                      district_name=district_name(tr["district"]),
                      cost_pln=None if tr["cost_pln"] is None else format_amount(tr["cost_pln"], lang))
                 for tr in content["trainings"]]
    organisations = [dict(o, district_names=[district_name(s) for s in o["districts"]] or [region_wide])
                     for o in content["organisations"]]
    return {"events": events, "trainings": trainings, "organisations": organisations,
            "note": content.get("note"),
            "feeds": [dict(f, label=t(lang, f"newsletter.feed.{f['kind']}", region=region.name))
                      for f in content.get("feeds", [])],
            "period": period_label(content, ctx, lang)}
