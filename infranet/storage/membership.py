"""Membership of the network through the bot: joining, approval, roles, language.

Every function checks the actor's rights itself: the bot's buttons are a
convenience, and a forged callback must change nothing. A decision on a request
that is no longer pending is refused, so a button pressed twice (or by two
admins) changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound, PermissionDenied, ValidationFailed
from infranet.i18n import LANGUAGES, register
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.members import get_member
from infranet.storage.models import Member, MemberStatus, Organisation, OrgStatus, Role
from infranet.storage.orgs import OrgInput, add_organisation, get_organisation
from infranet.validation import plain_text

register({
    "membership.already_member": {
        "pl": "Już jesteś członkiem sieci ({org}).", "en": "You are already a member ({org})."},
    "membership.blocked": {
        "pl": "Twoje konto jest zablokowane; skontaktuj się z sekretariatem sieci.",
        "en": "Your account is blocked; please contact the network's secretariat."},
    "membership.org_not_active": {
        "pl": "Organizacja „{org}” nie jest (jeszcze) członkiem sieci.",
        "en": "The organisation \"{org}\" is not (yet) a member of the network."},
    "membership.not_pending": {
        "pl": "Ta prośba została już rozpatrzona.",
        "en": "This request has already been decided."},
    "membership.bad_reference": {
        "pl": "„{value}”: podaj numer członka (#12), @nazwę lub tg:<id Telegrama>.",
        "en": "\"{value}\": give a member number (#12), @username or tg:<Telegram id>."},
    "membership.self": {"pl": "Nie możesz tego zrobić z własnym kontem.",
                        "en": "You cannot do this to your own account."},
    "membership.not_approved": {"pl": "{name} nie jest zatwierdzonym członkiem.",
                                "en": "{name} is not an approved member."},
})


@dataclass
class JoinRequest:
    """What a Telegram user gives when asking to join."""

    telegram_id: int
    display_name: str
    username: str | None = None
    language: str | None = None
    organisation_id: int | None = None  # an existing organisation, or
    new_organisation: OrgInput | None = None  # a proposed one (becomes pending)


async def set_language(session: AsyncSession, actor: Actor, language: str) -> None:
    """A member's language for everything the bot sends them."""
    if language not in LANGUAGES:
        raise ValidationFailed(field="language", detail=f"choose one of {', '.join(LANGUAGES)}")
    if actor.member is None:
        return
    actor.member.language = language
    await session.flush()
    await audit.record(session, actor, "member.language", "member", actor.member.id,
                       language=language)


async def request_join(session: AsyncSession, ctx: AppContext, request: JoinRequest) -> Member:
    """Create (or renew) a pending membership request; a proposed organisation is
    stored as pending too. The admins decide with `decide_member`."""
    if (request.organisation_id is None) == (request.new_organisation is None):
        raise ValidationFailed(field="organisation", detail="choose an organisation or propose one")
    member = await get_member(session, request.telegram_id)
    if member is not None and member.status == MemberStatus.BLOCKED:
        raise PermissionDenied("membership.blocked")
    if member is not None and member.status == MemberStatus.APPROVED:
        org = member.organisation.name if member.organisation else "—"
        raise ValidationFailed("membership.already_member", org=org)
    if request.new_organisation is not None:
        org = await add_organisation(session, ctx, Actor("member", member), request.new_organisation,
                                     status=OrgStatus.PENDING)
    else:
        assert request.organisation_id is not None
        org = await get_organisation(session, request.organisation_id)
        if org.status != OrgStatus.ACTIVE:
            raise ValidationFailed("membership.org_not_active", org=org.name)
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
    await session.refresh(member, ["organisation"])
    await audit.record(session, Actor.of(member), "member.request", "member", member.id,
                       organisation_id=org.id, new_organisation=request.new_organisation is not None)
    return member


async def get_member_by_id(session: AsyncSession, member_id: int) -> Member:
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound(detail=f"member #{member_id}")
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
        raise NotFound(detail=f"member {ref}")
    return member


async def decide_member(session: AsyncSession, ctx: AppContext, actor: Actor, member_id: int,
                        approve: bool) -> Member:
    """An admin approves or rejects a pending request. Approving also activates a
    proposed organisation; rejecting rejects it when nobody else speaks for it."""
    actor.require_admin()
    member = await get_member_by_id(session, member_id)
    if member.status != MemberStatus.PENDING:
        raise ValidationFailed("membership.not_pending", status=member.status)
    org = await session.get(Organisation, member.organisation_id) if member.organisation_id else None
    now = ctx.now()
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
    await audit.record(session, actor, "member.approve" if approve else "member.reject", "member",
                       member.id, organisation_id=member.organisation_id)
    return member


async def block_member(session: AsyncSession, ctx: AppContext, actor: Actor, member_id: int) -> Member:
    """Block a member: they can no longer post; their past posts stay."""
    actor.require_admin()
    member = await get_member_by_id(session, member_id)
    if actor.member is not None and actor.member.id == member.id:
        raise ValidationFailed("membership.self")
    member.status = MemberStatus.BLOCKED
    member.role = Role.MEMBER
    await session.flush()
    await audit.record(session, actor, "member.block", "member", member.id)
    return member


async def promote_member(session: AsyncSession, ctx: AppContext, actor: Actor,
                         member_id: int) -> Member:
    """Make an approved member an admin of the network."""
    actor.require_admin()
    member = await get_member_by_id(session, member_id)
    if member.status != MemberStatus.APPROVED:
        raise ValidationFailed("membership.not_approved", name=member.display_name or f"#{member.id}")
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
