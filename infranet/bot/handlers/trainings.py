"""Training recruitment in the chat, registered in one place: the /training form with
Edit under a notice, the /trainings listing with Cancel, and the daily deadline job.

The handlers live in modules of one job each: `training_form` (the questions),
`training_save` (the confirm, its conflict check and the save), `training_listing`
(/trainings) and `training_deadlines` (the job's work). Registering them here, in this
order, keeps the conversation before the plain buttons that share its `tr` prefix, and
the catch-all for stale buttons last.

Callback data (prefix `tr`): tr:skip  tr:free  tr:d:<i>  tr:sr:<i>  tr:dback
tr:ok  tr:edit  tr:x  tr:f:<field>  tr:keep  tr:sug:<i>  tr:p:<page>:<area index or ->
tr:c:<training id>[:y]  tr:e:<training id> (edit a notice: its form, at the summary).

Jobs: `jobs(ctx, runtime=None)` declares the daily deadline job (08:05 local time,
outside the DST hour), which app.py schedules; `training_deadlines.deadline_job` is that
job, `training_deadlines.run_deadline_jobs(ctx, bot)` its work.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.cron import CronTrigger
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot.common import Command, Turn, conversation, handler
from infranet.bot.handlers.training_deadlines import deadline_job
from infranet.bot.handlers.training_form import (
    APPLY,
    CONFLICT,
    COST,
    DEADLINE,
    DESCRIPTION,
    DISTRICT,
    EDIT_PICK,
    PLACES,
    SESSIONS,
    SUMMARY,
    TARGET,
    TITLE,
    cmd_training,
    on_apply,
    on_cost,
    on_deadline,
    on_description,
    on_district,
    on_edit_entry,
    on_edit_pick,
    on_places,
    on_sessions,
    on_target,
    on_title,
)
from infranet.bot.handlers.training_listing import cmd_trainings, on_cancel, on_page
from infranet.bot.handlers.training_save import on_conflict, on_summary
from infranet.component import Job
from infranet.context import AppContext

if TYPE_CHECKING:
    from infranet.bot.runtime import BotRuntime

COMMANDS = [Command("training", "member"), Command("trainings")]


@handler()
async def on_stale(turn: Turn) -> None:
    turn.toast(turn.t("bot.button_expired"))


def jobs(ctx: AppContext, runtime: BotRuntime | None = None) -> list[Job]:
    """Daily at 08:05 local time (outside the 02:00–03:00 DST hour)."""
    return [Job("bot.training_deadlines", "training deadlines: remind and close",
                CronTrigger(hour=8, minute=5, timezone=ctx.tz),
                functools.partial(deadline_job, ctx, runtime))]


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    text = filters.TEXT & ~filters.COMMAND
    form_handler = conversation(
        ctx, "training",
        entry_points=[CommandHandler("training", cmd_training),
                      CallbackQueryHandler(on_edit_entry, pattern=r"^tr:e:\d+$")],
        states={
            TITLE: [MessageHandler(text, on_title)],
            SESSIONS: [MessageHandler(text, on_sessions)],
            DEADLINE: [MessageHandler(text, on_deadline)],
            TARGET: [MessageHandler(text, on_target)],
            PLACES: [MessageHandler(text, on_places), CallbackQueryHandler(on_places, pattern=r"^tr:skip$")],
            COST: [MessageHandler(text, on_cost), CallbackQueryHandler(on_cost, pattern=r"^tr:free$")],
            APPLY: [MessageHandler(text, on_apply)],
            DISTRICT: [MessageHandler(text, on_district),
                       CallbackQueryHandler(on_district, pattern=r"^tr:(d|sr|dback)(:|$)")],
            DESCRIPTION: [MessageHandler(text, on_description),
                          CallbackQueryHandler(on_description, pattern=r"^tr:skip$")],
            SUMMARY: [CallbackQueryHandler(on_summary, pattern=r"^tr:(ok|edit|x)$")],
            EDIT_PICK: [CallbackQueryHandler(on_edit_pick, pattern=r"^tr:f:")],
            CONFLICT: [CallbackQueryHandler(on_conflict, pattern=r"^tr:(keep|sug:\d+|x)$")],
        },
    )
    return [
        form_handler,
        CommandHandler("trainings", cmd_trainings),
        CallbackQueryHandler(on_page, pattern=r"^tr:p:"),
        CallbackQueryHandler(on_cancel, pattern=r"^tr:c:"),
        CallbackQueryHandler(on_stale, pattern=r"^tr:"),
    ]
