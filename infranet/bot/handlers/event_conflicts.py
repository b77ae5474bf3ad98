"""The conflict screen of a form and telling the other organisers.

When a date clashes, the /event and /training forms show the same list of conflicts,
free dates and buttons (Keep my date, a free date, Cancel); keeping the date tells the
organisers of the clashing events afterwards. Both forms use these functions, so they
live apart from either form, as does what the network counts of these warnings (the
coordination figures, `calendar.coordination`): which warning the member saw and what they
did about it, written in the transaction that saves (or drops) the form.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from infranet.bot.application import BotContext, current_scope
from infranet.bot.common import Html, Turn, cb, esc, send_html, tr, write_transaction
from infranet.bot.handlers.event_ui import contact_of, occurrence_when, page_link, when_text
from infranet.bot.reach import EMAIL, NONE, Notice, OrgReach, deliver, reach_of
from infranet.calendar import conflicts as conflict_api
from infranet.calendar import coordination, event_input
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



# --- the coordination figures: what members did about a warning ---------------------------
#
# A warning counts when the conflict screen listed at least one clashing event (a conflict or
# a possible duplicate; a screen of day warnings alone, a holiday, is no clash). The form
# notes it in `user_data[WARNED]`, beside the form rather than in it: « Wstecz undoes the
# form's answers, and a member who steps back from the warning to type another date has
# still seen it. It is tied to the form's id, so a form left some other way (/cancel, the
# form layer's Anuluj, a timeout) leaves nothing that a later form could count; those are
# not counted as dropped (only the screen's own Cancel button is).
#
#   {"form": <form id>, "open": [conflicts, date key] | None,
#    "decided": [[outcome, conflicts, date key], ...]}
#
# "open" is the warning on screen; Keep and a free date's button move it to "decided"
# (kept, moved_suggested, keyed by the date the event now has). Shown again for the same
# date (back to the summary and confirmed unchanged) it is the same warning; at a save with
# another date, or a new warning for another date, the member typed another date
# (moved_other). The save writes them all in its own transaction (`turn.writing`, whose
# receipt makes a replayed confirm save and count nothing again), and forgets them.

WARNED = "coordination_warned"


def date_key(start: date | datetime, end: date | datetime) -> str:
    """A form's dates as one comparable string (datetimes in UTC, whatever zone they came in)."""
    def one(moment: date | datetime) -> str:
        return moment.astimezone(UTC).isoformat() if isinstance(moment, datetime) else moment.isoformat()
    return f"{one(start)}/{one(end)}"


def clash_count(report: conflict_api.ConflictReport) -> int:
    """The clashing events a warning names (not its day warnings)."""
    return len(report.conflicts) + len(report.duplicates)


def _form_id() -> str:
    scope = current_scope()
    return scope.form[1] if scope is not None and scope.form is not None else "-"


def _pending(turn: Turn) -> dict[str, Any]:
    """This form's noted warnings (a fresh record when the note is another form's)."""
    noted = turn.user_data.get(WARNED)
    if isinstance(noted, dict) and noted.get("form") == _form_id():
        return noted
    noted = {"form": _form_id(), "open": None, "decided": []}
    turn.user_data[WARNED] = noted
    return noted


def warning_shown(turn: Turn, report: conflict_api.ConflictReport, key: str) -> None:
    """The conflict screen for the dates `key` is on screen now."""
    count = clash_count(report)
    if not count and WARNED not in turn.user_data:
        return
    noted = _pending(turn)
    shown = noted.get("open")
    if shown and shown[1] != key:  # the earlier warning's date was changed by hand
        noted["decided"].append(["moved_other", shown[0], shown[1]])
        noted["open"] = None
    if count:
        noted["open"] = [count, key]


def warning_answered(turn: Turn, outcome: str, key: str) -> None:
    """Keep or a free date pressed on the screen: the event now has the dates `key`."""
    if WARNED not in turn.user_data:  # a screen of day warnings alone
        return
    noted = _pending(turn)
    shown = noted.get("open")
    if shown:
        noted["decided"].append([outcome, shown[0], key])
        noted["open"] = None


async def record_warnings(turn: Turn, organisation_id: int | None, saved: dict[str, int],
                          default: int | None) -> None:
    """Inside the save's transaction: the form's warnings and what became of them. `saved`
    maps the dates of what was saved to its event (a training: each session), `default` is
    the event of a warning whose dates are no longer among them."""
    noted = turn.user_data.get(WARNED)
    if not (isinstance(noted, dict) and noted.get("form") == _form_id()):
        return
    turn.user_data.pop(WARNED, None)
    decided = list(noted.get("decided") or [])
    shown = noted.get("open")
    if shown and shown[1] not in saved:  # stepped back from the warning and typed another date
        decided.append(["moved_other", shown[0], shown[1]])
    seen: set[tuple[str, str]] = set()
    for outcome, conflicts, key in decided:
        if (outcome, key) in seen:  # a kept session shown again after another one moved
            continue
        seen.add((outcome, key))
        await coordination.record_decision(turn.session, outcome=outcome, conflicts=int(conflicts),
                                           source="bot", organisation_id=organisation_id,
                                           event_id=saved.get(key, default))


async def record_dropped(turn: Turn, organisation_id: int | None) -> None:
    """The screen's Cancel: every warning of the form (nothing was posted) counts as dropped,
    in a write transaction of its own (on PostgreSQL the update's, with the form's end)."""
    noted = turn.user_data.pop(WARNED, None)
    if not (isinstance(noted, dict) and noted.get("form") == _form_id()):
        return
    counts = [int(item[1]) for item in noted.get("decided") or []]
    if noted.get("open"):
        counts.append(int(noted["open"][0]))
    if not counts:
        return
    async with write_transaction(turn.ctx.db) as session:
        for conflicts in counts:
            await coordination.record_decision(session, outcome="dropped", conflicts=conflicts,
                                               source="bot", organisation_id=organisation_id)
