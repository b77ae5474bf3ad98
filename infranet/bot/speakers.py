"""Who is speaking: the member, their Actor and language, read once per update."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from telegram import Update

from infranet.bot.common_base import Access
from infranet.bot.people import People
from infranet.i18n import normalise_language
from infranet.storage.actors import Actor
from infranet.storage.models import Member, Organisation

log = logging.getLogger(__name__)


@dataclass
class Who:
    """The Telegram user of an update, as the network knows them."""

    telegram_id: int
    member: Member | None
    lang: str
    display_name: str = ""
    username: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor.of(self.member) if self.member else Actor("member", None)

    @property
    def is_member(self) -> bool:
        return self.member is not None and self.member.is_approved

    @property
    def is_admin(self) -> bool:
        return self.member is not None and self.member.is_admin

    @property
    def role(self) -> Access:
        return "admin" if self.is_admin else "member" if self.is_member else "anyone"


# The member with the organisation in one statement (the default, selectin, loading takes
# three: member, organisation, its districts). Handlers never read the districts of the
# speaker's organisation; a query that loads that organisation again (a directory search)
# fills them in as usual, and a direct read raises instead of querying behind our back.
_MEMBER = select(Member).options(joinedload(Member.organisation).raiseload(Organisation.districts))


async def load_member(session: AsyncSession, telegram_id: int) -> Member | None:
    """The member speaking, read from the database in one query."""
    result = await session.scalars(_MEMBER.where(Member.telegram_id == telegram_id))
    return result.first()


async def identify(session: AsyncSession | None, update: Update,
                   user_data: dict[Any, Any] | None = None, *, memory: People | None = None) -> Who:
    """Member (or None) and language: the member's choice, else /lang of a non-member
    (kept in user_data), else Telegram's language_code.

    With `memory` (read-only handlers) the member may come from the short-lived memory of
    `people.py`; otherwise (and on a miss) it is read in `session`, or in a read
    transaction of its own when `session` is None."""
    user = update.effective_user
    if user is None:
        return Who(0, None, normalise_language(None))
    member = await _member(session, user.id, memory)
    chosen = member.language if member and member.language else (user_data or {}).get("lang")
    lang = chosen or normalise_language(user.language_code)
    return Who(user.id, member, lang, user.full_name, user.username)


async def _member(session: AsyncSession | None, telegram_id: int,
                  memory: People | None) -> Member | None:
    if memory is None:
        assert session is not None
        return await load_member(session, telegram_id)
    found, member = memory.get(telegram_id)
    if found:
        return member
    token = memory.token()  # before reading: a change committed meanwhile voids what we read
    if session is None:
        async with memory.db.read() as own:
            member = _detached(own, await load_member(own, telegram_id))
    else:
        member = _detached(session, await load_member(session, telegram_id))
    memory.keep(telegram_id, member, token)
    return member


def _detached(session: AsyncSession, member: Member | None) -> Member | None:
    """Take a remembered member (and organisation) out of the session it was read in: a
    rollback there (a refused request) would expire it, and the next update reading it
    from memory would fail."""
    if member is not None:
        if member.organisation is not None:
            session.expunge(member.organisation)
        session.expunge(member)
    return member


def allows(who: Who, access: Access) -> bool:
    return (access == "anyone" or (access == "member" and who.is_member)
            or (access == "admin" and who.is_admin))


