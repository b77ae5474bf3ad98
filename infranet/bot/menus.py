"""Telegram's command menus: each person sees the commands they may use, in their language.

Why per chat: Telegram shows one menu per (scope, language). The default scope (Polish,
and one per other language by the user's app language) lists what anyone may use; a
member's and an admin's private chat get a menu of their own (`BotCommandScopeChat`)
with their commands, in the language they chose with /lang. A stranger who chose a
language other than their app's gets a chat menu too, so the menu follows /lang.

When a role or a language changes (approval, rejection, block, unblock, promotion,
demotion, /lang), `refresh_after_commit(turn, member)` sets that person's menu once the
change is committed; /start sets it as well, so a menu that missed a change (a member
approved from the CLI) is put right the next time the person starts the bot. At start the
service sets the default menus and the menus of every approved member (`set_all`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import TelegramError

from infranet.i18n import DEFAULT_LANGUAGE, LANGUAGES, t

if TYPE_CHECKING:
    from infranet.bot.common import Turn
    from infranet.storage.models import Member

log = logging.getLogger(__name__)

_VISIBLE = {"anyone": {"anyone"}, "member": {"anyone", "member"},
            "admin": {"anyone", "member", "admin"}}


def role_of(member: Member | None) -> str:
    """"admin", "member" or "anyone" (a stranger, a pending, rejected or blocked member)."""
    if member is None or not member.is_approved:
        return "anyone"
    return "admin" if member.is_admin else "member"


def menu_commands(lang: str, role: str = "anyone") -> list[BotCommand]:
    """The commands `role` may use, described in `lang` (the message `bot.cmd.<name>`)."""
    from infranet.bot.handlers import all_commands

    visible = _VISIBLE[role]
    return [BotCommand(c.name, t(lang, f"bot.cmd.{c.name}")[:256])
            for c in all_commands() if c.menu and c.access in visible]


async def set_defaults(bot: Any) -> None:
    """The menu of anyone without a menu of their own: Polish, and each other language
    for users whose Telegram app speaks it."""
    await bot.set_my_commands(menu_commands(DEFAULT_LANGUAGE), scope=BotCommandScopeDefault())
    for lang in LANGUAGES:
        if lang != DEFAULT_LANGUAGE:
            await bot.set_my_commands(menu_commands(lang), scope=BotCommandScopeDefault(),
                                      language_code=lang)


async def set_chat_menu(bot: Any, telegram_id: int, lang: str | None, role: str) -> None:
    """One person's menu in their private chat. Telegram prefers a chat's menu for the
    user's app language over the chat's menu for any language, so: a chosen language is
    the chat's menu and any per-language one is removed; without a chosen language a
    member gets one per language; a stranger without one gets none (the default menus
    are theirs). A person who has not started the bot cannot get a menu: not an error."""
    scope = BotCommandScopeChat(telegram_id)
    others = [code for code in LANGUAGES if code != DEFAULT_LANGUAGE]
    try:
        if role == "anyone" and not lang:
            await bot.delete_my_commands(scope=scope)
            for code in others:
                await bot.delete_my_commands(scope=scope, language_code=code)
            return
        await bot.set_my_commands(menu_commands(lang or DEFAULT_LANGUAGE, role), scope=scope)
        for code in others:
            if lang:
                await bot.delete_my_commands(scope=scope, language_code=code)
            else:
                await bot.set_my_commands(menu_commands(code, role), scope=scope, language_code=code)
    except TelegramError as exc:
        log.info("no command menu for %s: %s", telegram_id, exc)


def refresh_after_commit(turn: Turn, member: Member | None, *, telegram_id: int | None = None,
                         lang: str | None = None) -> None:
    """Set the menu of `member` (or of the stranger `telegram_id` who chose `lang`) as
    they are now, once the turn's transaction has committed."""
    bot = turn.context.bot
    target = member.telegram_id if member is not None else telegram_id
    if target is None:
        return
    role = role_of(member)
    chosen = (member.language if member is not None else None) or lang

    async def update() -> None:
        await set_chat_menu(bot, target, chosen, role)

    turn.after_commit(update)


async def set_all(bot: Any, db: Any) -> None:
    """At start: the default menus, and each approved member's own."""
    from sqlalchemy import select

    from infranet.storage.models import Member, MemberStatus

    await set_defaults(bot)
    async with db.read() as session:
        rows = await session.scalars(select(Member).where(Member.status == MemberStatus.APPROVED))
        people = [(m.telegram_id, m.language, role_of(m)) for m in rows.all()]
    for telegram_id, lang, role in people:
        await set_chat_menu(bot, telegram_id, lang, role)
