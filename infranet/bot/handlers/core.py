"""/start, /help, /lang, and the answers of last resort (/cancel outside a
conversation, an unknown command)."""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot import messages  # noqa: F401  (registers the shared messages)
from infranet.bot.common import Command, Html, Turn, cb, esc, handler
from infranet.context import AppContext
from infranet.i18n import LANGUAGES
from infranet.storage.membership import set_language
from infranet.storage.models import MemberStatus

COMMANDS = [Command("start"), Command("help"), Command("lang"), Command("cancel", menu=False)]

LANGUAGE_NAMES = {"pl": "Polski", "en": "English"}


@handler(db=False)
async def cmd_start(turn: Turn) -> None:
    member = turn.who.member
    payload = turn.args[0] if turn.args else ""
    if turn.who.is_member and member is not None:
        org = member.organisation.name if member.organisation else "—"
        turn.say("bot.start.member", name=member.display_name or turn.who.display_name, org=org)
        if turn.who.is_admin:
            turn.say("bot.start.admin")
    elif member is not None and member.status == MemberStatus.PENDING:
        turn.say("bot.start.pending")
    else:
        turn.say("bot.start.anyone", region=turn.ctx.settings.region.name)
    if payload and payload.isidentifier() and payload != "start":
        turn.say("bot.start.deep_link", command=payload)


@handler(db=False)
async def cmd_help(turn: Turn) -> None:
    from infranet.bot.handlers import all_commands

    visible = {"anyone": {"anyone"}, "member": {"anyone", "member"},
               "admin": {"anyone", "member", "admin"}}[turn.who.role]
    lines = [turn.t("bot.help.title"), ""]
    for command in all_commands():
        if command.access in visible:
            lines.append(f"/{command.name} — {turn.t('bot.cmd.' + command.name)}")
    if not turn.who.is_member:
        lines += ["", turn.t("bot.help.join_hint")]
    turn.reply(Html("\n".join(lines)))


@handler(chat="private")
async def cmd_lang(turn: Turn) -> None:
    wanted = turn.args[0].lower() if turn.args else ""
    if wanted in LANGUAGES:
        await _set(turn, wanted)
        return
    turn.say("bot.lang.choose", [[(LANGUAGE_NAMES[code], cb("lang", code)) for code in LANGUAGES]])


@handler()
async def on_lang_button(turn: Turn) -> None:
    code = turn.data[1] if len(turn.data) > 1 else ""
    if code not in LANGUAGES:
        turn.toast(turn.t("bot.button_expired"))
        return
    await _set(turn, code, edit=True)


async def _set(turn: Turn, code: str, *, edit: bool = False) -> None:
    if turn.who.member is not None:
        await set_language(turn.session, turn.who.actor, code)
    turn.user_data["lang"] = code
    turn.who.lang = code
    text = turn.t("bot.lang.set")
    if edit:
        turn.edit(text)
    else:
        turn.reply(text)


@handler(db=False)
async def cmd_cancel(turn: Turn) -> None:
    turn.say("bot.nothing_to_cancel")


@handler(db=False)
async def on_unknown(turn: Turn) -> None:
    turn.say("bot.unknown_command")


@handler(db=False)
async def on_stale_button(turn: Turn) -> None:
    """A button nobody handles any more (an old conversation step, a forged payload)."""
    turn.toast(turn.t("bot.button_expired"))


@handler(db=False)
async def on_stray_text(turn: Turn) -> None:
    """Text outside any conversation (e.g. an answer after a timeout)."""
    turn.say("bot.not_understood")


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [CommandHandler("help", cmd_help), CommandHandler("lang", cmd_lang),
            CallbackQueryHandler(on_lang_button, pattern=r"^lang:")]


def last_handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    """After every module: /cancel with no conversation, unknown commands (private only:
    in a group other bots' commands are none of our business)."""
    return [CommandHandler("start", cmd_start),  # after the forms: `/start join` opens /join
            CommandHandler("cancel", cmd_cancel),
            MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, on_unknown),
            MessageHandler(filters.TEXT & filters.ChatType.PRIVATE, on_stray_text),
            CallbackQueryHandler(on_stale_button)]


__all__ = ["COMMANDS", "esc", "handlers", "last_handlers"]
