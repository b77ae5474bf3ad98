"""The register of support given: which member organisation supported which client
organisation, with which service, in which powiat and when, so that support is not
duplicated (the agreement's "shared list of supported organisations").

Clients are organisations only: an NGO known by its KRS or NIP (checked as referrals
check them, `clients.py`), or an informal group known by its name and powiat. A private
person is never recorded (a PESEL, or the kind "person", is refused with a message
saying so); the register holds no contact details.

Before a record is saved, `preview_support` shows earlier support to the same client
(same KRS, NIP or folded name; an informal group: the same name in the same powiat) with
the same service by another member organisation
within `[referrals] duplicate_window_days` of the day given, the window and the wording
of the referral warning. What the member then does is recorded without client data
(`support_decisions`: saved anyway, or dropped) for the "duplicated support avoided"
figure.

Referrals feed the register when it is read, not by a copy: a referral of an NGO or a
group that the receiving organisation accepted counts as that organisation's support
from the day it accepted (a referral only sent may still be declined, so it is no
support yet; one closed without ever being accepted is none either). A referral says
neither the service nor the powiat, so in the counts it stands under "not stated"
(`None`), unless the receiving organisation records the support itself with
`referral_id`, which then stands for it (counted once). Reading rather than copying
keeps one truth: a referral's status, purge or deletion is what the register sees.

Members (and admins) see who supported whom (`list_support`, in `support_list.py`); the
public sees counts only (`support_counts`, `supported_per_district`, `support_totals`,
`duplicates_avoided`, in `support_figures.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound, PermissionDenied, ValidationFailed
from infranet.network.clients import (
    Duplicate,
    client_key,
    is_pesel,
    normalise_krs,
    normalise_nip,
)
from infranet.network.orgs import SERVICES
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import (
    District,
    Organisation,
    OrgStatus,
    Referral,
    ReferralStatus,
    SupportDecision,
    SupportRecord,
)
from infranet.validation import clean_text

CLIENT_KINDS = ("ngo", "group")
SOURCES = ("bot", "cli", "import")
NAME_MAX = 200
MAX_AGE_YEARS = 10  # older support is a typo (2062 for 2026), not history worth a record


@dataclass
class SupportInput:
    """Support as a member, the CLI or an import row gives it (text as typed)."""

    client_name: str | None = None
    krs: str | None = None
    nip: str | None = None
    service: str = ""
    district: str = ""  # the powiat: name, slug or TERYT code
    given_on: date | None = None  # None: today in the region
    client_kind: str | None = None  # None: "ngo" with KRS or NIP, else "group"; "person" refused
    organisation_id: int | None = None  # the supporting organisation; None: the actor's own
    referral_id: int | None = None
    source: str = "bot"


@dataclass(frozen=True)
class SupportDraft:
    """A checked record, exactly as it would be stored."""

    organisation_id: int
    organisation: str
    client_kind: str
    client_name: str
    client_key: str
    krs: str | None
    nip: str | None
    service: str
    district: str  # the powiat's slug
    district_name: str
    district_id: int
    given_on: date
    referral_id: int | None = None
    source: str = "bot"

    @property
    def fingerprint(self) -> str:
        """Short and stable: a Save button carries it and acts only on this very draft."""
        parts = [self.organisation_id, self.client_kind, self.client_name, self.krs, self.nip,
                 self.service, self.district, self.given_on.isoformat(), self.referral_id]
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SupportPreview:
    draft: SupportDraft
    duplicates: list[Duplicate] = field(default_factory=list)


def _acting_org(actor: Actor, organisation_id: int | None) -> int:
    """The supporting organisation: the member's own; admins and the CLI name any."""
    if organisation_id is None:
        if actor.member is None or actor.member.organisation_id is None:
            if actor.member is not None:
                actor.require_approved()
            raise PermissionDenied("referrals.no_org")
        organisation_id = actor.member.organisation_id
    actor.require_org(organisation_id)
    return organisation_id


