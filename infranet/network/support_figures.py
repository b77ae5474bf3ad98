"""Public figures of the register of support (`support.py`): counts only, never who.

For a period of days (`start` and `end` inclusive, days in the region's time zone):
- `support_counts`: per powiat and service, the organisations supported (distinct
  clients) and the records;
- `supported_per_district`: per powiat, all services together (a client supported with
  two services counts once);
- `support_totals`: the whole region;
- `duplicates_avoided`: per powiat and service, how many duplicate warnings ended with
  the record dropped, and how many were saved anyway.

A client is one organisation by KRS, else NIP, else its folded name (a group's in its
powiat). Accepted referrals
count as support (see `support.py`); they state neither powiat nor service, so they
stand under `district=None` and `service=None` ("not stated"). Each function is a few
grouped SQL queries, whatever the number of records.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import String, cast, distinct, func, literal, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.network.support import referral_support
from infranet.storage.models import District, Referral, SupportDecision, SupportRecord


class SupportCount(NamedTuple):
    district: str | None  # a powiat's slug; None: not stated (accepted referrals)
    service: str | None  # None: not stated, or (supported_per_district) every service
    organisations: int  # distinct clients supported
    records: int


class DecisionCount(NamedTuple):
    district: str
    service: str
    dropped: int  # duplicated support avoided
    saved: int  # saved in spite of the warning


class SupportTotals(NamedTuple):
    organisations: int
    records: int


def _identity(model: Any) -> Any:
    """One client: 'k' + KRS, else 'n' + NIP, else 'g' + folded name (NULL || x is NULL on
    both engines, so coalesce picks the first identifier present). A group recorded in the
    register is its name in its powiat (two "Koło Gospodyń Wiejskich" in two powiaty are two
    groups); a referral names no powiat."""
    group = literal("g") + model.client_key
    if model is SupportRecord:
        group = group + literal("|") + cast(model.district_id, String)
    return func.coalesce(literal("k") + model.krs, literal("n") + model.nip, group)


def _bounds(ctx: AppContext, start: date, end: date) -> tuple[datetime, datetime]:
    """The period's first and past-the-last moments, in UTC."""
    first = datetime.combine(start, time(0), tzinfo=ctx.tz).astimezone(UTC)
    after = datetime.combine(end + timedelta(days=1), time(0), tzinfo=ctx.tz).astimezone(UTC)
    return first, after


def _in_period(start: date, end: date) -> list[Any]:
    return [SupportRecord.given_on >= start, SupportRecord.given_on <= end]


def _referrals_in(ctx: AppContext, start: date, end: date) -> list[Any]:
    first, after = _bounds(ctx, start, end)
    return [*referral_support(), Referral.decided_at >= first, Referral.decided_at < after]


async def _referral_count(session: AsyncSession, ctx: AppContext, start: date,
                          end: date) -> SupportCount | None:
    row = (await session.execute(
        select(func.count(distinct(_identity(Referral))), func.count())
        .select_from(Referral).where(*_referrals_in(ctx, start, end)))).one()
    return SupportCount(None, None, int(row[0]), int(row[1])) if row[1] else None


async def support_counts(session: AsyncSession, ctx: AppContext, start: date,
                         end: date) -> list[SupportCount]:
    """Per (powiat, service): organisations supported and records, sorted by powiat and
    service; accepted referrals last, as (None, None)."""
    rows = (await session.execute(
        select(District.slug, SupportRecord.service, func.count(distinct(_identity(SupportRecord))),
               func.count())
        .join(District, District.id == SupportRecord.district_id)
        .where(*_in_period(start, end))
        .group_by(District.slug, SupportRecord.service)
        .order_by(District.slug, SupportRecord.service))).all()
    out = [SupportCount(slug, service, int(orgs), int(count)) for slug, service, orgs, count in rows]
    referred = await _referral_count(session, ctx, start, end)
    return [*out, referred] if referred else out


async def supported_per_district(session: AsyncSession, ctx: AppContext, start: date,
                                 end: date) -> list[SupportCount]:
    """Per powiat, every service together (service None); accepted referrals as None."""
    rows = (await session.execute(
        select(District.slug, func.count(distinct(_identity(SupportRecord))), func.count())
        .join(District, District.id == SupportRecord.district_id)
        .where(*_in_period(start, end))
        .group_by(District.slug).order_by(District.slug))).all()
    out = [SupportCount(slug, None, int(orgs), int(count)) for slug, orgs, count in rows]
    referred = await _referral_count(session, ctx, start, end)
    return [*out, referred] if referred else out


async def support_totals(session: AsyncSession, ctx: AppContext, start: date,
                         end: date) -> SupportTotals:
    """The whole region: distinct clients across records and referrals, and all records."""
    clients = union(
        select(_identity(SupportRecord).label("who")).where(*_in_period(start, end)),
        select(_identity(Referral).label("who")).where(*_referrals_in(ctx, start, end)),
    ).subquery()
    organisations = await session.scalar(select(func.count()).select_from(clients))
    records = await session.scalar(select(func.count()).select_from(SupportRecord)
                                   .where(*_in_period(start, end)))
    referred = await session.scalar(select(func.count()).select_from(Referral)
                                    .where(*_referrals_in(ctx, start, end)))
    return SupportTotals(int(organisations or 0), int(records or 0) + int(referred or 0))


async def duplicates_avoided(session: AsyncSession, ctx: AppContext, start: date,
                             end: date) -> list[DecisionCount]:
    """Per (powiat, service): warnings that ended with the record dropped, and saved anyway."""
    first, after = _bounds(ctx, start, end)
    rows = (await session.execute(
        select(District.slug, SupportDecision.service, SupportDecision.outcome, func.count())
        .join(District, District.id == SupportDecision.district_id)
        .where(SupportDecision.decided_at >= first, SupportDecision.decided_at < after)
        .group_by(District.slug, SupportDecision.service, SupportDecision.outcome))).all()
    table: dict[tuple[str, str], list[int]] = {}
    for slug, service, outcome, count in rows:
        cell = table.setdefault((slug, service), [0, 0])
        cell[0 if outcome == "dropped" else 1] += int(count)
    return [DecisionCount(slug, service, dropped, saved)
            for (slug, service), (dropped, saved) in sorted(table.items())]
