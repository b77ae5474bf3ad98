"""Membership in the chat, registered in one place: the /join form, the admins'
Approve / Reject buttons, and the admin commands /members, /approve, /block, /unblock,
/promote, /demote.

The handlers live in modules of one job each: `join_form` (the /join conversation),
`join_decisions` (a request's buttons and deciding it) and `member_admin` (the admin
commands). Callback data: `join:*` inside the form, `jr:<request id>:ok|no[:l]` for a
decision, `blk:<member id>:ok|no` for the confirmation of /block, and `mem:*`, the
buttons of old messages, which only say so.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot.common import Command
from infranet.bot.handlers.join_decisions import on_decision, on_old_button
from infranet.bot.handlers.join_form import (
    CONFIRM,
    NAME,
    NEW_DISTRICTS,
    NEW_EMAIL,
    NEW_NAME,
    NEW_TYPE,
    ORG,
    cmd_join,
    on_confirm,
    on_new_districts,
    on_new_email,
    on_new_name,
    on_new_org,
    on_new_type,
    on_org_picked,
    on_org_query,
)
from infranet.bot.handlers.member_admin import (
    cmd_approve,
    cmd_block,
    cmd_demote,
    cmd_members,
    cmd_promote,
    cmd_unblock,
    on_block,
)
from infranet.context import AppContext

COMMANDS = [Command("join"), Command("members", "admin"), Command("approve", "admin"),
            Command("block", "admin"), Command("unblock", "admin"), Command("promote", "admin"),
            Command("demote", "admin")]


def _join_conversation(ctx: AppContext) -> BaseHandler[Any, Any, Any]:
    from infranet.bot.common import conversation

    text = filters.TEXT & ~filters.COMMAND
    return conversation(ctx, NAME, [CommandHandler("join", cmd_join)], {
        ORG: [MessageHandler(text, on_org_query),
              CallbackQueryHandler(on_org_picked, pattern=r"^join:org:"),
              CallbackQueryHandler(on_new_org, pattern=r"^join:new$")],
        NEW_NAME: [MessageHandler(text, on_new_name)],
        NEW_TYPE: [CallbackQueryHandler(on_new_type, pattern=r"^join:type:")],
        NEW_DISTRICTS: [MessageHandler(text, on_new_districts),
                        CallbackQueryHandler(on_new_districts, pattern=r"^join:region$")],
        NEW_EMAIL: [MessageHandler(text, on_new_email)],
        CONFIRM: [CallbackQueryHandler(on_confirm, pattern=r"^join:(ok|cancel)$")],
    })


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [
        _join_conversation(ctx),
        CallbackQueryHandler(on_decision, pattern=r"^jr:"),
        # Buttons sent before join requests had rows of their own named the member.
        CallbackQueryHandler(on_old_button, pattern=r"^mem:"),
        CallbackQueryHandler(on_block, pattern=r"^blk:"),
        CommandHandler("members", cmd_members),
        CommandHandler("approve", cmd_approve),
        CommandHandler("block", cmd_block),
        CommandHandler("unblock", cmd_unblock),
        CommandHandler("promote", cmd_promote),
        CommandHandler("demote", cmd_demote),
    ]


__all__ = ["COMMANDS", "handlers"]
