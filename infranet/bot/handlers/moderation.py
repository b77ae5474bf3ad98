"""Moderation: waiting events and training notices reach the admins with
Publish / Reject buttons; the poster is told the outcome.

New waiting items are found by a periodic job this module declares (`jobs`; app.py puts
it on the service's scheduler): every ANNOUNCE_INTERVAL_S seconds while the bot runs in
this process, an indexed range query over events newer than the last one announced, a
position shared by all instances. So any way an item
comes to wait (the /event and /training forms, an edit, an import) reaches the
admins without the form knowing about moderation. `/pending` lists everything still waiting.

A button names the item and the version its message shows (`mod:ev:<id>:<revision>:ok`):
an item edited since gets its current text and fresh buttons instead of a decision.
Every admin's copy is remembered and, once one admin decides, edited to show the outcome
and who decided (`bot/decisions.py`); an old copy pressed later says who decided.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.interval import IntervalTrigger
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from infranet.bot.application import InfranetApplication
from infranet.bot.common import Buttons, Command, Html, Turn, cb, handler, int_part, tr
from infranet.bot.decisions import edit_copies, send_copies
from infranet.calendar.moderation import (
    Verdict,
    Waiting,
    all_waiting,
    claim_announcements,
    decide_event,
    decide_training,
    has_unannounced,
)
from infranet.component import Job
from infranet.context import AppContext
from infranet.i18n import format_date, format_span
from infranet.network.members import admins
from infranet.storage.models import Member, Moderation

if TYPE_CHECKING:
    from infranet.bot.runtime import BotRuntime

log = logging.getLogger(__name__)

COMMANDS = [Command("pending", "admin")]
ANNOUNCE_INTERVAL_S = 3.0
STATE_KEY = "moderation_last_event_id"  # where versions before the shared position kept it



def describe(ctx: AppContext, item: Waiting, lang: str) -> str:
    if item.kind == "ev":
        event = item.event
        assert event is not None
        return tr(lang, "bot.mod.event", id=event.id, title=event.title,
                  when=format_span(event.starts_at, event.ends_at, ctx.tz, lang, all_day=event.all_day),
                  # a proposal from the site has no member organisation, only the name typed
                  org=event.organisation.name if event.organisation else event.organiser_name or "—",
                  district=event.district.name, place=f"\n{event.location}" if event.location else "")
    training = item.training
    assert training is not None
    return tr(lang, "bot.mod.training", id=training.id, title=training.title,
              org=training.organisation.name, district=training.district.name,
              deadline=format_date(training.deadline, lang), sessions=len(item.sessions or []))


def buttons(item: Waiting, lang: str) -> Buttons:
    version = item.version
    return [[(tr(lang, "bot.mod.publish"), cb("mod", item.kind, item.id, version, "ok")),
             (tr(lang, "bot.mod.reject"), cb("mod", item.kind, item.id, version, "no"))]]


async def announce_new(application: InfranetApplication) -> int:
    """Send newly waiting items to every admin; returns how many items were announced.

    The items are claimed in the database (see `claim_announcements`), so with several
    instances on one database each item reaches the admins once. Every copy sent is
    remembered, to be edited once an admin decides."""
    ctx = application.infra
    async with ctx.db.read() as session:
        if not await has_unannounced(session):
            return 0
    async with ctx.db.transaction() as session:
        # A position kept in bot_data by an earlier version seeds the shared one once.
        items = await claim_announcements(session, start_after=application.bot_data.pop(STATE_KEY, None))
        people = await admins(session) if items else []
        batches = [(item, [(admin.telegram_id, admin.language or "pl",
                            describe(ctx, item, admin.language or "pl"),
                            buttons(item, admin.language or "pl")) for admin in people])
                   for item in items]
    for item, messages in batches:
        await send_copies(application.bot, ctx.db, item.kind, item.id, messages)
    return len(items)


async def announce_job(runtime: BotRuntime) -> None:
    """The periodic job: announce while this process's bot runs (not before its start,
    not after its stop, not while it waits for the Bot API to answer)."""
    application = runtime.application
    if application is None or not application.running:
        return
    try:
        await announce_new(application)
    except Exception:
        log.exception("announcing waiting items to the admins failed")


def jobs(ctx: AppContext, runtime: BotRuntime | None) -> list[Job]:
    """Every ANNOUNCE_INTERVAL_S seconds, when the bot runs in this process."""
    if runtime is None:
        return []
    return [Job("bot.moderation", "announce waiting events and notices to the admins",
                IntervalTrigger(seconds=ANNOUNCE_INTERVAL_S), functools.partial(announce_job, runtime))]


@handler(access="admin", chat="private", writes=False)
async def cmd_pending(turn: Turn) -> None:
    """Each waiting item as a message of its own (a press changes only that item), each a
    copy edited when anyone decides."""
    items = await all_waiting(turn.session)
    if not items:
        turn.say("bot.mod.none")
        return
    copies = [(item.kind, item.id, (turn.chat_id, turn.lang, describe(turn.ctx, item, turn.lang),
                                    buttons(item, turn.lang))) for item in items]
    bot, db = turn.context.bot, turn.ctx.db

    async def send() -> None:
        for kind, item_id, message in copies:
            await send_copies(bot, db, kind, item_id, [message])

    turn.after_commit(send)


def _outcome(verdict: Verdict) -> Callable[[str], Html]:
    """The decided item as every admin's copy shows it, in the copy's language."""
    title, by, published = verdict.title, verdict.decided_by, verdict.moderation == Moderation.PUBLISHED

    def text(lang: str) -> Html:
        return tr(lang, "bot.mod.published_admin" if published else "bot.mod.rejected_admin",
                  title=title, by=by)
    return text


@handler(access="admin")
async def on_decision(turn: Turn) -> None:
    """`mod:<ev|tr>:<id>:<version>:<ok|no>`; anything else (an older button without the
    version, a forged one) only answers that the button is no longer valid."""
    kind = turn.data[1] if len(turn.data) > 1 else ""
    item_id = int_part(turn.data, 2)
    version = int_part(turn.data, 3)
    verdict = turn.data[4] if len(turn.data) > 4 else ""
    if (len(turn.data) != 5 or kind not in ("ev", "tr") or item_id is None or version is None
            or verdict not in ("ok", "no")):
        turn.toast(turn.t("bot.button_expired"))
        return
    publish = verdict == "ok"
    decide = decide_event if kind == "ev" else decide_training
    result = await decide(turn.session, turn.ctx, turn.actor, item_id, publish, version)
    if result.state == "outdated":
        assert result.current is not None
        turn.toast(turn.t("bot.mod.outdated"))
        turn.edit(Html(f"{turn.t('bot.mod.outdated')}\n\n{describe(turn.ctx, result.current, turn.lang)}"),
                  buttons(result.current, turn.lang))
        return
    if result.state == "cancelled":
        turn.toast(turn.t("bot.mod.cancelled", title=result.title))
        turn.edit(turn.t("bot.mod.cancelled", title=result.title))
        return
    text_for = _outcome(result)
    turn.edit(text_for(turn.lang))
    if result.state == "already":
        outcome = "published" if result.moderation == Moderation.PUBLISHED else "rejected"
        turn.toast(turn.t("bot.mod.already", by=result.decided_by,
                          outcome=turn.t(f"bot.mod.outcome.{outcome}")))
        return
    poster = await turn.session.get(Member, result.member_id) if result.member_id else None
    if poster is not None:
        turn.notify_member(poster, "bot.mod.published_poster" if publish else "bot.mod.rejected_poster",
                           title=result.title)
    query = turn.update.callback_query
    message = query.message if query else None
    pressed = (message.chat.id, message.message_id) if message is not None else None
    bot, db = turn.context.bot, turn.ctx.db

    async def edit() -> None:
        await edit_copies(bot, db, kind, item_id, text_for, skip=pressed)

    turn.after_commit(edit)


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [CommandHandler("pending", cmd_pending), CallbackQueryHandler(on_decision, pattern=r"^mod:")]
