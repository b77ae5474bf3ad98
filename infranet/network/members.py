"""Members (Telegram users) and their roles, and the network's secretariat.

The secretariat is a real organisation row made at set-up (`ensure_secretariat`): an
admin who speaks for no organisation belongs to it, so what they post has an owner
(shown by its name, never as a blank) and they can edit it like any member edits their
organisation's posts. Its id is kept in `bot_state` under `network:secretariat`, so that
renaming it in the configuration renames the row instead of making a second one.

These functions run at start-up and from the CLI, before any cache of the process holds
people or in a process of its own, so they raise no change signal (`infranet.changes`);
the bot's memory of speakers sees a CLI's change within its TTL. Changes made while the
service runs go through `membership.py` and `orgs.py`, which do.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.errors import ValidationFailed
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import BotState, Member, MemberStatus, Organisation, OrgStatus, Role
from infranet.storage.types import utcnow
from infranet.validation import plain_text


async def get_member(session: AsyncSession, telegram_id: int) -> Member | None:
    return await session.scalar(select(Member).where(Member.telegram_id == telegram_id))


SECRETARIAT_KEY = "network:secretariat"
SECRETARIAT_TYPE = "federation"


async def secretariat_id(session: AsyncSession) -> int | None:
    """The secretariat's organisation id, once `ensure_secretariat` has made it."""
    row = await session.get(BotState, SECRETARIAT_KEY)
    value = row.data.get("organisation_id") if row is not None else None
    return int(value) if isinstance(value, int) else None


async def ensure_secretariat(session: AsyncSession, name: str) -> Organisation:
    """The network's secretariat as an active, trusted organisation named `name` (made or
    renamed), with every admin who has no organisation attached to it."""
    from infranet.region import fold

    name = plain_text(name)[:200] or "Sekretariat sieci"
    org_id = await secretariat_id(session)
    org = await session.get(Organisation, org_id) if org_id is not None else None
    if org is None:
        org = await session.scalar(select(Organisation).where(Organisation.name == name))
    if org is None:
        org = Organisation(name=name, name_folded=fold(name)[:200], type=SECRETARIAT_TYPE, services=[],
                           status=OrgStatus.ACTIVE, trusted=True, approved_at=utcnow())
        session.add(org)
        await session.flush()
    elif org.name != name and await session.scalar(
            select(Organisation.id).where(Organisation.name == name)) is None:
        org.name, org.name_folded = name, fold(name)[:200]
    org.status, org.trusted = OrgStatus.ACTIVE, True
    state = await session.get(BotState, SECRETARIAT_KEY)
    if state is None:
        session.add(BotState(key=SECRETARIAT_KEY, data={"organisation_id": org.id}))
    elif state.data.get("organisation_id") != org.id:
        state.data = {"organisation_id": org.id}
    await session.execute(update(Member).where(
        Member.role == Role.ADMIN, Member.organisation_id.is_(None)).values(organisation_id=org.id))
    await session.flush()
    return org


async def add_admin(
    session: AsyncSession, actor: Actor, telegram_id: int, display_name: str = ""
) -> Member:
    """Make a Telegram user an approved admin (creating the member if needed); one without
    an organisation speaks for the secretariat, once it exists."""
    if telegram_id <= 0:
        raise ValidationFailed("error.telegram_id", field="telegram_id")
    member = await get_member(session, telegram_id)
    if member is None:
        member = Member(telegram_id=telegram_id, display_name=plain_text(display_name)[:200])
        session.add(member)
    member.role = Role.ADMIN
    member.status = MemberStatus.APPROVED
    member.approved_at = member.approved_at or utcnow()
    if member.organisation_id is None:
        member.organisation_id = await secretariat_id(session)
    await session.flush()
    await audit.record(session, actor, "member.add_admin", "member", member.id,
                       telegram_id=telegram_id)
    return member


async def ensure_config_admins(session: AsyncSession, admin_ids: list[int]) -> None:
    """`[telegram] admin_ids` are admins from the start."""
    for telegram_id in admin_ids:
        member = await get_member(session, telegram_id)
        if member is None or not member.is_admin:
            await add_admin(session, Actor.system(), telegram_id)


async def admins(session: AsyncSession) -> list[Member]:
    return list((await session.scalars(select(Member).where(
        Member.role == Role.ADMIN, Member.status == MemberStatus.APPROVED))).all())
