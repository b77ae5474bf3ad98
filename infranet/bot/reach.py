"""Reaching an organisation: through its members in the bot, else by e-mail at its
contact address, else not at all.

A screen that says "I told X" must name only organisations that were actually
reached. An organisation can be reached in the bot when it has approved members
(and at least one message to them goes through: a member who never started the
bot, or blocked it, is not reached); otherwise, or when every such message fails,
by a plain e-mail to its contact address through the newsletter's transport
(`infranet.newsletter.outbound.send_notice`: the `[smtp]` server, or the Maildir
outbox without one). An organisation reached neither way is reported as such, so
that the user can be shown its contact and get in touch themselves.

`reach_of` tells in advance which way will be tried (so a form can say so before
anything is stored); `deliver` does it and says which way worked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot
from telegram.error import TelegramError

from infranet.bot.common import Buttons, send_html
from infranet.context import AppContext
from infranet.newsletter.limits import mask_address
from infranet.newsletter.outbound import SENT, send_notice
from infranet.storage.models import Member, MemberStatus, Organisation

log = logging.getLogger(__name__)

BOT, EMAIL, NONE = "bot", "email", "none"


@dataclass(frozen=True)
class Recipient:
    """A member who speaks for the organisation in the bot."""

    telegram_id: int
    language: str


@dataclass(frozen=True)
class OrgReach:
    """How one organisation can be reached, read in one transaction (no ORM objects,
    so that it can be used after the transaction, e.g. in `turn.after_commit`)."""

    org_id: int
    name: str
    email: str | None
    phone: str | None
    members: tuple[Recipient, ...]

    @property
    def way(self) -> str:
        """The way `deliver` tries first: BOT, EMAIL or NONE."""
        if self.members:
            return BOT
        return EMAIL if self.email else NONE

    @property
    def contact(self) -> str:
        """The organisation's contact for a person to use ("—" when it has none)."""
        return ", ".join(x for x in (self.email, self.phone) if x) or "—"


async def reach_of(session: AsyncSession, org_ids: Iterable[int], *,
                   but: int | None = None) -> dict[int, OrgReach]:
    """How each organisation can be reached; `but` is a Telegram user left out (the
    person acting, who needs no notice of their own action)."""
    ids = set(org_ids)
    if not ids:
        return {}
    orgs = (await session.scalars(select(Organisation).where(Organisation.id.in_(ids)))).all()
    rows = (await session.execute(select(Member.organisation_id, Member.telegram_id, Member.language)
                                  .where(Member.organisation_id.in_(ids),
                                         Member.status == MemberStatus.APPROVED)
                                  .order_by(Member.id))).all()
    members: dict[int, list[Recipient]] = {}
    for org_id, telegram_id, language in rows:
        if org_id is None:
            continue
        if telegram_id != but:
            members.setdefault(org_id, []).append(Recipient(telegram_id, language or "pl"))
    return {org.id: OrgReach(org.id, org.name, org.contact_email, org.phone,
                             tuple(members.get(org.id, ()))) for org in orgs}


@dataclass(frozen=True)
class Notice:
    """What an organisation is told: Telegram HTML (and buttons) in each member's
    language, and the plain-text e-mail for when nobody in the bot can be reached."""

    telegram: Callable[[str], tuple[str, Buttons]]
    subject: str
    body: str
    reply_to: str | None = None


async def deliver(ctx: AppContext, bot: Bot, target: OrgReach, notice: Notice) -> str:
    """Tell the organisation; returns how it was reached: BOT, EMAIL or NONE."""
    reached = False
    for member in target.members:
        text, buttons = notice.telegram(member.language)
        try:
            reached = await send_html(bot, member.telegram_id, text, buttons) is not None or reached
        except TelegramError:
            log.exception("could not reach member %s of organisation %s", member.telegram_id,
                          target.org_id)
    if reached:
        return BOT
    if target.email:
        outcome = await send_notice(ctx, target.email, notice.subject, notice.body,
                                    reply_to=notice.reply_to)
        if outcome.kind == SENT:
            return EMAIL
        log.warning("organisation %s: e-mail to %s not delivered (%s)", target.org_id,
                    mask_address(target.email), outcome.detail)
    return NONE
