"""/calendar_source: the calendars of the member's organisation the network follows by URL.

    /calendar_source               the list, each with Check now and Remove buttons
    /calendar_source URL [powiat]  follow one more (webcal:// is fine)

The rules (who may, which URLs, duplicates) are `calendar.sources`; fetching now is
`calendar.source_refresh.check_source`, which may take the whole fetch timeout, so it runs
after the answer (`turn.after_commit`) and its result comes as a message of its own.

Buttons (prefix `src`) name the source and its version: `src:<id>:chk|rm|rmy|keep:<stamp>`,
where the stamp is the moment the source was (re)added. A source removed, or removed and
added again, makes its old buttons say they are outdated instead of acting on it.

The organisation's members hear of their sources (`ctx.notices`, see
`infranet/member_notices.py`): `setup` registers the sender while the bot runs here; an
organisation with nobody in the bot gets an e-mail at its contact address (`bot/reach.py`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from infranet.bot.application import BotContext, InfranetApplication
from infranet.bot.common import Command, Html, Turn, cb, esc, handler, int_part, send_html, tr
from infranet.bot.reach import Notice, deliver, reach_of
from infranet.calendar.source_refresh import Outcome, check_source
from infranet.calendar.sources import add_source, get_source, list_sources, remove_source
from infranet.context import AppContext
from infranet.errors import InfranetError, NotFound, PermissionDenied
from infranet.i18n import format_date, t
from infranet.member_notices import localized_params
from infranet.storage.actors import Actor
from infranet.storage.models import CalendarSource

log = logging.getLogger(__name__)

COMMANDS = [Command("calendar_source", "member")]


EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def _stamp(source: CalendarSource) -> int:
    """The source's version for its buttons: when it was (re)added, in microseconds."""
    return (source.created_at - EPOCH) // timedelta(microseconds=1)


def _buttons(turn: Turn, source: CalendarSource) -> list[tuple[str, str]]:
    stamp = _stamp(source)
    return [(turn.t("bot.sources.check_button", id=source.id), cb("src", source.id, "chk", stamp)),
            (turn.t("bot.sources.remove_button", id=source.id), cb("src", source.id, "rm", stamp))]


def _state(turn: Turn, source: CalendarSource) -> Html:
    if source.failures:
        return turn.t("bot.sources.state_failing", count=source.failures, error=source.last_error or "—")
    if source.last_ok_at is None:
        return turn.t("bot.sources.state_new")
    day = format_date(source.last_ok_at.astimezone(turn.ctx.tz).date(), turn.lang, weekday=False)
    return turn.t("bot.sources.state_ok", when=f"{day} {source.last_ok_at.astimezone(turn.ctx.tz):%H:%M}")


@handler(access="member", chat="private")
async def cmd_calendar_source(turn: Turn) -> None:
    if turn.args:
        district = " ".join(turn.args[1:]) or None
        org_id = turn.actor.organisation_id
        if org_id is None:
            raise PermissionDenied("error.need_org")
        source = await add_source(turn.session, turn.ctx, turn.actor, org_id, turn.args[0],
                                  district=district)
        turn.say("bot.sources.added", [_buttons(turn, source)[:1]], name=source.name,
                 url=source.url or "")
        return
    # Their own organisation's (an admin's too: the list says "your organisation's").
    sources = await list_sources(turn.session, turn.actor, turn.actor.organisation_id)
    if not sources:
        turn.say("bot.sources.none")
        turn.say("bot.sources.how_to_add")
        return
    lines = [turn.t("bot.sources.title")]
    for source in sources:
        lines.append(turn.t("bot.sources.line", id=source.id, name=source.name, url=source.url or "—",
                            state=_state(turn, source)))
    lines.append(turn.t("bot.sources.add_hint"))
    turn.reply(Html("\n\n".join(lines)), [_buttons(turn, source) for source in sources[:20]])


