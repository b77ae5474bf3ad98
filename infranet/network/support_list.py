"""The members' register read back: who supported whom, with what, where and when,
records and accepted referrals together, a page at a time, narrowed to one supporting
organisation or one client.

Apart from `support`, which checks and saves a record, because reading the register is
its own rule (members and admins only; the public sees counts in `support_figures.py`)
and needs none of the saving.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.network.clients import client_key, looks_like_identifier, parse_identifier
from infranet.network.support import NAME_MAX, referral_support
from infranet.storage.actors import Actor
from infranet.storage.models import District, Referral, SupportRecord

LIST_MAX = 100
OFFSET_MAX = 100_000


@dataclass(frozen=True)
class SupportEntry:
    """One line of the members' register: who supported whom, with what, where, when.
    `service` and `district` are None for an accepted referral without a record."""

    given_on: date
    organisation: str
    client_name: str
    client_kind: str
    krs: str | None
    nip: str | None
    service: str | None
    district: str | None  # the powiat's name
    record_id: int | None
    referral_id: int | None


@dataclass(frozen=True)
class SupportPage:
    entries: list[SupportEntry]
    total: int
    offset: int
    limit: int


def _may_read(actor: Actor) -> None:
    """Approved members and admins (and the CLI) only: the public sees counts."""
    if not actor.is_admin:
        actor.require_approved()


async def list_support(session: AsyncSession, ctx: AppContext, actor: Actor, *,
                       limit: int = 20, offset: int = 0, organisation_id: int | None = None,
                       client: str | None = None) -> SupportPage:
    """Who supported whom, newest first (records and accepted referrals together), a page
    at a time; `organisation_id` narrows it to one supporting organisation, `client` to a
    client (a KRS or NIP, or words of its name, case and diacritics ignored): "was this
    organisation supported already?" before anyone records anything."""
    _may_read(actor)
    limit = min(max(limit, 1), LIST_MAX)
    offset = min(max(offset, 0), OFFSET_MAX)
    records = (select(SupportRecord, District.name).join(District)
               .order_by(SupportRecord.given_on.desc(), SupportRecord.id.desc())
               .limit(offset + limit))
    referrals = (select(Referral).where(*referral_support())
                 .order_by(Referral.decided_at.desc(), Referral.id.desc()).limit(offset + limit))
    count_records = select(func.count()).select_from(SupportRecord)
    count_referrals = select(func.count()).select_from(Referral).where(*referral_support())
    if organisation_id is not None:
        records = records.where(SupportRecord.organisation_id == organisation_id)
        referrals = referrals.where(Referral.to_org_id == organisation_id)
        count_records = count_records.where(SupportRecord.organisation_id == organisation_id)
        count_referrals = count_referrals.where(Referral.to_org_id == organisation_id)
    if client is not None and client.strip():
        for_records, for_referrals = _client_filter(SupportRecord, client), _client_filter(Referral, client)
        records, count_records = records.where(for_records), count_records.where(for_records)
        referrals, count_referrals = referrals.where(for_referrals), count_referrals.where(for_referrals)
    entries = [SupportEntry(r.given_on, r.organisation.name, r.client_name, r.client_kind, r.krs,
                            r.nip, r.service, name, r.id, r.referral_id)
               for r, name in (await session.execute(records)).all()]
    for ref in (await session.scalars(referrals)).all():
        assert ref.decided_at is not None and ref.client_name is not None
        entries.append(SupportEntry(ref.decided_at.astimezone(ctx.tz).date(), ref.to_org.name,
                                    ref.client_name, ref.client_kind, ref.krs, ref.nip, None,
                                    None, None, ref.id))
    entries.sort(key=lambda e: (e.given_on, e.record_id or 0, e.referral_id or 0), reverse=True)
    total = int(await session.scalar(count_records) or 0) + int(
        await session.scalar(count_referrals) or 0)
    return SupportPage(entries[offset:offset + limit], total, offset, limit)


def _client_filter(model: Any, query: str) -> ColumnElement[bool]:
    """A client by its KRS or NIP (as typed: "KRS 0000123456", "123-456-32-18"), else by
    the words of its name (each one in the folded name)."""
    text = query.strip()[:NAME_MAX]
    if looks_like_identifier(text):
        try:
            krs, nip = parse_identifier(text)
        except ValidationFailed:
            pass
        else:
            return model.krs == krs if krs else model.nip == nip
    words = client_key(text).split()[:10]
    if not words:
        return model.id.is_(None)  # symbols only: nothing
    return and_(*(model.client_key.contains(word, autoescape=True) for word in words))
