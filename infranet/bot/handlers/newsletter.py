"""Newsletter commands: /subscribe (anyone), /newsletter_note, /newsletter_preview and
/newsletter_send (admins); and the newsletter's alerts delivered to the admins.

/newsletter_send asks for a confirmation whose buttons name that one request
(`nl:send:<key>`, `storage/decisions.py`): pressed twice, or days later, it says who
settled it and sends nothing again.

Alerts that offer something carry a button naming that one offer (`alerts.open_action`):
"resend unknown" (`nl:ru:<key>`, then a confirmation `nl:ruy:<key>` / `nl:run:<key>`)
resends exactly the deliveries the alert counted, once; "resume" (`nl:rs:<key>`)
resumes a paused issue. A button whose offer was settled says by whom and changes
nothing. Every button is checked for an admin on the server (`handler(access="admin")`)."""

from __future__ import annotations

import logging
import re
from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from infranet.bot.application import InfranetApplication
from infranet.bot.common import Command, Html, Turn, cb, esc, handler, send_html, tr
from infranet.context import AppContext
from infranet.network.members import admins
from infranet.network.membership import actor_label
from infranet.newsletter import alerts
from infranet.newsletter.issues import (
    add_note,
    build_issue,
    manual_period_key,
    preview,
    resend,
    resume,
    send_pending,
)
from infranet.newsletter.outbound import send_confirmation_after_answer
from infranet.newsletter.subscribers import normalise_address, subscribe
from infranet.storage.decisions import claim_send_request, note_sent_issue, open_send_request
from infranet.storage.models import IssueStatus
from infranet.validation import plain_text

log = logging.getLogger(__name__)

COMMANDS = [Command("subscribe"), Command("newsletter_note", "admin"),
            Command("newsletter_preview", "admin"), Command("newsletter_send", "admin"),
            Command("subscribers", "admin")]



@handler(chat="private")
async def cmd_subscribe(turn: Turn) -> None:
    if not turn.args:
        turn.say("bot.nl.subscribe_usage")
        return
    address = normalise_address(" ".join(turn.args))  # ValidationFailed names the problem
    result = await subscribe(turn.session, turn.ctx, address, source="bot", language=turn.lang)
    if result.needs_confirmation:
        ctx, subscriber_id = turn.ctx, result.subscriber_id
        turn.after_commit(lambda: send_confirmation_after_answer(ctx, subscriber_id))
    # The same answer, as soon, whether or not the address was known: that stays private.
    turn.say("bot.nl.check_inbox", email=address)


@handler(access="admin", chat="private")
async def cmd_note(turn: Turn) -> None:
    message = turn.update.effective_message
    text = (message.text or "") if message else ""
    body = text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else ""
    body = plain_text(body, multiline=True)  # the one plain-text rule (infranet.validation)
    if not body:
        turn.say("bot.nl.note_usage")
        return
    note = await add_note(turn.session, turn.ctx, turn.actor, body)
    turn.say("bot.nl.note_saved", id=note.id)


@handler(access="admin", chat="private")
async def cmd_preview(turn: Turn) -> None:
    shown = await preview(turn.session, turn.ctx, turn.actor, language=turn.lang)
    blocks = [turn.t("bot.nl.preview", subject=shown.subject)]
    if shown.errors:
        blocks.append(turn.t("bot.nl.errors", items="; ".join(shown.errors)))
    if shown.warnings:
        blocks.append(turn.t("bot.nl.warnings", items="; ".join(shown.warnings)))
    blocks.append(esc(shown.text.strip()))
    turn.reply(Html("\n\n".join(blocks)))


