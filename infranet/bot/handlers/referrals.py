"""Referrals in the chat, registered in one place: /refer (a guided referral of a
client to another organisation), the target's Accept / Decline buttons, /referrals,
and the duplicate-support warning.

The handlers live in modules of one job each: `referral_form` (the /refer conversation
and telling the organisation) and `referral_views` (details, decisions, /referrals).
Callback data (prefix `ref`): `ref:to:<org>`, `ref:kind:<kind>`, `ref:skip`,
`ref:ok|send|cancel` inside the form; `ref:<referral id>:acc|dec|close|view` and
`ref:list:<page>` outside it.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot.common import Command, conversation
from infranet.bot.handlers.referral_form import (
    CLIENT,
    CONSENT,
    CONTACT,
    IDS,
    KIND,
    NAME,
    NEED,
    TARGET,
    cmd_refer,
    on_client,
    on_consent,
    on_contact,
    on_ids,
    on_kind,
    on_need,
    on_target,
    on_target_query,
)
from infranet.bot.handlers.referral_views import cmd_referrals, on_referral_button
from infranet.context import AppContext

COMMANDS = [Command("refer", "member"), Command("referrals", "member")]


def _conversation(ctx: AppContext) -> BaseHandler[Any, Any, Any]:
    text = filters.TEXT & ~filters.COMMAND
    return conversation(ctx, NAME, [CommandHandler("refer", cmd_refer)], {
        TARGET: [MessageHandler(text, on_target_query),
                 CallbackQueryHandler(on_target, pattern=r"^ref:to:")],
        KIND: [CallbackQueryHandler(on_kind, pattern=r"^ref:kind:")],
        CLIENT: [MessageHandler(text, on_client)],
        IDS: [MessageHandler(text, on_ids), CallbackQueryHandler(on_ids, pattern=r"^ref:skip$")],
        NEED: [MessageHandler(text, on_need)],
        CONTACT: [MessageHandler(text, on_contact)],
        CONSENT: [CallbackQueryHandler(on_consent, pattern=r"^ref:(ok|send|cancel)$")],
    })


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [_conversation(ctx),
            CallbackQueryHandler(on_referral_button, pattern=r"^ref:"),
            CommandHandler("referrals", cmd_referrals)]


__all__ = ["COMMANDS", "handlers"]
