"""`/trainings` (open training recruitments, nearest deadline first) and `/organisations`
(the network's directory), both read through the owning components and only rendered here.

- `GET /trainings[?area=…&org=…]` — `infranet.calendar.trainings.list_open_trainings`; each
  notice with its organisation, district, target group, places, cost, deadline, how to
  apply (only the ways the notice gives) and its sessions linking to their event pages.
- `GET /organisations[?area=…&service=…&type=…]` — active organisations from
  `infranet.network.orgs.list_organisations`, with only the contacts each chose to publish
  (`infranet.network.public_contacts`); members and contact persons are never shown.

A bad filter is a 400 page saying which field and why, in the page's language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from infranet.calendar.event_input import resolve_district
from infranet.calendar.event_links import event_path
from infranet.calendar.trainings import TrainingView, list_open_trainings
from infranet.errors import InfranetError, ValidationFailed
from infranet.i18n import format_amount, format_date, format_span, t
from infranet.network.orgs import ORG_TYPES, SERVICES, list_organisations
from infranet.network.public_contacts import published_contacts
from infranet.region import District as RegionDistrict
from infranet.site.pages import Site, lang_param, with_params
from infranet.storage.models import EventStatus, Moderation, Organisation
from infranet.web.params import check_length, parse_optional_id

# A page lists at most this many notices / organisations (a region has a few dozen of each).
MAX_TRAININGS = 200
MAX_ORGANISATIONS = 1000


def _area(site: Site, request: Request) -> RegionDistrict | None:
    """`?area=` as a district of the region (slug, name or TERYT code), or None."""
    value = request.query_params.get("area", "").strip()
    if not value:
        return None
    return resolve_district(site.ctx, check_length(value, "area"))


def _choice(request: Request, name: str, choices: Sequence[str]) -> str | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    check_length(value, name)
    if value not in choices:
        raise ValidationFailed("error.one_of", field=name, value=value[:40], choices=", ".join(choices))
    return value


def _area_options(site: Site, chosen: RegionDistrict | None) -> list[dict[str, Any]]:
    """The region's subregions and their powiaty, for a <select>."""
    options = []
    for sub in site.ctx.region.subregions:
        options.append({"slug": sub.slug, "name": sub.name, "child": False,
                        "selected": chosen is not None and chosen.slug == sub.slug})
        options += [{"slug": p.slug, "name": p.name, "child": True,
                     "selected": chosen is not None and chosen.slug == p.slug} for p in sub.children]
    return options


# --- trainings ----------------------------------------------------------------------


def cost_words(cost: Decimal | None, lang: str) -> str:
    """A notice's cost: None or 0 is free (the notice form stores free as None)."""
    if cost is None or cost == 0:
        return t(lang, "site.trainings.free")
    decimals = 0 if cost == cost.to_integral_value() else 2
    return t(lang, "site.trainings.cost_pln", amount=format_amount(str(cost), lang, decimals=decimals))


def _training(site: Site, view: TrainingView, lang: str) -> dict[str, Any]:
    row = view.training
    sessions = [{"href": with_params(event_path(e.id, e.title), lang_param(lang)),
                 "when": format_span(e.starts_at, e.ends_at, site.ctx.tz, lang, all_day=e.all_day)}
                for e in view.sessions
                if e.status == EventStatus.SCHEDULED and e.moderation == Moderation.PUBLISHED]
    return {"id": row.id, "title": row.title, "organisation": row.organisation.name,
            "district": row.district.name, "target_group": row.target_group,
            "places": row.places, "cost": cost_words(row.cost_pln, lang),
            "deadline": format_date(row.deadline, lang), "deadline_iso": row.deadline.isoformat(),
            "apply_url": row.apply_url, "apply_email": row.apply_email, "apply_phone": row.apply_phone,
            "description": row.description, "sessions": sessions}


async def trainings_page(site: Site, request: Request) -> Response:
    lang = site.language(request)
    try:
        area = _area(site, request)
        org_id = parse_optional_id(request.query_params.get("org"), "org")
        async with site.ctx.db.read() as session:
            found = await list_open_trainings(session, site.ctx, area=area.slug if area else None,
                                              organisation_id=org_id, limit=MAX_TRAININGS)
            items = [_training(site, view, lang) for view in found]
    except InfranetError as exc:
        return site.problem(request, lang, exc.localized(lang))
    return site.page(request, "trainings.html", lang, title=t(lang, "site.trainings.title"),
                     trainings=items, areas=_area_options(site, area), area=area, org_id=org_id)


# --- organisations -----------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryFilter:
    area: RegionDistrict | None = None
    service: str | None = None
    type: str | None = None


def _serves(site: Site, org: Organisation, area: RegionDistrict) -> bool:
    """Whether `org` works in `area`: it names no district (the whole region), or a district
    it names lies inside the area or contains it."""
    if not org.districts:
        return True
    for row in org.districts:
        served = site.ctx.region.by_slug.get(row.slug)
        if served is not None and (served.contains(area) or area.contains(served)):
            return True
    return False


def _shown(site: Site, org: Organisation, flt: DirectoryFilter) -> bool:
    return ((flt.type is None or org.type == flt.type)
            and (flt.service is None or flt.service in (org.services or []))
            and (flt.area is None or _serves(site, org, flt.area)))


def _type_label(code: str, lang: str) -> str:
    return t(lang, f"org.type.{code}") if code in ORG_TYPES else code


def _organisation(org: Organisation, lang: str) -> dict[str, Any]:
    contacts = published_contacts(org)
    website = contacts.website if contacts.website and contacts.website.startswith(
        ("https://", "http://")) else None
    return {"id": org.id, "name": org.name, "short_name": org.short_name,
            "type": _type_label(org.type, lang), "description": org.description,
            "services": [t(lang, f"org.service.{s}") for s in (org.services or []) if s in SERVICES],
            "districts": [d.name for d in org.districts],
            "email": contacts.email, "phone": contacts.phone, "website": website,
            "events_href": with_params("/events", [("org", str(org.id)), *lang_param(lang)]),
            "trainings_href": with_params("/trainings", [("org", str(org.id)), *lang_param(lang)])}


async def organisations_page(site: Site, request: Request) -> Response:
    lang = site.language(request)
    try:
        flt = DirectoryFilter(area=_area(site, request), service=_choice(request, "service", SERVICES),
                              type=_choice(request, "type", ORG_TYPES))
        async with site.ctx.db.read() as session:
            orgs = await list_organisations(session)
            items = [_organisation(o, lang) for o in orgs if _shown(site, o, flt)][:MAX_ORGANISATIONS]
    except InfranetError as exc:
        return site.problem(request, lang, exc.localized(lang))
    return site.page(
        request, "organisations.html", lang, title=t(lang, "site.orgs.title"), organisations=items,
        areas=_area_options(site, flt.area),
        services=[{"code": s, "label": t(lang, f"org.service.{s}"), "selected": s == flt.service}
                  for s in SERVICES],
        types=[{"code": c, "label": _type_label(c, lang), "selected": c == flt.type} for c in ORG_TYPES],
        filtered=flt != DirectoryFilter())


def routes(site: Site) -> list[BaseRoute]:
    async def trainings(request: Request) -> Response:
        return await trainings_page(site, request)

    async def organisations(request: Request) -> Response:
        return await organisations_page(site, request)

    return [Route("/trainings", trainings, methods=["GET", "HEAD"]),
            Route("/organisations", organisations, methods=["GET", "HEAD"])]