def local_today(ctx: AppContext) -> date:
    return ctx.now().astimezone(ctx.tz).date()


def check_date(ctx: AppContext, given_on: date | None) -> date:
    """Not in the future, not older than MAX_AGE_YEARS (today in the region's zone)."""
    today = local_today(ctx)
    if given_on is None:
        return today
    if given_on > today:
        raise ValidationFailed("support.future_date", value=given_on.strftime("%d.%m.%Y"),
                               today=today.strftime("%d.%m.%Y"))
    earliest = today.replace(year=today.year - MAX_AGE_YEARS, day=min(today.day, 28))
    if given_on < earliest:
        raise ValidationFailed("support.date_too_old", value=given_on.strftime("%d.%m.%Y"),
                               earliest=earliest.strftime("%d.%m.%Y"))
    return given_on


async def _powiat(session: AsyncSession, ctx: AppContext, query: str) -> tuple[str, str, int]:
    """(slug, name, row id) of a powiat of the region; UnknownDistrict for a typo or a place
    outside it, ValidationFailed for a subregion or the whole region."""
    text = (query or "").strip()
    if not text:
        raise ValidationFailed("error.empty", field="district")
    found = ctx.region.find(text[:120])
    if found.kind != "powiat":
        raise ValidationFailed("support.powiat_only", name=found.name)
    row_id = await session.scalar(select(District.id).where(District.slug == found.slug))
    if row_id is None:  # the region file and the table are synced at start
        raise NotFound("error.not_found")
    return found.slug, found.name, row_id


def _client(data: SupportInput) -> tuple[str, str, str | None, str | None]:
    """(kind, name, krs, nip) by the register's rules; a private person is refused."""
    if data.client_kind == "person" or any(is_pesel(v) for v in (data.krs, data.nip) if v):
        raise ValidationFailed("support.no_persons")
    if data.client_kind not in (None, *CLIENT_KINDS):
        raise ValidationFailed("error.one_of", field="client_kind", value=data.client_kind,
                               choices=", ".join(CLIENT_KINDS))
    krs = normalise_krs(data.krs) if data.krs and data.krs.strip() else None
    nip = normalise_nip(data.nip) if data.nip and data.nip.strip() else None
    kind = "ngo" if krs or nip else "group"
    if data.client_kind == "ngo" and kind == "group":
        raise ValidationFailed("support.ngo_needs_id")
    name = clean_text(data.client_name, "client_name", NAME_MAX, required=True)
    assert name is not None
    return kind, name, krs, nip


async def check_support(session: AsyncSession, ctx: AppContext, actor: Actor,
                        data: SupportInput) -> SupportDraft:
    """Every rule of a record, nothing stored: the draft that `add_support` would save."""
    org_id = _acting_org(actor, data.organisation_id)
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound("error.not_found.organisation", id=org_id)
    if org.status != OrgStatus.ACTIVE:
        raise ValidationFailed("referrals.target_inactive", org=org.name)
    kind, name, krs, nip = _client(data)
    if data.service not in SERVICES:
        raise ValidationFailed("error.one_of", field="service", value=data.service or "—",
                               choices=", ".join(SERVICES))
    slug, district_name, district_id = await _powiat(session, ctx, data.district)
    given_on = check_date(ctx, data.given_on)
    if data.referral_id is not None:
        await _own_accepted_referral(session, org_id, data.referral_id)
    return SupportDraft(org_id, org.name, kind, name, client_key(name), krs, nip, data.service,
                        slug, district_name, district_id, given_on, data.referral_id,
                        data.source if data.source in SOURCES else "bot")


async def _own_accepted_referral(session: AsyncSession, org_id: int, referral_id: int) -> Referral:
    row = await session.get(Referral, referral_id) if 0 < referral_id < 2**31 else None
    if row is None or row.to_org_id != org_id:
        raise NotFound("error.not_found.referral", id=referral_id)
    if row.decided_at is None or row.status not in (ReferralStatus.ACCEPTED, ReferralStatus.CLOSED):
        raise ValidationFailed("support.referral_not_accepted", id=referral_id)
    return row