@handler(access="admin", chat="private")
async def cmd_subscribers(turn: Turn) -> None:
    """Counts only: addresses stay out of the chat (a chat is copied to phones and backups)."""
    from infranet.newsletter import roster

    every = await roster.count_subscribers(turn.session, turn.ctx, turn.actor)
    confirmed = await roster.count_subscribers(turn.session, turn.ctx, turn.actor,
                                               status="confirmed")
    region = turn.ctx.region
    lines = [turn.t("bot.nl.subs_title", total=every.total), "", turn.t("bot.nl.subs_status")]
    lines += [f"• {turn.t(f'bot.nl.st.{s}')}: {every.by_status[s]}"
              for s in roster.STATUSES if every.by_status.get(s)]
    lines += ["", turn.t("bot.nl.subs_language")]
    lines += [f"• {esc(lang)}: {n}" for lang, n in sorted(every.by_language.items())]
    lines += ["", turn.t("bot.nl.subs_district")]

    def name(slug: str) -> str:
        if slug == roster.ALL_DISTRICTS:
            return turn.t("bot.nl.subs_whole_region")
        district = region.by_slug.get(slug)
        return esc(district.name if district is not None else slug)

    lines += [f"• {name(slug)}: {n}" for slug, n in
              sorted(confirmed.by_district.items(), key=lambda item: (-item[1], name(item[0])))]
    lines += ["", turn.t("bot.nl.subs_hint")]
    turn.reply(Html("\n".join(lines)))


@handler(access="admin", chat="private")
async def cmd_send(turn: Turn) -> None:
    key = await open_send_request(turn.session, actor_label(turn.actor))
    turn.say("bot.nl.confirm_send", [[(turn.t("bot.nl.send_button"), cb("nl", "send", key)),
                                      (turn.t("bot.cancel"), cb("nl", "cancel", key))]])


_SEND_KEY = re.compile(r"^[0-9a-f]{12}$")


@handler(access="admin", chat="private")
async def on_send(turn: Turn) -> None:
    """`nl:send:<key>` / `nl:cancel:<key>`: settle that one request, once."""
    action = turn.data[1] if len(turn.data) > 1 else ""
    key = turn.data[2] if len(turn.data) > 2 else ""
    if len(turn.data) == 3 and action in _ALERT_ACTIONS and _SEND_KEY.match(key):
        await _ALERT_ACTIONS[action](turn, key)
        return
    if len(turn.data) != 3 or action not in ("send", "cancel") or not _SEND_KEY.match(key):
        turn.toast(turn.t("bot.button_expired"))
        return
    settled, data = await claim_send_request(turn.session, key, actor_label(turn.actor),
                                             "sent" if action == "send" else "cancelled")
    if data is None:
        turn.toast(turn.t("bot.button_expired"))
        return
    if not settled:
        text = (turn.t("bot.nl.already_sent", by=data.get("decided_by", "—"), id=data.get("issue_id") or "—")
                if data.get("status") == "sent"
                else turn.t("bot.nl.already_cancelled", by=data.get("decided_by", "—")))
        turn.toast(text)
        turn.edit(text)
        return
    if action == "cancel":
        turn.edit(turn.t("bot.nl.cancelled"))
        return
    built = await build_issue(turn.session, turn.ctx, turn.actor,
                              period_key=manual_period_key(turn.ctx), force=True)
    issue = built.issue
    await note_sent_issue(turn.session, key, issue.id if issue is not None else None)
    if issue is None or issue.status == IssueStatus.SKIPPED:
        turn.edit(turn.t("bot.nl.skipped"))
        return
    if built.recipients == 0:
        turn.edit(turn.t("bot.nl.nobody", id=issue.id))
        return
    turn.edit(turn.t("bot.nl.sending", id=issue.id, subject=issue.subject, count=built.recipients))
    _send_after_commit(turn, issue.id)


# --- what the newsletter's alerts offer -------------------------------------------------------


def _settled(turn: Turn, data: dict[str, Any] | None) -> None:
    """An offer already settled (or gone): say so, change nothing."""
    text = (turn.t("bot.nl.action_settled", by=data.get("decided_by", "—")) if data is not None
            else turn.t("bot.button_expired"))
    turn.toast(text)
    turn.edit(text)


async def _ask_resend_unknown(turn: Turn, key: str) -> None:
    """`nl:ru:<key>`: ask to confirm (resending may give some readers a second copy)."""
    data = await alerts.peek_action(turn.session, key)
    if data is None or data.get("status") != "open" or data.get("kind") != alerts.RESEND_UNKNOWN:
        _settled(turn, data)
        return
    count, issue = len(data.get("delivery_ids") or []), data.get("issue_id")
    turn.edit(turn.t("bot.nl.confirm_resend_unknown", count=count, issue=issue),
              [[(turn.t("bot.nl.confirm_button"), cb("nl", "ruy", key)),
                (turn.t("bot.cancel"), cb("nl", "run", key))]])


