"""The events' commands and buttons, registered in one place: the /event form with its
edit entries, then /check, /events, /my and the buttons under them.

The handlers live in modules of one job each: `event_form` (the /event form),
`event_edit` (editing and cancelling saved events and dates of a series),
`event_listings` (/check, /events, /my), with `event_ui` and `event_conflicts` shared
with the trainings. Registering them here, in this order, keeps the conversation before
the plain buttons that share its `ev` prefix, and the catch-all for stale buttons last.

Callback data (prefix `ev`, all under 64 bytes):
  ev:allday  ev:d:<i>  ev:sr:<i>  ev:dback  ev:c:<code>  ev:a:<code>|done  ev:skip
  ev:ok  ev:edit  ev:x  ev:f:<field>  ev:keep  ev:sug:<i>
  ev:p:<page>:<period>:<area index or ->   ev:e:<event id>  ev:del:<event id>[:y]
District buttons carry the district's index in the region (never a free text),
event buttons the event id, which every handler checks again on the server.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot.common import Command, Turn, conversation, handler
from infranet.bot.handlers.event_edit import (
    on_cancel_event,
    on_cancel_occurrence,
    on_edit_entry,
    on_occurrence_entry,
    on_series_edit,
)
from infranet.bot.handlers.event_form import (
    AUDIENCE,
    CATEGORY,
    CONFLICT,
    DATE,
    DESCRIPTION,
    DISTRICT,
    EDIT_PICK,
    HOURS,
    LINK,
    PLACE,
    SUMMARY,
    TITLE,
    cmd_event,
    on_audience,
    on_category,
    on_conflict_choice,
    on_date,
    on_description,
    on_district,
    on_edit_pick,
    on_hours,
    on_link,
    on_place,
    on_summary,
    on_title,
)
from infranet.bot.handlers.event_listings import (
    cmd_check,
    cmd_events,
    cmd_my,
    on_check_pick,
    on_events_page,
    on_my_page,
)
from infranet.context import AppContext

COMMANDS = [Command("event", "member"), Command("check"), Command("events"), Command("my", "member")]


@handler(db=False)
async def on_stale(turn: Turn) -> None:
    turn.toast(turn.t("bot.button_expired"))


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    text = filters.TEXT & ~filters.COMMAND
    skip = CallbackQueryHandler(on_place, pattern=r"^ev:skip$")
    form_handler = conversation(
        ctx, "event",
        entry_points=[CommandHandler("event", cmd_event),
                      CallbackQueryHandler(on_edit_entry, pattern=r"^ev:e:\d+$"),
                      CallbackQueryHandler(on_occurrence_entry, pattern=r"^ev:eo:\d+:\d+$")],
        states={
            TITLE: [MessageHandler(text, on_title)],
            DATE: [MessageHandler(text, on_date)],
            HOURS: [MessageHandler(text, on_hours), CallbackQueryHandler(on_hours, pattern=r"^ev:allday$")],
            DISTRICT: [MessageHandler(text, on_district),
                       CallbackQueryHandler(on_district, pattern=r"^ev:(d|sr|dback)(:|$)")],
            CATEGORY: [CallbackQueryHandler(on_category, pattern=r"^ev:c:")],
            AUDIENCE: [CallbackQueryHandler(on_audience, pattern=r"^ev:a:")],
            PLACE: [MessageHandler(text, on_place), skip],
            LINK: [MessageHandler(text, on_link), CallbackQueryHandler(on_link, pattern=r"^ev:skip$")],
            DESCRIPTION: [MessageHandler(text, on_description),
                          CallbackQueryHandler(on_description, pattern=r"^ev:skip$")],
            SUMMARY: [CallbackQueryHandler(on_summary, pattern=r"^ev:(ok|edit|x)$")],
            EDIT_PICK: [CallbackQueryHandler(on_edit_pick, pattern=r"^ev:f:")],
            CONFLICT: [CallbackQueryHandler(on_conflict_choice, pattern=r"^ev:(keep|sug:\d+|x)$")],
        },
    )
    return [
        form_handler,
        CommandHandler("check", cmd_check),
        CommandHandler("events", cmd_events),
        CommandHandler("my", cmd_my),
        CallbackQueryHandler(on_events_page, pattern=r"^ev:p:"),
        CallbackQueryHandler(on_check_pick, pattern=r"^ev:ck:"),
        CallbackQueryHandler(on_cancel_event, pattern=r"^ev:del:"),
        CallbackQueryHandler(on_series_edit, pattern=r"^ev:e:\d+:\d+$"),
        CallbackQueryHandler(on_cancel_occurrence, pattern=r"^ev:xo:"),
        CallbackQueryHandler(on_my_page, pattern=r"^ev:my:"),
        CallbackQueryHandler(on_stale, pattern=r"^ev:"),
    ]

