"""What an organisation offers and where: its services and the districts it serves,
edited by its own members and by the network's admins (the CLI acts as an admin).

The directory (`/orgs`, the site's organisations page) and the white spots read these
two lists, so the rule of who may change them lives here, not in a handler: a forged
button or a thin command that forgot a check still changes nothing.

Districts are given as people write them: powiaty by name, slug or TERYT code, or a
whole subregion ("podregion ełcki") or the region, separated by commas or semicolons.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from infranet.context import AppContext
from infranet.errors import NotFound, ValidationFailed
from infranet.network.orgs import SERVICES
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import District, Organisation

MAX_DISTRICTS = 40  # more than every powiat and subregion of a voivodeship together
DISTRICTS_TEXT_MAX = 1000


@dataclass(frozen=True)
class Profile:
    organisation_id: int
    name: str
    services: list[str]
    districts: list[str]  # names, in the region file's order
    district_slugs: list[str]


def split_districts(text: str) -> list[str]:
    """"olsztyński, elbląski; m. Olsztyn" -> the three names (commas, semicolons, lines)."""
    if len(text) > DISTRICTS_TEXT_MAX:
        raise ValidationFailed("error.too_long", field="district", length=len(text),
                               limit=DISTRICTS_TEXT_MAX)
    return [part.strip() for part in re.split(r"[,;\n]+", text) if part.strip()]


async def _editable(session: AsyncSession, actor: Actor, organisation_id: int) -> Organisation:
    actor.require_org(organisation_id)  # its own members, or admins for any
    # Its districts loaded here: the organisation may already sit in the session (a member's
    # own, loaded with them) without them.
    org = await session.get(Organisation, organisation_id, populate_existing=True,
                            options=[selectinload(Organisation.districts)])
    if org is None:
        raise NotFound("error.not_found.organisation", id=organisation_id)
    return org


def profile_of(org: Organisation) -> Profile:
    return Profile(org.id, org.name, list(org.services), [d.name for d in org.districts],
                   [d.slug for d in org.districts])


async def update_profile(session: AsyncSession, ctx: AppContext, actor: Actor, organisation_id: int,
                         *, services: Sequence[str] | None = None,
                         districts: Sequence[str] | None = None) -> Profile:
    """Replace the organisation's services and/or districts (None: unchanged). Every value
    is checked before anything changes; an empty list of districts means the whole region."""
    org = await _editable(session, actor, organisation_id)
    new_services: list[str] | None = None
    if services is not None:
        unknown = [s for s in services if s not in SERVICES]
        if unknown:
            raise ValidationFailed("error.choose_from", field="services", values=", ".join(unknown),
                                   choices=", ".join(SERVICES))
        new_services = [s for s in SERVICES if s in set(services)]  # the list's order, once each
    rows: list[District] | None = None
    if districts is not None:
        if len(districts) > MAX_DISTRICTS:
            raise ValidationFailed("org_profile.too_many", count=len(districts), limit=MAX_DISTRICTS)
        found = [ctx.region.find(query) for query in districts]  # UnknownDistrict names the typo
        slugs = list(dict.fromkeys(d.slug for d in found if d.kind != "region"))
        by_slug = {row.slug: row for row in (await session.scalars(
            select(District).where(District.slug.in_(slugs)))).all()} if slugs else {}
        order = {d.slug: i for i, d in enumerate(ctx.region.districts)}
        rows = sorted((by_slug[s] for s in slugs if s in by_slug), key=lambda r: order.get(r.slug, 0))
    if new_services is not None:
        org.services = new_services
    if rows is not None:
        org.districts = rows
    ctx.changes.people.changing(session)  # the directory and who-speaks memories read it
    await session.flush()
    await audit.record(session, actor, "org.profile", "organisation", org.id,
                       services=org.services, districts=[d.slug for d in org.districts])
    return profile_of(org)


async def get_profile(session: AsyncSession, actor: Actor, organisation_id: int) -> Profile:
    """The current services and districts, for someone who may edit them."""
    return profile_of(await _editable(session, actor, organisation_id))