async def _resend_unknown(turn: Turn, key: str, *, confirmed: bool = True) -> None:
    """`nl:ruy:<key>` / `nl:run:<key>`: settle the offer once; resend exactly its deliveries."""
    settled, data = await alerts.claim_action(turn.session, key, actor_label(turn.actor))
    if not settled or data is None or data.get("kind") != alerts.RESEND_UNKNOWN:
        _settled(turn, data)
        return
    if not confirmed:
        turn.edit(turn.t("bot.nl.resend_cancelled"))
        return
    issue_id = int(data["issue_id"])
    count = await resend(turn.session, turn.ctx, turn.actor, issue_id, "unknown",
                         only=[int(i) for i in data.get("delivery_ids") or []])
    turn.edit(turn.t("bot.nl.resent_unknown", issue=issue_id, count=count))
    if count:
        _send_after_commit(turn, issue_id)


async def _cancel_resend_unknown(turn: Turn, key: str) -> None:
    await _resend_unknown(turn, key, confirmed=False)


async def _resume(turn: Turn, key: str) -> None:
    """`nl:rs:<key>`: resume the paused issue of the alert, once."""
    settled, data = await alerts.claim_action(turn.session, key, actor_label(turn.actor))
    if not settled or data is None or data.get("kind") != alerts.RESUME:
        _settled(turn, data)
        return
    issue_id = int(data["issue_id"])
    if not await resume(turn.session, turn.ctx, turn.actor, issue_id):
        turn.edit(turn.t("bot.nl.not_paused", issue=issue_id))
        return
    turn.edit(turn.t("bot.nl.resumed", issue=issue_id))
    _send_after_commit(turn, issue_id)


def _send_after_commit(turn: Turn, issue_id: int) -> None:
    """Once committed, the newsletter service of this process picks the deliveries up; without
    one (a bot run on its own, the tests) this task sends them. Delivery rows make either
    way send each message once."""
    ctx, start_sending = turn.ctx, turn.context.start_sending

    async def send() -> None:
        if start_sending is not None:
            start_sending()
        else:
            await send_pending(ctx, issue_ids=[issue_id])

    turn.after_commit(send)


_ALERT_ACTIONS = {"ru": _ask_resend_unknown, "ruy": _resend_unknown, "run": _cancel_resend_unknown,
                  "rs": _resume}


# --- alerts from the newsletter ----------------------------------------------------------------


def _alert_buttons(lang: str, action: alerts.Action | None) -> Any:
    if action is None:
        return None
    if action.kind == alerts.RESEND_UNKNOWN:
        label = tr(lang, "bot.nl.resend_unknown_button", count=action.count)
        return [[(label, cb("nl", "ru", action.key))]]
    if action.kind == alerts.RESUME:
        return [[(tr(lang, "bot.nl.resume_button", issue=action.issue_id),
                  cb("nl", "rs", action.key))]]
    return None


async def _alert_admins(application: InfranetApplication, text_en: str, text_pl: str,
                        action: alerts.Action | None = None) -> None:
    """Every admin, in their language, with the alert's offer as a button."""
    if not application.running:
        return
    async with application.infra.db.transaction() as session:
        people = [(a.telegram_id, a.language or "pl") for a in await admins(session)]
    for chat_id, lang in people:
        await send_html(application.bot, chat_id,
                        tr(lang, "bot.nl.alert", text=text_pl if lang == "pl" else text_en),
                        _alert_buttons(lang, action))


def setup(application: InfranetApplication, ctx: AppContext) -> None:
    """Listen to the alerts of this process's context (`ctx.alerts`) while the bot runs."""

    async def tell_admins(text_en: str, text_pl: str, action: alerts.Action | None = None) -> None:
        await _alert_admins(application, text_en, text_pl, action)

    ctx.alerts.register(tell_admins, actions=True)


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [CommandHandler("subscribe", cmd_subscribe),
            CommandHandler("newsletter_note", cmd_note),
            CommandHandler("newsletter_preview", cmd_preview),
            CommandHandler("newsletter_send", cmd_send),
            CommandHandler("subscribers", cmd_subscribers),
            CallbackQueryHandler(on_send, pattern=r"^nl:")]
