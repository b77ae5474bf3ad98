"""Client referrals between member organisations.

A member refers a client (an NGO, an informal group or a person) to another
organisation, with the client's consent. Only the two organisations see the
client's details; the network's admins may open a referral's record (who sent it
to whom, its status, who decided and when) but not the client's name, need or
contact (`open_referral`).
When the same client (same KRS, NIP or normalised name) was referred or
supported by yet another organisation within `[referrals] duplicate_window_days`,
both sides are told, to avoid duplicated support. Contact details are purged
`[referrals] retention_days` after the referral is declined or closed; a referral
left pending or accepted that long without a decision or closing is closed first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound, PermissionDenied, ValidationFailed

# The client rules are shared with the register of support (network/clients.py); their
# names stay importable from here.
from infranet.network.clients import (  # noqa: F401
    NIP_WEIGHTS,
    Duplicate,
    client_key,
    normalise_krs,
    normalise_nip,
    parse_identifier,
)
from infranet.network.support import recorded_support
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.database import rows_changed
from infranet.storage.models import Member, Organisation, OrgStatus, Referral, ReferralStatus
from infranet.validation import clean_text

log = logging.getLogger(__name__)

CLIENT_KINDS = ("ngo", "group", "person")
NAME_MAX, CONTACT_MAX, NEED_MAX = 200, 300, 2000


@dataclass
class ReferralInput:
    to_org_id: int
    client_kind: str
    client_name: str
    client_contact: str
    need: str
    consent: bool
    krs: str | None = None
    nip: str | None = None




def _member_org(actor: Actor) -> int:
    member = actor.require_approved()
    if member.organisation_id is None:
        raise PermissionDenied("referrals.no_org")
    return member.organisation_id


async def _target(session: AsyncSession, from_org_id: int, data: ReferralInput) -> Organisation:
    if data.client_kind not in CLIENT_KINDS:
        raise ValidationFailed("error.one_of", field="client_kind", value=data.client_kind,
                               choices=", ".join(CLIENT_KINDS))
    if data.to_org_id == from_org_id:
        raise ValidationFailed("referrals.same_org")
    target = await session.get(Organisation, data.to_org_id)
    if target is None:
        raise NotFound("error.not_found.organisation", id=data.to_org_id)
    if target.status != OrgStatus.ACTIVE:
        raise ValidationFailed("referrals.target_inactive", org=target.name)
    return target


async def create_referral(session: AsyncSession, ctx: AppContext, actor: Actor,
                          data: ReferralInput) -> Referral:
    from_org_id = _member_org(actor)
    if data.client_kind not in CLIENT_KINDS:
        raise ValidationFailed("error.one_of", field="client_kind", value=data.client_kind,
                               choices=", ".join(CLIENT_KINDS))
    # Plain text like every stored field: a "<" in a client's need is kept as written.
    name = clean_text(data.client_name, "client_name", NAME_MAX, required=True)
    contact = clean_text(data.client_contact, "client_contact", CONTACT_MAX, required=True)
    need = clean_text(data.need, "need", NEED_MAX, required=True, multiline=True)
    krs = normalise_krs(data.krs) if data.krs else None
    nip = normalise_nip(data.nip) if data.nip else None
    if not data.consent:
        raise ValidationFailed("referrals.no_consent")
    target = await _target(session, from_org_id, data)
    assert name is not None and actor.member is not None
    row = Referral(from_org_id=from_org_id, to_org_id=target.id, from_member_id=actor.member.id,
                   client_kind=data.client_kind, client_name=name, client_key=client_key(name),
                   client_contact=contact, krs=krs, nip=nip, need=need, consent_at=ctx.now(),
                   status=ReferralStatus.PENDING)
    session.add(row)
    await session.flush()
    await session.refresh(row, ["from_org", "to_org"])
    await audit.record(session, actor, "referral.create", "referral", row.id,
                       to_org_id=target.id)  # no client data in the audit log
    return row


async def duplicates(session: AsyncSession, ctx: AppContext, referral: Referral) -> list[Duplicate]:
    """Other organisations that referred or took on the same client within the window."""
    return await _duplicates_of(session, ctx, from_org_id=referral.from_org_id,
                                to_org_id=referral.to_org_id, key=referral.client_key,
                                krs=referral.krs, nip=referral.nip, exclude_id=referral.id)


async def preview_referral(session: AsyncSession, ctx: AppContext, actor: Actor,
                           data: ReferralInput) -> list[Duplicate]:
    """Every check `create_referral` makes, and the duplicate-support warning, without
    storing anything: the member sees the warning and chooses to send or cancel before
    anything about the client is kept."""
    from_org_id = _member_org(actor)
    name = clean_text(data.client_name, "client_name", NAME_MAX, required=True)
    krs = normalise_krs(data.krs) if data.krs else None
    nip = normalise_nip(data.nip) if data.nip else None
    await _target(session, from_org_id, data)
    assert name is not None
    return await _duplicates_of(session, ctx, from_org_id=from_org_id, to_org_id=data.to_org_id,
                                key=client_key(name), krs=krs, nip=nip, exclude_id=None)


async def _duplicates_of(session: AsyncSession, ctx: AppContext, *, from_org_id: int, to_org_id: int,
                         key: str, krs: str | None, nip: str | None,
                         exclude_id: int | None) -> list[Duplicate]:
    since = ctx.now() - timedelta(days=ctx.settings.referrals.duplicate_window_days)
    # An empty key (a name of symbols only) matches nothing: it would match every such name.
    same = [Referral.client_key == key] if key else []
    if krs:
        same.append(Referral.krs == krs)
    if nip:
        same.append(Referral.nip == nip)
    if not same:
        return []
    query = select(Referral).where(Referral.created_at >= since, or_(*same),
                                   Referral.purged_at.is_(None)).order_by(Referral.created_at)
    if exclude_id is not None:
        query = query.where(Referral.id != exclude_id)
    rows = (await session.scalars(query)).all()
    ours = {from_org_id, to_org_id}
    found: dict[int, Duplicate] = {}
    for row in rows:
        involved = [(row.from_org_id, row.from_org, row.created_at)]
        if row.status in (ReferralStatus.ACCEPTED, ReferralStatus.CLOSED):
            involved.append((row.to_org_id, row.to_org, row.decided_at or row.created_at))
        for org_id, org, at in involved:
            if org_id not in ours and org_id not in found:
                found[org_id] = Duplicate(org.name, at)
    # The register of support given is the same list of who supported whom (support.py).
    recorded = await recorded_support(session, ctx, key=key, krs=krs, nip=nip,
                                      since=since.astimezone(ctx.tz).date(),
                                      but=ours | set(found))
    return [*found.values(), *recorded]


@dataclass(frozen=True)
class ReferralView:
    """A referral as one person may see it: `full` when they belong to one of its two
    organisations (the client's details), False for a network admin (the record only)."""

    referral: Referral
    full: bool
    referrer: str | None  # the referring member's name
    decider: str | None  # who accepted or declined it

    @property
    def status_by(self) -> str:
        return self.decider or "—"


async def open_referral(session: AsyncSession, actor: Actor, referral_id: int) -> ReferralView:
    """A referral for its detail view: members of its two organisations and the
    network's admins only (anyone else: NotFound, so its existence is not told)."""
    member = actor.require_approved()
    row = await session.get(Referral, referral_id)
    involved = row is not None and member.organisation_id in (row.from_org_id, row.to_org_id)
    if row is None or not (involved or actor.is_admin):
        raise NotFound("error.not_found.referral", id=referral_id)
    names = {}
    ids = {i for i in (row.from_member_id, row.decided_by) if i is not None}
    if ids:
        names = dict((await session.execute(select(Member.id, Member.display_name)
                                            .where(Member.id.in_(ids)))).all())
    return ReferralView(row, involved, names.get(row.from_member_id or 0) or None,
                        names.get(row.decided_by or 0) or None)


async def get_referral(session: AsyncSession, actor: Actor, referral_id: int) -> Referral:
    """A referral, for a member of one of its two organisations only."""
    org_id = _member_org(actor)
    row = await session.get(Referral, referral_id)
    if row is None or org_id not in (row.from_org_id, row.to_org_id):
        raise NotFound("error.not_found.referral", id=referral_id)
    return row


async def decide_referral(session: AsyncSession, ctx: AppContext, actor: Actor, referral_id: int,
                          accept: bool) -> Referral:
    """The target organisation accepts or declines (admins cannot: it is not theirs)."""
    row = await get_referral(session, actor, referral_id)
    if actor.organisation_id != row.to_org_id:
        raise PermissionDenied("referrals.not_yours")
    if row.status != ReferralStatus.PENDING:
        raise await _decided(session, row)
    now = ctx.now()
    values: dict[str, object] = {
        "status": ReferralStatus.ACCEPTED if accept else ReferralStatus.DECLINED,
        "decided_at": now, "decided_by": actor.member.id if actor.member else None}
    if not accept:
        values["closed_at"] = now  # retention counts from here
    # Conditional on "still pending": of two members pressing at once, one decides.
    done = await session.execute(update(Referral).where(
        Referral.id == row.id, Referral.status == ReferralStatus.PENDING).values(**values)
        .execution_options(synchronize_session=False))
    if rows_changed(done) != 1:
        await session.refresh(row)
        raise await _decided(session, row)
    await session.refresh(row)
    await audit.record(session, actor, "referral.accept" if accept else "referral.decline",
                       "referral", row.id)
    return row


async def _decided(session: AsyncSession, row: Referral) -> ValidationFailed:
    """"Already decided by NAME" for a button pressed after the decision."""
    name = None
    if row.decided_by is not None:
        name = await session.scalar(select(Member.display_name).where(Member.id == row.decided_by))
    return ValidationFailed("referrals.decided_by", name=name or "—")


async def close_referral(session: AsyncSession, ctx: AppContext, actor: Actor,
                         referral_id: int) -> Referral:
    """Either side ends an accepted referral (support given); retention starts."""
    row = await get_referral(session, actor, referral_id)
    if row.status != ReferralStatus.ACCEPTED:
        raise ValidationFailed("referrals.not_open", status=row.status)
    row.status = ReferralStatus.CLOSED
    row.closed_at = ctx.now()
    await session.flush()
    await audit.record(session, actor, "referral.close", "referral", row.id)
    return row


async def list_referrals(session: AsyncSession, actor: Actor, *, limit: int = 50, offset: int = 0
                         ) -> tuple[list[Referral], list[Referral], int, int]:
    """(sent, received, how many sent, how many received) by the actor's organisation,
    newest first; `offset` pages through both lists at once."""
    org_id = _member_org(actor)
    out: list[list[Referral]] = []
    totals: list[int] = []
    for column in (Referral.from_org_id, Referral.to_org_id):
        out.append(list((await session.scalars(select(Referral).where(column == org_id)
                                               .order_by(Referral.id.desc())
                                               .limit(limit).offset(offset))).all()))
        totals.append(await session.scalar(select(func.count()).select_from(Referral)
                                           .where(column == org_id)) or 0)
    return out[0], out[1], totals[0], totals[1]


async def close_stale(session: AsyncSession, ctx: AppContext) -> int:
    """Close referrals left pending or accepted for `retention_days` without any
    decision or closing, so that no client's contact details are kept for ever."""
    cutoff = ctx.now() - timedelta(days=ctx.settings.referrals.retention_days)
    last_activity = func.coalesce(Referral.decided_at, Referral.created_at)
    ids = list((await session.scalars(select(Referral.id).where(
        Referral.status.in_([ReferralStatus.PENDING, ReferralStatus.ACCEPTED]),
        Referral.closed_at.is_(None), last_activity < cutoff))).all())
    if not ids:
        return 0
    await session.execute(update(Referral).where(Referral.id.in_(ids)).values(
        status=ReferralStatus.CLOSED, closed_at=ctx.now()))
    await audit.record(session, Actor.system(), "referral.close_stale", "referral", None,
                       count=len(ids), ids=ids)
    log.info("closed %d referral(s) without activity for %d days", len(ids),
             ctx.settings.referrals.retention_days)
    return len(ids)


async def purge_expired(session: AsyncSession, ctx: AppContext) -> int:
    """Erase client contact details (and the need; a person's name too) of referrals
    closed more than `retention_days` ago. Idempotent; returns how many were purged."""
    cutoff = ctx.now() - timedelta(days=ctx.settings.referrals.retention_days)
    ids = list((await session.scalars(select(Referral.id).where(
        Referral.closed_at.is_not(None), Referral.closed_at < cutoff,
        Referral.purged_at.is_(None)))).all())
    if not ids:
        return 0
    now = ctx.now()
    await session.execute(update(Referral).where(Referral.id.in_(ids)).values(
        client_contact=None, need=None, purged_at=now))
    await session.execute(update(Referral).where(
        Referral.id.in_(ids), Referral.client_kind == "person").values(
        client_name=None, client_key="", krs=None, nip=None))
    await audit.record(session, Actor.system(), "referral.purge", "referral", None,
                       count=len(ids), ids=ids)
    log.info("purged the contact details of %d referral(s) closed before %s", len(ids),
             cutoff.date().isoformat())
    return len(ids)
