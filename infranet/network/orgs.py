"""Member organisations: the network's database of support organisations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound, ValidationFailed
from infranet.region import fold
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.districts import district_ids
from infranet.storage.models import Organisation, OrgStatus
from infranet.storage.types import utcnow
from infranet.validation import clean_email, clean_phone, clean_text

# Types named in the network's agreement; "other" keeps the list open.
ORG_TYPES = ("LGD", "LGR", "COP", "OWES", "ROEFS", "local-fund", "federation", "disability",
             "youth-network", "volunteer-centre", "development-network", "other")
SERVICES = ("information", "legal-advice", "financial-advice", "accounting", "fundraising",
            "animation", "training", "technical", "grants", "loans", "advocacy",
            "volunteering", "social-economy", "eu-funds")

NAME_MAX = 200
SHORT_NAME_MAX = 60
WEBSITE_MAX = 300
DESCRIPTION_MAX = 4000



@dataclass
class OrgInput:
    name: str
    type: str = "other"
    short_name: str | None = None
    districts: Sequence[str] = field(default_factory=list)  # names, slugs or TERYT codes
    services: Sequence[str] = field(default_factory=list)
    contact_email: str | None = None
    phone: str | None = None
    website: str | None = None
    description: str | None = None


def _plain(data: OrgInput) -> OrgInput:
    """The input's free text by the one plain-text rule (`infranet.validation`): names and the
    website on one line, the description with its lines; empty and over-long are refused."""
    return replace(
        data, name=clean_text(data.name, "name", NAME_MAX, required=True) or "",
        short_name=clean_text(data.short_name, "short_name", SHORT_NAME_MAX),
        website=clean_text(data.website, "website", WEBSITE_MAX),
        contact_email=clean_email(data.contact_email, "contact_email") if data.contact_email else None,
        phone=clean_phone(data.phone, "phone"),
        description=clean_text(data.description, "description", DESCRIPTION_MAX, multiline=True))


def _validate(ctx: AppContext, data: OrgInput) -> None:
    if data.type not in ORG_TYPES:
        raise ValidationFailed("error.one_of", field="type", value=data.type,
                               choices=", ".join(ORG_TYPES))
    unknown = [s for s in data.services if s not in SERVICES]
    if unknown:
        raise ValidationFailed("error.choose_from", field="services", values=", ".join(unknown),
                               choices=", ".join(SERVICES))
    if data.website and not data.website.startswith(("http://", "https://")):
        raise ValidationFailed("error.url", field="website", value=data.website)
    for query in data.districts:
        ctx.region.find(query)  # raises UnknownDistrict with close matches


async def add_organisation(
    session: AsyncSession, ctx: AppContext, actor: Actor, data: OrgInput,
    *, status: OrgStatus = OrgStatus.ACTIVE,
) -> Organisation:
    data = _plain(data)
    _validate(ctx, data)
    name = data.name
    if await session.scalar(select(Organisation.id).where(
            func.lower(Organisation.name) == name.lower())):
        raise ValidationFailed("error.name_taken", field="name", value=name)
    ids = await district_ids(session)
    from infranet.storage.models import District

    slugs = [ctx.region.find(q).slug for q in data.districts]
    districts = [await session.get(District, ids[s]) for s in dict.fromkeys(slugs)]
    org = Organisation(
        name=name, name_folded=fold(name)[:200], short_name=data.short_name,
        type=data.type, services=list(data.services),
        contact_email=data.contact_email, phone=data.phone, website=data.website,
        description=data.description, status=status,
        approved_at=utcnow() if status == OrgStatus.ACTIVE else None,
        districts=[d for d in districts if d is not None],
    )
    ctx.changes.people.changing(session)  # a member's organisation may be this one
    session.add(org)
    await session.flush()
    await audit.record(session, actor, "org.add", "organisation", org.id, name=name)
    return org


async def list_organisations(
    session: AsyncSession, *, include_pending: bool = False
) -> list[Organisation]:
    query = select(Organisation).order_by(Organisation.name_folded)
    if not include_pending:
        query = query.where(Organisation.status == OrgStatus.ACTIVE)
    return list((await session.scalars(query)).all())


async def search_organisations(
    session: AsyncSession, ctx: AppContext, query: str, *, limit: int = 20
) -> list[Organisation]:
    """By name, short name, type, service or district served, ignoring diacritics."""
    orgs = await list_organisations(session)
    words = fold(query).split()
    if not words:
        return orgs[:limit]

    def haystack(org: Organisation) -> str:
        parts = [org.name, org.short_name or "", org.type, *org.services,
                 *(d.name for d in org.districts), *(d.slug for d in org.districts)]
        return fold(" ".join(parts))

    return [o for o in orgs if all(w in haystack(o) for w in words)][:limit]


async def get_organisation(session: AsyncSession, org_id: int) -> Organisation:
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound("error.not_found.organisation", id=org_id)
    return org


async def find_organisation(session: AsyncSession, name_or_id: str) -> Organisation:
    """By id, exact name or short name (case and diacritics ignored)."""
    if name_or_id.isdigit():
        return await get_organisation(session, int(name_or_id))
    key = fold(name_or_id)[:200]
    org = await session.scalar(select(Organisation).where(or_(
        Organisation.name_folded == key, func.lower(Organisation.short_name) == name_or_id.lower())))
    if org is None:
        raise NotFound("error.not_found.organisation_named", name=name_or_id)
    return org
