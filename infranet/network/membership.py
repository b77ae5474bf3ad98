"""Membership of the network through the bot: joining, approval, roles, language.

Every function checks the actor's rights itself: the bot's buttons are a
convenience, and a forged callback must change nothing. A decision on a request
that is no longer pending changes nothing, so a button pressed twice (or by two
admins) changes nothing the second time.

Each request to join is a row of its own (`MembershipRequest`, table `join_requests`)
with its decision, who made it and when. The member row is shared by all requests of
one person; a decision names the request, so a button left over from an earlier
request (rejected, then the person asked for another organisation) cannot approve the
later one.

Blocking protects admins: only an owner (a Telegram id in `[telegram] admin_ids`) or
the CLI may block an admin, and nobody may block an owner through the bot.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound, PermissionDenied, ValidationFailed
from infranet.i18n import LANGUAGES
from infranet.network.members import get_member
from infranet.network.orgs import OrgInput, add_organisation, get_organisation
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import (
    Member,
    MembershipRequest,
    MemberStatus,
    Organisation,
    OrgStatus,
    RequestStatus,
    Role,
)
from infranet.validation import plain_text


@dataclass
class JoinRequest:
    """What a Telegram user gives when asking to join."""

    telegram_id: int
    display_name: str
    username: str | None = None
    language: str | None = None
    organisation_id: int | None = None  # an existing organisation, or
    new_organisation: OrgInput | None = None  # a proposed one (becomes pending)


async def set_language(session: AsyncSession, ctx: AppContext, actor: Actor, language: str) -> None:
    """A member's language for everything the bot sends them."""
    if language not in LANGUAGES:
        raise ValidationFailed("error.one_of", field="language", value=language,
                               choices=", ".join(LANGUAGES))
    if actor.member is None:
        return
    ctx.changes.people.changing(session)
    actor.member.language = language
    await session.flush()
    await audit.record(session, actor, "member.language", "member", actor.member.id,
                       language=language)


async def ask_to_join(session: AsyncSession, ctx: AppContext, request: JoinRequest
                      ) -> MembershipRequest:
    """Record a new request to join (the member row is created or renewed as pending); a
    proposed organisation is stored as pending too. An earlier request still waiting is
    withdrawn: the person now asks for something else. The admins decide with
    `decide_request`."""
    if (request.organisation_id is None) == (request.new_organisation is None):
        raise ValidationFailed("error.choose_org", field="organisation")
    member = await get_member(session, request.telegram_id)
    if member is not None and member.status == MemberStatus.BLOCKED:
        raise PermissionDenied("membership.blocked")
    if member is not None and member.status == MemberStatus.APPROVED:
        raise ValidationFailed("membership.already_member",
                               org=member.organisation.name if member.organisation else "—")
    if request.new_organisation is not None:
        org = await add_organisation(session, ctx, Actor("member", member), request.new_organisation,
                                     status=OrgStatus.PENDING)
    else:
        assert request.organisation_id is not None
        org = await get_organisation(session, request.organisation_id)
        if org.status != OrgStatus.ACTIVE:
            raise ValidationFailed("membership.org_not_active", org=org.name)
    ctx.changes.people.changing(session)
    if member is None:
        member = Member(telegram_id=request.telegram_id)
        session.add(member)
    member.display_name = plain_text(request.display_name)[:200]
    member.username = request.username
    member.language = member.language or request.language
    member.organisation_id = org.id
    member.status = MemberStatus.PENDING
    member.role = Role.MEMBER
    await session.flush()
    await session.execute(update(MembershipRequest).where(
        MembershipRequest.member_id == member.id,
        MembershipRequest.status == RequestStatus.PENDING).values(
        status=RequestStatus.WITHDRAWN, decided_at=ctx.now()))
    row = MembershipRequest(member_id=member.id, organisation_id=org.id,
                            new_organisation=request.new_organisation is not None,
                            status=RequestStatus.PENDING, created_at=ctx.now())
    session.add(row)
    await session.flush()
    await session.refresh(member, ["organisation"])
    row.member, row.organisation = member, member.organisation
    await audit.record(session, Actor.of(member), "member.request", "member", member.id,
                       organisation_id=org.id, new_organisation=request.new_organisation is not None,
                       request_id=row.id)
    return row


async def withdrawn_requests(session: AsyncSession, member_id: int, keep: int) -> list[int]:
    """Ids of the member's withdrawn requests other than `keep` (their admins' copies are
    edited to say so)."""
    return list((await session.scalars(select(MembershipRequest.id).where(
        MembershipRequest.member_id == member_id, MembershipRequest.id != keep,
        MembershipRequest.status == RequestStatus.WITHDRAWN))).all())


async def get_member_by_id(session: AsyncSession, member_id: int) -> Member:
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound("error.not_found.member", id=member_id)
    return member


