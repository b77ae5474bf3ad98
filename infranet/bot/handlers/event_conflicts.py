"""The conflict screen of a form and telling the other organisers.

When a date clashes, the /event and /training forms show the same list of conflicts,
free dates and buttons (Keep my date, a free date, Cancel); keeping the date tells the
organisers of the clashing events afterwards. Both forms use these functions, so they
live apart from either form.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from infranet.bot.application import BotContext
from infranet.bot.common import Html, Turn, cb, esc, send_html, tr
from infranet.bot.handlers.event_ui import contact_of, occurrence_when, page_link, when_text
from infranet.bot.reach import EMAIL, NONE, Notice, OrgReach, deliver, reach_of
from infranet.calendar import conflicts as conflict_api
from infranet.calendar import event_input
from infranet.calendar import events as calendar
from infranet.calendar.event_links import event_url
from infranet.i18n import t
from infranet.storage.models import Moderation

log = logging.getLogger(__name__)

MAX_SHOWN_CONFLICTS = 6


def conflict_text(turn: Turn, report: conflict_api.ConflictReport, suggestions: list[Any]) -> Html:
    ctx, lang = turn.ctx, turn.lang
    items: list[str] = []
    for c in report.conflicts[:MAX_SHOWN_CONFLICTS]:
        place = f", {c.event.location}" if c.event.location else ""
        items.append(turn.t("bot.events.conflict_item", mark="‼️" if c.severity == "high" else "•",
                            title=page_link(ctx, c.event.id, c.event.title), org=c.organisation_name or "—",
                            when=occurrence_when(ctx, c.start, c.end, c.event.all_day, lang),
                            district=c.event.district.name, place=place,
                            contact=contact_of(c.contact_email, c.phone)))
    if any(c.severity == "high" for c in report.conflicts):
        items.append(turn.t("bot.events.high_note"))
    hidden = len(report.conflicts) - MAX_SHOWN_CONFLICTS
    if hidden > 0:
        items.append(turn.t("bot.events.more", count=hidden))
    for c in report.duplicates[:3]:
        items.append(turn.t("bot.events.duplicate_item", title=page_link(ctx, c.event.id, c.event.title),
                            org=c.organisation_name or "—",
                            when=occurrence_when(ctx, c.start, c.end, c.event.all_day, lang)))
    for warning in report.warnings[:3]:
        items.append("• " + esc(warning.message(lang)))
    if not suggestions:
        items.append(turn.t("bot.events.no_suggestions"))
    return turn.t("bot.events.conflicts", items=Html("\n".join(items)))


def conflict_buttons(turn: Turn, suggestions: list[Any], prefix: str = "ev") -> list[list[tuple[str, str]]]:
    """Keep my date, the free dates found, Cancel; `prefix` is the form's (the /training
    form shows this same screen with its own buttons)."""
    rows: list[list[tuple[str, str]]] = [[(turn.t("bot.events.keep"), cb(prefix, "keep"))]]
    for index, (start, end) in enumerate(suggestions):
        all_day = not isinstance(start, datetime)
        rows.append([(when_text(turn.ctx, start, end, all_day, turn.lang)[:60], cb(prefix, "sug", index))])
    rows.append([(turn.t("bot.cancel"), cb(prefix, "x"))])
    return rows


async def tell_organisers(context: BotContext, chat_id: int, lang: str, poster: int, event_id: int,
                           data: event_input.EventInput) -> None:
    """The organisers of the events the poster kept the date against hear about it, and
    the poster hears whom we told. Runs once the save is committed and the poster has
    their answer (`turn.after_commit`), so the search for the conflicts and their
    organisers costs the poster no waiting.

    An organisation with nobody in the bot (or nobody it reaches) gets an e-mail at its
    contact address (`bot/reach.py`); "Powiadomiłem organizatorów" names only those
    reached, and those not reached are named apart with their contact."""
    ctx = context.infra
    mail_lang = ctx.settings.newsletter.language
    notices: dict[int, tuple[OrgReach, Notice]] = {}
    async with ctx.db.read() as session:
        report = await conflict_api.find_conflicts(session, ctx, data, exclude_event_id=event_id)
        row = await calendar.get_event(session, event_id)
        theirs: dict[int, Any] = {}
        for c in report.conflicts:
            org_id = c.event.organisation_id
            if org_id is not None and org_id != row.organisation_id:
                theirs.setdefault(org_id, c)
        if not theirs:
            return
        targets = await reach_of(session, set(theirs), but=poster)
        poster_org = row.organisation
        org = poster_org.name if poster_org else "—"
        contact = contact_of(poster_org.contact_email if poster_org else None,
                             poster_org.phone if poster_org else None)
        title, district = row.title, row.district.name
        span = (row.starts_at, row.ends_at, row.all_day)
        # Both events link to their pages (the new one once it is published: until then its
        # page does not exist); the e-mail gives the addresses after its text.
        published = row.moderation == Moderation.PUBLISHED
        base_url = ctx.settings.http.public_base_url
        for org_id, target in targets.items():
            their = theirs[org_id].event
            params = {"org": org, "title": title, "district": district,
                      "theirs": their.title, "contact": contact}
            linked = {**params, "theirs": page_link(ctx, their.id, their.title, 200),
                      **({"title": page_link(ctx, row.id, title, 200)} if published else {})}
            pages = [event_url(base_url, row.id, title)] if published else []
            pages.append(event_url(base_url, their.id, their.title))

            def telegram(member_lang: str, params: dict[str, Any] = linked) -> tuple[str, Any]:
                when = occurrence_when(ctx, *span, member_lang)
                return tr(member_lang, "bot.events.conflict_notice", when=when, **params), None

            notices[org_id] = (target, Notice(
                telegram, subject=t(mail_lang, "bot.events.conflict_subject", title=title),
                body=t(mail_lang, "bot.events.conflict_email",
                       when=occurrence_when(ctx, *span, mail_lang), **params)
                + "".join(f"\n\n{page}" for page in pages),
                reply_to=poster_org.contact_email if poster_org else None))
    told: list[tuple[str, str]] = []
    missed: list[OrgReach] = []
    for org_id, (target, notice) in sorted(notices.items(), key=lambda item: item[1][0].name):
        try:
            how = await deliver(ctx, context.bot, target, notice)
        except Exception:  # one organisation's failure must not hide the others
            log.exception("event %s: could not tell organisation %s", event_id, org_id)
            how = NONE
        if how == NONE:
            missed.append(target)
        else:
            told.append((target.name, target.email or "") if how == EMAIL else (target.name, ""))
    if told:
        names = [tr(lang, "bot.events.told_by_email", org=name, email=email) if email else esc(name)
                 for name, email in told]
        await send_html(context.bot, chat_id, tr(lang, "bot.events.told_organisers",
                                                 orgs=Html(", ".join(names))))
    for target in missed:
        await send_html(context.bot, chat_id, tr(lang, "bot.events.not_told", org=target.name,
                                                 contact=target.contact))

