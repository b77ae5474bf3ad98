"""The network's figures for its indicators and yearly evaluation (`infranet.insight` reads
these and owns no network rule): which organisations are active where with which
services, and how many referrals they made and received in a period."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.storage.models import (
    Member,
    MemberStatus,
    Organisation,
    OrgStatus,
    Referral,
    organisation_districts,
)


@dataclass(frozen=True)
class Presence:
    """An active organisation, the districts it serves (powiaty, subregions or the whole
    region, as it chose them) and the services it offers."""

    id: int
    name: str
    type: str
    services: tuple[str, ...]
    district_ids: tuple[int, ...]


async def active_presence(session: AsyncSession) -> list[Presence]:
    served: dict[int, list[int]] = {}
    for org_id, district_id in await session.execute(
            select(organisation_districts.c.organisation_id, organisation_districts.c.district_id)
            .join(Organisation, Organisation.id == organisation_districts.c.organisation_id)
            .where(Organisation.status == OrgStatus.ACTIVE)):
        served.setdefault(org_id, []).append(district_id)
    rows = await session.execute(
        select(Organisation.id, Organisation.name, Organisation.type, Organisation.services)
        .where(Organisation.status == OrgStatus.ACTIVE).order_by(Organisation.id))
    return [Presence(org_id, name, kind, tuple(services or ()), tuple(served.get(org_id, ())))
            for org_id, name, kind, services in rows]


@dataclass(frozen=True)
class ReferralCounts:
    made: Counter[int]  # organisation id -> referrals it made in the period
    received: Counter[int]  # organisation id -> referrals it received
    # (type of the referring organisation, status now) -> referrals
    by_type_and_status: Counter[tuple[str, str]]


async def referral_counts(session: AsyncSession, start: datetime, end: datetime
                          ) -> ReferralCounts:
    """Referrals made from `start` until before `end` (aware), whatever happened to their
    personal data since (purged rows keep their counts)."""
    made: Counter[int] = Counter()
    received: Counter[int] = Counter()
    by_type: Counter[tuple[str, str]] = Counter()
    rows = await session.execute(
        select(Referral.from_org_id, Referral.to_org_id, Organisation.type, Referral.status,
               func.count())
        .join(Organisation, Organisation.id == Referral.from_org_id)
        .where(Referral.created_at >= start, Referral.created_at < end)
        .group_by(Referral.from_org_id, Referral.to_org_id, Organisation.type, Referral.status))
    for from_org, to_org, kind, status, count in rows:
        made[from_org] += count
        received[to_org] += count
        by_type[(kind, status)] += count
    return ReferralCounts(made, received, by_type)


@dataclass(frozen=True)
class Membership:
    organisations: int  # active member organisations
    members: int  # approved members (people in the bot), counted, never listed


async def membership(session: AsyncSession) -> Membership:
    organisations = await session.scalar(select(func.count()).select_from(Organisation).where(
        Organisation.status == OrgStatus.ACTIVE))
    members = await session.scalar(select(func.count()).select_from(Member).where(
        Member.status == MemberStatus.APPROVED))
    return Membership(organisations or 0, members or 0)