async def find_member(session: AsyncSession, reference: str) -> Member:
    """`#12` or `12` (member number), `@username`, or `tg:<telegram id>`."""
    ref = reference.strip()
    if ref.startswith("@") and len(ref) > 1:
        member = await session.scalar(
            select(Member).where(func.lower(Member.username) == ref[1:].lower()))
    elif ref.startswith("tg:") and ref[3:].isdigit():
        member = await get_member(session, int(ref[3:]))
    elif ref.lstrip("#").isdigit():
        member = await session.get(Member, int(ref.lstrip("#")))
    else:
        raise ValidationFailed("membership.bad_reference", value=ref)
    if member is None:
        raise NotFound("error.not_found.member_ref", ref=ref)
    return member


def actor_label(actor: Actor) -> str:
    """Who decided, as the other admins are shown it."""
    if actor.member is not None:
        return actor.member.display_name or f"tg:{actor.member.telegram_id}"
    return "CLI" if actor.kind == "cli" else actor.kind


@dataclass
class Decision:
    """The outcome of pressing Approve / Reject on one request."""

    request: MembershipRequest
    member: Member
    changed: bool  # False: decided before (see request.status and decided_by_name)


async def get_request(session: AsyncSession, request_id: int) -> MembershipRequest:
    row = await session.get(MembershipRequest, request_id, populate_existing=True)
    if row is None:
        raise NotFound("error.not_found.join_request", id=request_id)
    return row


async def pending_request(session: AsyncSession, member_id: int) -> MembershipRequest | None:
    """The member's request waiting for a decision, if any."""
    return await session.scalar(select(MembershipRequest).where(
        MembershipRequest.member_id == member_id,
        MembershipRequest.status == RequestStatus.PENDING).order_by(MembershipRequest.id.desc()))


async def pending_requests(session: AsyncSession, actor: Actor) -> list[MembershipRequest]:
    actor.require_admin()
    return list((await session.scalars(select(MembershipRequest).where(
        MembershipRequest.status == RequestStatus.PENDING).order_by(MembershipRequest.id))).all())


async def decide_request(session: AsyncSession, ctx: AppContext, actor: Actor, request_id: int,
                         approve: bool) -> Decision:
    """An admin approves or rejects exactly this request. The request's row is claimed in
    one statement (`... WHERE status = 'pending'`), so of two admins pressing at once on
    two instances one decides and the other is told who did. Approving also activates a
    proposed organisation; rejecting rejects it when nobody else speaks for it."""
    actor.require_admin()
    row = await get_request(session, request_id)
    now = ctx.now()
    claimed = await session.execute(update(MembershipRequest).where(
        MembershipRequest.id == request_id, MembershipRequest.status == RequestStatus.PENDING,
    ).values(status=RequestStatus.APPROVED if approve else RequestStatus.REJECTED, decided_at=now,
             decided_by=actor.member.id if actor.member else None, decided_by_name=actor_label(actor),
             ).returning(MembershipRequest.id))
    row = await get_request(session, request_id)
    member = await get_member_by_id(session, row.member_id)
    if claimed.scalar() is None:
        return Decision(row, member, changed=False)
    ctx.changes.people.changing(session)
    org = await session.get(Organisation, row.organisation_id) if row.organisation_id else None
    member.organisation_id = row.organisation_id
    if approve:
        member.status = MemberStatus.APPROVED
        member.approved_at = now
        member.approved_by = actor.member.id if actor.member else None
        if org is not None and org.status == OrgStatus.PENDING:
            org.status = OrgStatus.ACTIVE
            org.approved_at = now
    else:
        member.status = MemberStatus.REJECTED
        if org is not None and org.status == OrgStatus.PENDING:
            others = await session.scalar(select(func.count(Member.id)).where(
                Member.organisation_id == org.id, Member.id != member.id,
                Member.status.in_([MemberStatus.APPROVED, MemberStatus.PENDING])))
            if not others:
                org.status = OrgStatus.REJECTED
    await session.flush()
    await session.refresh(member, ["organisation"])
    await audit.record(session, actor, "member.approve" if approve else "member.reject", "member",
                       member.id, organisation_id=row.organisation_id, request_id=row.id)
    return Decision(row, member, changed=True)


async def decide_member(session: AsyncSession, ctx: AppContext, actor: Actor, member_id: int,
                        approve: bool) -> Decision:
    """`/approve #member`: decide the member's request waiting now."""
    actor.require_admin()
    member = await get_member_by_id(session, member_id)
    row = await pending_request(session, member.id)
    if row is None:
        raise ValidationFailed("membership.no_request", name=member.display_name or f"#{member.id}")
    return await decide_request(session, ctx, actor, row.id, approve)


def is_owner(ctx: AppContext, member: Member | None) -> bool:
    """An owner is listed in `[telegram] admin_ids`: the only admins who may block or demote
    other admins."""
    return member is not None and member.telegram_id in ctx.settings.telegram.admin_ids