@dataclass(frozen=True)
class ReferredClient:
    referral_id: int
    client_kind: str
    client_name: str
    krs: str | None
    nip: str | None


async def referred_client(session: AsyncSession, actor: Actor, referral_id: int) -> ReferredClient:
    """The client of a referral the actor's organisation accepted, to record the support it
    gave with its service and powiat (the record then stands for the referral). A referred
    person is no client of the register."""
    row = await _own_accepted_referral(session, _acting_org(actor, None), referral_id)
    if row.client_kind not in CLIENT_KINDS or not row.client_name:
        raise ValidationFailed("support.no_persons")
    return ReferredClient(row.id, row.client_kind, row.client_name, row.krs, row.nip)


def _at(ctx: AppContext, day: date) -> datetime:
    """A day as the moment `Duplicate` carries (noon in the region: the same day anywhere)."""
    return datetime.combine(day, time(12), tzinfo=ctx.tz).astimezone(UTC)


def _same_client(model: Any, key: str, krs: str | None, nip: str | None) -> list[ColumnElement[bool]]:
    # An empty key (a name of symbols only) matches nothing: it would match every such name.
    same = [model.client_key == key] if key else []
    if krs:
        same.append(model.krs == krs)
    if nip:
        same.append(model.nip == nip)
    return same


def referral_support() -> list[ColumnElement[bool]]:
    """The referrals that count as support by their receiving organisation: accepted (still
    open or closed since), about an NGO or a group, and not stood for by a record."""
    linked = select(SupportRecord.referral_id).where(SupportRecord.referral_id.is_not(None))
    return [Referral.status.in_([ReferralStatus.ACCEPTED, ReferralStatus.CLOSED]),
            Referral.decided_at.is_not(None), Referral.client_kind.in_(CLIENT_KINDS),
            Referral.client_name.is_not(None), Referral.id.not_in(linked)]


async def earlier_support(session: AsyncSession, ctx: AppContext, draft: SupportDraft, *,
                          exclude_id: int | None = None) -> list[Duplicate]:
    """Other organisations that supported the same client with the same service within the
    window around the draft's day (accepted referrals too: their service is not known, so
    they are always told)."""
    window = timedelta(days=ctx.settings.referrals.duplicate_window_days)
    found: dict[int, Duplicate] = {}
    same = _same_client(SupportRecord, draft.client_key, draft.krs, draft.nip)
    if not same:
        return []
    if draft.client_kind == "group":
        # An informal group is its name in its powiat: "Koło Gospodyń Wiejskich" is a
        # different group in each powiat. An organisation of that name recorded with its KRS
        # or NIP is the same one anywhere (accepted referrals, which name no powiat, match
        # by name, as the referral warning does).
        match = and_(SupportRecord.client_key == draft.client_key,
                     or_(SupportRecord.district_id == draft.district_id,
                         SupportRecord.krs.is_not(None), SupportRecord.nip.is_not(None)))
    else:
        match = or_(*same)
    query = (select(SupportRecord.organisation_id, Organisation.name, SupportRecord.given_on)
             .join(Organisation, Organisation.id == SupportRecord.organisation_id)
             .where(match, SupportRecord.service == draft.service,
                    SupportRecord.organisation_id != draft.organisation_id,
                    SupportRecord.given_on >= draft.given_on - window,
                    SupportRecord.given_on <= draft.given_on + window)
             .order_by(SupportRecord.given_on))
    if exclude_id is not None:
        query = query.where(SupportRecord.id != exclude_id)
    for org_id, name, day in (await session.execute(query)).all():
        found[org_id] = Duplicate(name, _at(ctx, day))
    start, end = _at(ctx, draft.given_on) - window, _at(ctx, draft.given_on) + window
    referrals = (select(Referral.to_org_id, Organisation.name, Referral.decided_at)
                 .join(Organisation, Organisation.id == Referral.to_org_id)
                 .where(*referral_support(),
                        or_(*_same_client(Referral, draft.client_key, draft.krs, draft.nip)),
                        Referral.to_org_id != draft.organisation_id,
                        Referral.decided_at >= start, Referral.decided_at <= end)
                 .order_by(Referral.decided_at))
    for org_id, name, at in (await session.execute(referrals)).all():
        if at is not None and (org_id not in found or found[org_id].at < at):
            found[org_id] = Duplicate(name, at)
    return sorted(found.values(), key=lambda d: d.at)