async def _current(turn: Turn) -> CalendarSource | None:
    """The source the pressed button names, if it is still the one the button was made for;
    else the message says the button is outdated."""
    source_id = int_part(turn.data, 1)
    # The stamp is compared, never given to the database: any 1-20 ASCII digits will do.
    stamp = turn.data[3] if len(turn.data) == 4 else ""
    if source_id is None or not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 20):
        turn.toast(turn.t("bot.button_expired"))
        return None
    try:
        source = await get_source(turn.session, source_id)
    except NotFound:
        source = None
    if source is None or str(_stamp(source)) != stamp:
        turn.edit(turn.t("bot.sources.outdated", id=source_id))
        return None
    turn.actor.require_org(source.organisation_id)
    return source


@handler(access="member", chat="private")
async def on_source_button(turn: Turn) -> None:
    action = turn.data[2] if len(turn.data) > 2 else ""
    source = await _current(turn)
    if source is None:
        return
    stamp = _stamp(source)
    if action == "chk":
        turn.toast(turn.t("bot.sources.checking", id=source.id))
        context, chat_id, lang, actor = turn.context, turn.chat_id, turn.lang, turn.actor
        source_id = source.id
        turn.after_commit(lambda: _check_and_tell(context, chat_id, lang, actor, source_id))
    elif action == "rm":
        turn.edit(turn.t("bot.sources.confirm_remove", id=source.id, name=source.name),
                  [[(turn.t("bot.sources.yes_remove"), cb("src", source.id, "rmy", stamp)),
                    (turn.t("bot.sources.keep"), cb("src", source.id, "keep", stamp))]])
    elif action == "rmy":
        await remove_source(turn.session, turn.ctx, turn.actor, source.id)
        turn.edit(turn.t("bot.sources.removed", id=source.id, name=source.name))
    elif action == "keep":
        turn.edit(turn.t("bot.sources.kept", id=source.id, name=source.name))
    else:
        turn.toast(turn.t("bot.button_expired"))


def outcome_text(lang: str, outcome: Outcome) -> Html:
    params = {"id": outcome.source_id, "name": outcome.name}
    if outcome.state == "failed":
        return tr(lang, "bot.sources.checked_failed", error=outcome.error(lang), **params)
    if outcome.state == "imported" and outcome.report is not None:
        report = outcome.report
        return tr(lang, "bot.sources.checked_imported", added=report.added, updated=report.updated,
                  cancelled=report.cancelled, unchanged=report.unchanged, **params)
    if outcome.state == "gone":
        return tr(lang, "bot.sources.outdated", id=outcome.source_id)
    return tr(lang, "bot.sources.checked_unchanged", **params)


async def _check_and_tell(context: BotContext, chat_id: int, lang: str, actor: Actor,
                          source_id: int) -> None:
    """Fetch now (after the button's answer), then say what came of it."""
    try:
        text = outcome_text(lang, await check_source(context.infra, actor, source_id))
    except InfranetError as exc:
        text = esc(exc.localized(lang))
    await send_html(context.bot, chat_id, text)


async def _tell_organisation(application: InfranetApplication, org_id: int, key: str,
                             params: dict[str, Any]) -> int:
    """A notice of the calendar for one organisation: its members in the bot, each in their
    language, else an e-mail at its contact address. Returns how many were reached (an
    e-mail counts as one)."""
    if not application.running:
        return 0
    ctx = application.infra
    async with ctx.db.read() as session:
        target = (await reach_of(session, {org_id})).get(org_id)
    if target is None:
        return 0
    mail_lang = ctx.settings.newsletter.language

    def telegram(lang: str) -> tuple[str, Any]:
        return tr(lang, key, **localized_params(params, lang)), None

    notice = Notice(telegram, subject=t(mail_lang, "bot.sources.notice_subject", name=params.get("name", "")),
                    body=t(mail_lang, key, **localized_params(params, mail_lang)))
    how = await deliver(ctx, application.bot, target, notice)
    return len(target.members) if how == "bot" else int(how == "email")


def setup(application: InfranetApplication, ctx: AppContext) -> None:
    """Send the calendar's notices for organisations (`ctx.notices`) while the bot runs."""

    async def tell(org_id: int, key: str, params: dict[str, Any]) -> int:
        return await _tell_organisation(application, org_id, key, params)

    ctx.notices.register(tell)


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [CommandHandler("calendar_source", cmd_calendar_source),
            CallbackQueryHandler(on_source_button, pattern=r"^src:")]