def _may_act_on_admins(ctx: AppContext, actor: Actor) -> bool:
    return actor.kind == "cli" or actor.kind == "system" or is_owner(ctx, actor.member)


def check_may_block(ctx: AppContext, actor: Actor, member: Member) -> None:
    """Refuse what `block_member` would refuse, so that the bot can ask for confirmation only
    when the block can happen."""
    actor.require_admin()
    name = member.display_name or f"#{member.id}"
    if actor.member is not None and actor.member.id == member.id:
        raise ValidationFailed("membership.self")
    if is_owner(ctx, member) and actor.kind != "cli":
        raise PermissionDenied("membership.owner_protected", name=name)
    if member.is_admin and not _may_act_on_admins(ctx, actor):
        raise PermissionDenied("membership.admin_protected", name=name)


async def block_member(session: AsyncSession, ctx: AppContext, actor: Actor, member_id: int) -> Member:
    """Block a member: they can no longer post; their past posts stay. Admins are blocked
    only by an owner (or the CLI); owners not through the bot at all."""
    member = await get_member_by_id(session, member_id)
    check_may_block(ctx, actor, member)
    ctx.changes.people.changing(session)
    # A request still waiting is refused with the block, by whoever blocked: its buttons then
    # answer "already decided by NAME" instead of approving a blocked person.
    await session.execute(update(MembershipRequest).where(
        MembershipRequest.member_id == member.id,
        MembershipRequest.status == RequestStatus.PENDING).values(
        status=RequestStatus.REJECTED, decided_at=ctx.now(),
        decided_by=actor.member.id if actor.member else None, decided_by_name=actor_label(actor)))
    member.status = MemberStatus.BLOCKED
    member.role = Role.MEMBER
    await session.flush()
    await audit.record(session, actor, "member.block", "member", member.id)
    return member


async def unblock_member(session: AsyncSession, ctx: AppContext, actor: Actor,
                         member_id: int) -> Member:
    """Lift a block: a member approved before is approved again (as a plain member); one
    blocked before approval may ask to join again."""
    actor.require_admin()
    member = await get_member_by_id(session, member_id)
    if member.status != MemberStatus.BLOCKED:
        raise ValidationFailed("membership.not_blocked", name=member.display_name or f"#{member.id}")
    ctx.changes.people.changing(session)
    member.status = MemberStatus.APPROVED if member.approved_at else MemberStatus.REJECTED
    await session.flush()
    await audit.record(session, actor, "member.unblock", "member", member.id)
    return member


async def demote_member(session: AsyncSession, ctx: AppContext, actor: Actor,
                        member_id: int) -> Member:
    """Take an admin's rights away (an owner only; owners themselves only in the config)."""
    actor.require_admin()
    member = await get_member_by_id(session, member_id)
    name = member.display_name or f"#{member.id}"
    if not member.is_admin:
        raise ValidationFailed("membership.not_admin", name=name)
    if actor.member is not None and actor.member.id == member.id:
        raise ValidationFailed("membership.self")
    if is_owner(ctx, member):
        raise PermissionDenied("membership.owner_protected", name=name)
    if not _may_act_on_admins(ctx, actor):
        raise PermissionDenied("membership.admin_protected", name=name)
    ctx.changes.people.changing(session)
    member.role = Role.MEMBER
    await session.flush()
    await audit.record(session, actor, "member.demote", "member", member.id)
    return member


async def promote_member(session: AsyncSession, ctx: AppContext, actor: Actor,
                         member_id: int) -> Member:
    """Make an approved member an admin of the network."""
    actor.require_admin()
    member = await get_member_by_id(session, member_id)
    if member.status != MemberStatus.APPROVED:
        raise ValidationFailed("membership.not_approved", name=member.display_name or f"#{member.id}")
    ctx.changes.people.changing(session)
    member.role = Role.ADMIN
    await session.flush()
    await audit.record(session, actor, "member.promote", "member", member.id)
    return member


async def list_members(session: AsyncSession, actor: Actor, *, status: str | None = None,
                       ) -> list[Member]:
    """Members for an admin, pending first, then by name."""
    actor.require_admin()
    query = select(Member)
    if status:
        query = query.where(Member.status == status)
    rows = list((await session.scalars(query)).all())
    order = {MemberStatus.PENDING: 0, MemberStatus.APPROVED: 1, MemberStatus.BLOCKED: 2,
             MemberStatus.REJECTED: 3}
    return sorted(rows, key=lambda m: (order.get(MemberStatus(m.status), 9),
                                       (m.display_name or "").lower(), m.id))


async def organisation_members(session: AsyncSession, organisation_id: int) -> list[Member]:
    """Approved members speaking for an organisation (who to tell about it)."""
    return list((await session.scalars(select(Member).where(
        Member.organisation_id == organisation_id,
        Member.status == MemberStatus.APPROVED).order_by(Member.id))).all())