async def recorded_support(session: AsyncSession, ctx: AppContext, *, key: str, krs: str | None,
                           nip: str | None, since: date, but: set[int]) -> list[Duplicate]:
    """Records of support to the same client (any service) since `since` by organisations
    other than `but`: what the referral warning adds from the register."""
    same = _same_client(SupportRecord, key, krs, nip)
    if not same:
        return []
    rows = (await session.execute(
        select(SupportRecord.organisation_id, Organisation.name, func.max(SupportRecord.given_on))
        .join(Organisation, Organisation.id == SupportRecord.organisation_id)
        .where(or_(*same), SupportRecord.given_on >= since,
               SupportRecord.organisation_id.not_in(but))
        .group_by(SupportRecord.organisation_id, Organisation.name))).all()
    return [Duplicate(name, _at(ctx, day)) for _org, name, day in rows]


async def preview_support(session: AsyncSession, ctx: AppContext, actor: Actor,
                          data: SupportInput) -> SupportPreview:
    """The draft and the earlier support by others, nothing stored: what the member sees
    before choosing to save or drop."""
    draft = await check_support(session, ctx, actor, data)
    return SupportPreview(draft, await earlier_support(session, ctx, draft))


async def add_support(session: AsyncSession, ctx: AppContext, actor: Actor, data: SupportInput,
                      *, warned: bool = False, expected: str | None = None) -> SupportRecord:
    """Save a record. `warned`: the member saw earlier support by others and saved anyway
    (recorded as their decision). `expected`: the fingerprint of the draft the member saw;
    when the draft is now different (the organisation or the region changed meanwhile),
    nothing is saved and the member is asked to look again."""
    draft = await check_support(session, ctx, actor, data)
    if expected is not None and draft.fingerprint != expected:
        raise ValidationFailed("support.draft_changed")
    row = SupportRecord(organisation_id=draft.organisation_id,
                        member_id=actor.member.id if actor.member else None,
                        client_kind=draft.client_kind, client_name=draft.client_name,
                        client_key=draft.client_key, krs=draft.krs, nip=draft.nip,
                        service=draft.service, district_id=draft.district_id,
                        given_on=draft.given_on, referral_id=draft.referral_id, source=draft.source,
                        created_at=ctx.now())
    session.add(row)
    await session.flush()
    if warned:
        session.add(SupportDecision(organisation_id=draft.organisation_id, service=draft.service,
                                    district_id=draft.district_id, outcome="saved",
                                    decided_at=ctx.now(), support_id=row.id))
    # The audit log keeps who recorded what where, not the client.
    await audit.record(session, actor, "support.add", "support", row.id,
                       organisation_id=draft.organisation_id, service=draft.service,
                       district=draft.district, warned=warned)
    return row


async def drop_support(session: AsyncSession, ctx: AppContext, actor: Actor,
                       data: SupportInput) -> SupportDraft:
    """The member saw earlier support by others and dropped the record: only that decision
    is stored (organisation, service, powiat, when), for the avoided-duplicates figure."""
    draft = await check_support(session, ctx, actor, data)
    session.add(SupportDecision(organisation_id=draft.organisation_id, service=draft.service,
                                district_id=draft.district_id, outcome="dropped",
                                decided_at=ctx.now()))
    await audit.record(session, actor, "support.drop", "support", None,
                       organisation_id=draft.organisation_id, service=draft.service,
                       district=draft.district)
    return draft
