"""/start, /help, /lang, and the answers of last resort (/cancel outside a
conversation, an unknown command)."""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot import (
    menus,
    messages,  # noqa: F401  (registers the shared messages)
)
from infranet.bot.common import Command, Html, Turn, cb, esc, handler, private_link
from infranet.context import AppContext
from infranet.i18n import LANGUAGES
from infranet.network.membership import set_language
from infranet.storage.models import MemberStatus

COMMANDS = [Command("start"), Command("help"), Command("lang"), Command("cancel")]

LANGUAGE_NAMES = {"pl": "Polski", "en": "English"}


@handler(db=False)
async def cmd_start(turn: Turn) -> None:
    member = turn.who.member
    payload = turn.args[0] if turn.args else ""
    parts: list[str] = []
    if turn.who.is_member and member is not None:
        org = member.organisation.name if member.organisation else "—"
        parts.append(turn.t("bot.start.member", name=member.display_name or turn.who.display_name,
                            org=org))
        if turn.who.is_admin:
            parts.append(turn.t("bot.start.admin"))
    elif member is not None and member.status == MemberStatus.PENDING:
        parts.append(turn.t("bot.start.pending"))
    else:
        parts.append(turn.t("bot.start.anyone", region=turn.ctx.settings.region.name))
    if payload and payload.isidentifier() and payload != "start":
        parts.append(turn.t("bot.start.deep_link", command=payload))
    # One message: what the bot is, where the calendar is, and buttons for the next step.
    parts.append(turn.t("bot.start.next", **_links(turn)))
    turn.reply(Html("\n\n".join(parts)), _next_steps(turn))
    # The menu as this person's role and language now are (it may have missed a change).
    menus.refresh_after_commit(turn, member, telegram_id=turn.who.telegram_id,
                               lang=turn.user_data.get("lang"))


def _links(turn: Turn) -> dict[str, str]:
    base = turn.ctx.settings.http.public_base_url.rstrip("/")
    return {"calendar": f"{base}/calendar", "feed": f"{base}/calendar.ics"}


def _next_steps(turn: Turn) -> list[list[tuple[str, str]]]:
    """The buttons under /start: the step a person is most likely to take next. Joining
    and adding an event open their form (a private-chat link that starts it); the others
    answer here."""
    rows: list[list[tuple[str, str]]] = []
    member = turn.who.member
    if turn.who.is_member:
        rows.append([(turn.t("bot.start.b.event"), private_link(turn.context, "event"))])
    elif member is None or member.status not in (MemberStatus.PENDING, MemberStatus.BLOCKED):
        rows.append([(turn.t("bot.start.b.join"), private_link(turn.context, "join"))])
    rows.append([(turn.t("bot.start.b.events"), cb("st", "events")),
                 (turn.t("bot.start.b.check"), cb("st", "check"))])
    rows.append([(turn.t("bot.start.b.subscribe"), cb("st", "sub"))])
    return rows


@handler(writes=False)
async def on_start_button(turn: Turn) -> None:
    """`st:events|check|sub`, the buttons under /start: each does what it says."""
    from infranet.bot.handlers.event_listings import events_page

    choice = turn.data[1] if len(turn.data) > 1 else ""
    if choice == "events":
        text, buttons = await events_page(turn, None, "week", 0)
        turn.reply(text, buttons)
    elif choice == "check":
        turn.say("bot.events.check_usage")
    elif choice == "sub":
        base = turn.ctx.settings.http.public_base_url.rstrip("/")
        turn.say("bot.start.subscribe", page=f"{base}/newsletter/subscribe")
    else:
        turn.toast(turn.t("bot.button_expired"))


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
        await set_language(turn.session, turn.ctx, turn.who.actor, code)
    turn.user_data["lang"] = code
    turn.who.lang = code
    # The command menu follows: this person's own menu, in the language chosen.
    menus.refresh_after_commit(turn, turn.who.member, telegram_id=turn.who.telegram_id, lang=code)
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
            CallbackQueryHandler(on_lang_button, pattern=r"^lang:"),
            CallbackQueryHandler(on_start_button, pattern=r"^st:")]


def last_handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    """After every module: /cancel with no conversation, unknown commands (private only:
    in a group other bots' commands are none of our business)."""
    return [CommandHandler("start", cmd_start),  # after the forms: `/start join` opens /join
            CommandHandler("cancel", cmd_cancel),
            MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, on_unknown),
            MessageHandler(filters.TEXT & filters.ChatType.PRIVATE, on_stray_text),
            CallbackQueryHandler(on_stale_button)]


__all__ = ["COMMANDS", "esc", "handlers", "last_handlers"]
