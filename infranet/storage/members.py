"""Members (Telegram users) and their roles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.errors import ValidationFailed
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import Member, MemberStatus, Role
from infranet.storage.types import utcnow
from infranet.validation import plain_text


async def get_member(session: AsyncSession, telegram_id: int) -> Member | None:
    return await session.scalar(select(Member).where(Member.telegram_id == telegram_id))


async def add_admin(
    session: AsyncSession, actor: Actor, telegram_id: int, display_name: str = ""
) -> Member:
    """Make a Telegram user an approved admin (creating the member if needed)."""
    if telegram_id <= 0:
        raise ValidationFailed(field="telegram_id", detail="must be a positive Telegram user id")
    member = await get_member(session, telegram_id)
    if member is None:
        member = Member(telegram_id=telegram_id, display_name=plain_text(display_name)[:200])
        session.add(member)
    member.role = Role.ADMIN
    member.status = MemberStatus.APPROVED
    member.approved_at = member.approved_at or utcnow()
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
