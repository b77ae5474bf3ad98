"""Membership of the network through the bot: joining, approval, roles, language.

Every function checks the actor's rights itself: the bot's buttons are a
convenience, and a forged callback must change nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.errors import ValidationFailed
from infranet.i18n import LANGUAGES
from infranet.storage import audit
from infranet.storage.actors import Actor


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
