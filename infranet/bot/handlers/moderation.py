"""Moderation: waiting events and training notices reach the admins with
Publish / Reject buttons; the poster is told the outcome.

New waiting items are found by a repeating job of the Application (every
ANNOUNCE_INTERVAL_S seconds, an indexed range query over events newer than the
last one announced, a position shared by all instances), so any way an item
comes to wait (the /event and /training forms, an edit, an import) reaches the
admins without the form knowing about moderation. `/pending` lists everything still waiting.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from infranet.bot.application import BotContext, InfranetApplication
from infranet.bot.common import Buttons, Command, Turn, cb, handler, int_part, send_html, tr
from infranet.context import AppContext
from infranet.i18n import format_date, format_span, register
from infranet.storage.members import admins
from infranet.storage.models import Event, Member, Training
from infranet.storage.moderation import (
    Waiting,
    all_waiting,
    claim_announcements,
    decide_event,
    decide_training,
    has_unannounced,
)

log = logging.getLogger(__name__)

COMMANDS = [Command("pending", "admin")]
ANNOUNCE_INTERVAL_S = 3.0
STATE_KEY = "moderation_last_event_id"  # where versions before the shared position kept it

register({
    "bot.cmd.pending": {"pl": "wydarzenia i nabory czekające na zatwierdzenie",
                        "en": "events and trainings waiting for approval"},
    "bot.mod.event": {
        "pl": "<b>Do zatwierdzenia: wydarzenie</b> #{id}\n{title}\n{when}\n{org} · {district}{place}",
        "en": "<b>Waiting for approval: event</b> #{id}\n{title}\n{when}\n{org} · {district}{place}"},
    "bot.mod.training": {
        "pl": "<b>Do zatwierdzenia: nabór</b> #{id}\n{title}\n{org} · {district}\n"
              "Zgłoszenia do: {deadline} · zajęć: {sessions}",
        "en": "<b>Waiting for approval: training</b> #{id}\n{title}\n{org} · {district}\n"
              "Apply by: {deadline} · sessions: {sessions}"},
    "bot.mod.publish": {"pl": "✅ Opublikuj", "en": "✅ Publish"},
    "bot.mod.reject": {"pl": "❌ Odrzuć", "en": "❌ Reject"},
    "bot.mod.published_admin": {"pl": "✅ Opublikowano: {title}.", "en": "✅ Published: {title}."},
    "bot.mod.rejected_admin": {"pl": "❌ Odrzucono: {title}.", "en": "❌ Rejected: {title}."},
    "bot.mod.published_poster": {
        "pl": "Twoje ogłoszenie „{title}” zostało zatwierdzone i jest już w kalendarzu sieci.",
        "en": "Your posting \"{title}\" was approved and is now in the network's calendar."},
    "bot.mod.rejected_poster": {
        "pl": "Administrator sieci nie zatwierdził ogłoszenia „{title}”. W razie pytań "
              "skontaktuj się z sekretariatem.",
        "en": "A network admin did not approve your posting \"{title}\". Please contact the "
              "secretariat with any questions."},
    "bot.mod.none": {"pl": "Nic nie czeka na zatwierdzenie.", "en": "Nothing is waiting for approval."},
})


def describe(ctx: AppContext, item: Waiting, lang: str) -> str:
    if item.kind == "ev":
        event = item.event
        assert event is not None
        return tr(lang, "bot.mod.event", id=event.id, title=event.title,
                  when=format_span(event.starts_at, event.ends_at, ctx.tz, lang, all_day=event.all_day),
                  org=event.organisation.name if event.organisation else "—",
                  district=event.district.name, place=f"\n{event.location}" if event.location else "")
    training = item.training
    assert training is not None
    return tr(lang, "bot.mod.training", id=training.id, title=training.title,
              org=training.organisation.name, district=training.district.name,
              deadline=format_date(training.deadline, lang), sessions=len(item.sessions or []))


def buttons(item: Waiting, lang: str) -> Buttons:
    return [[(tr(lang, "bot.mod.publish"), cb("mod", item.kind, item.id, "ok")),
             (tr(lang, "bot.mod.reject"), cb("mod", item.kind, item.id, "no"))]]


async def announce_new(application: InfranetApplication) -> int:
    """Send newly waiting items to every admin; returns how many items were announced.

    The items are claimed in the database (see `claim_announcements`), so with several
    instances on one database each item reaches the admins once."""
    ctx = application.infra
    async with ctx.db.read() as session:
        if not await has_unannounced(session):
            return 0
    async with ctx.db.transaction() as session:
        # A position kept in bot_data by an earlier version seeds the shared one once.
        items = await claim_announcements(session, start_after=application.bot_data.pop(STATE_KEY, None))
        people = await admins(session) if items else []
        messages = [(admin.telegram_id, describe(ctx, item, admin.language or "pl"),
                     buttons(item, admin.language or "pl")) for item in items for admin in people]
    for chat_id, text, keyboard in messages:
        await send_html(application.bot, chat_id, text, keyboard)
    return len(items)


async def _announce_job(context: BotContext) -> None:
    try:
        await announce_new(context.application)  # type: ignore[arg-type]
    except Exception:
        log.exception("announcing waiting items to the admins failed")


def setup(application: InfranetApplication, ctx: AppContext) -> None:
    assert application.job_queue is not None
    application.job_queue.run_repeating(_announce_job, interval=ANNOUNCE_INTERVAL_S, first=0.5,
                                        name="moderation-announce")


@handler(access="admin", chat="private", writes=False)
async def cmd_pending(turn: Turn) -> None:
    items = await all_waiting(turn.session)
    if not items:
        turn.say("bot.mod.none")
    for item in items:
        turn.reply(describe(turn.ctx, item, turn.lang), buttons(item, turn.lang))


@handler(access="admin")
async def on_decision(turn: Turn) -> None:
    kind = turn.data[1] if len(turn.data) > 1 else ""
    item_id = int_part(turn.data, 2)
    verdict = turn.data[3] if len(turn.data) > 3 else ""
    if kind not in ("ev", "tr") or item_id is None or verdict not in ("ok", "no"):
        turn.toast(turn.t("bot.button_expired"))
        return
    publish = verdict == "ok"
    item: Event | Training
    if kind == "ev":
        item = await decide_event(turn.session, turn.ctx, turn.actor, item_id, publish)
    else:
        item = await decide_training(turn.session, turn.ctx, turn.actor, item_id, publish)
    turn.edit(turn.t("bot.mod.published_admin" if publish else "bot.mod.rejected_admin",
                     title=item.title))
    poster = await turn.session.get(Member, item.member_id) if item.member_id else None
    if poster is not None:
        turn.notify_member(poster, "bot.mod.published_poster" if publish else "bot.mod.rejected_poster",
                           title=item.title)


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [CommandHandler("pending", cmd_pending), CallbackQueryHandler(on_decision, pattern=r"^mod:")]
