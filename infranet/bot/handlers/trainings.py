"""Training recruitment in the chat: the /training form, the /trainings listing, and the
messages of the deadline jobs (reminder the day before, notice closed after it).

Thin by design: every rule lives in `infranet.calendar.trainings` (validation,
deadline rules, permissions, sessions as calendar events, claiming reminders once)
and `infranet.calendar.dateparse` (session lists, dates).

Callback data (prefix `tr`): tr:skip  tr:free  tr:d:<i>  tr:sr:<i>  tr:dback
tr:ok  tr:edit  tr:x  tr:f:<field>  tr:keep  tr:sug:<i>  tr:p:<page>:<area index or ->
tr:c:<training id>[:y]  tr:e:<training id> (edit a notice: its form, at the summary).

The confirm runs every session through the calendar's conflict check, and a clash gets
the /event form's conflict screen, free-date buttons and organiser notices (the same
functions, from `event_conflicts`), one session at a time.

Jobs: `jobs(ctx, runtime=None)` declares the daily deadline job (08:05 local time,
outside the DST hour), which app.py schedules; `deadline_job` is that job,
`run_deadline_jobs(ctx, bot)` its work.
"""

from __future__ import annotations

import functools
import logging
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from telegram import Bot
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot.common import (
    END,
    Command,
    Html,
    State,
    Turn,
    cb,
    check_length,
    conversation,
    esc,
    form,
    handler,
    int_part,
    send_html,
    tr,
)
from infranet.bot.handlers.event_conflicts import conflict_buttons, conflict_text, tell_organisers
from infranet.bot.handlers.event_ui import (
    district_at,
    district_buttons,
    district_question,
    edit_if_changed,
    shorten,
    subregion_buttons,
    today,
    when_text,
)
from infranet.calendar import conflicts as conflict_api
from infranet.calendar import events as calendar
from infranet.calendar import trainings as notices
from infranet.calendar.dateparse import parse_date, parse_sessions
from infranet.component import Job
from infranet.context import AppContext
from infranet.i18n import format_date
from infranet.region import UnknownDistrict
from infranet.storage.models import EventStatus, Member, Moderation, TrainingStatus

if TYPE_CHECKING:
    from infranet.bot.runtime import BotRuntime

log = logging.getLogger(__name__)

COMMANDS = [Command("training", "member"), Command("trainings")]

PAGE_SIZE = 6
# Named, not numbered (see the event form).
(TITLE, SESSIONS, DEADLINE, TARGET, PLACES, COST, APPLY, DISTRICT, DESCRIPTION, SUMMARY, CONFLICT,
 EDIT_PICK) = ("training.title", "training.sessions", "training.deadline", "training.target",
               "training.places", "training.cost", "training.apply", "training.district",
               "training.description", "training.summary", "training.conflict", "training.edit_pick")
FIELDS = ("title", "sessions", "deadline", "target", "places", "cost", "apply", "district", "description")



def _f(turn: Turn) -> dict[str, Any]:
    return form(turn, "training")


def _skip(turn: Turn) -> list[list[tuple[str, str]]]:
    return [[(turn.t("bot.skip"), cb("tr", "skip"))]]


def _sessions_label(turn: Turn, sessions: list[list[Any]]) -> str:
    ctx, lang = turn.ctx, turn.lang
    texts = [when_text(ctx, s[0], s[1], bool(s[2]), lang) for s in sessions]
    if len(texts) > 4:
        return "; ".join(texts[:3]) + f"; … ({len(texts)})"
    return "; ".join(texts)


@handler(access="member", chat="private")
async def cmd_training(turn: Turn) -> str:
    turn.user_data.pop("training", None)
    _f(turn)
    turn.say("bot.trainings.ask_title", limit=notices.TITLE_MAX)
    return TITLE


@handler(access="member", chat="private")
async def on_title(turn: Turn) -> str:
    _f(turn)["title"] = notices.clean_text(check_length(turn.text, notices.TITLE_MAX), "title",
                                           notices.TITLE_MAX, required=True)
    return _next(turn, SESSIONS)


@handler(access="member", chat="private")
async def on_sessions(turn: Turn) -> str:
    f = _f(turn)
    spans = parse_sessions(check_length(turn.text, 900), today(turn), turn.ctx.tz, lang=turn.lang)
    sessions: list[list[Any]] = []
    for span in spans:
        if span.all_day:
            first = span.start.astimezone(turn.ctx.tz).date()
            last = (span.end.astimezone(turn.ctx.tz) - timedelta(hours=1)).date()
            sessions.append([first, max(first, last), True])
        else:
            sessions.append([span.start, span.end, False])
    notices.check_session_times(turn.ctx, [(s[0], s[1], s[2]) for s in sessions])
    f["sessions"] = _in_order(turn, sessions)
    return _next(turn, DEADLINE)


def _first_day(turn: Turn, sessions: list[list[Any]]) -> date:
    start = sessions[0][0]
    return start.astimezone(turn.ctx.tz).date() if isinstance(start, datetime) else start


@handler(access="member", chat="private")
async def on_deadline(turn: Turn) -> str:
    f = _f(turn)
    deadline = parse_date(check_length(turn.text, 100), today(turn), lang=turn.lang)
    notices.check_deadline(turn.ctx, deadline, _first_day(turn, f["sessions"]))
    f["deadline"] = deadline
    return _next(turn, TARGET)


@handler(access="member", chat="private")
async def on_target(turn: Turn) -> str:
    _f(turn)["target_group"] = notices.clean_text(check_length(turn.text, notices.TARGET_MAX),
                                                  "target_group", notices.TARGET_MAX, required=True)
    return _next(turn, PLACES)


@handler(access="member", chat="private")
async def on_places(turn: Turn) -> str:
    if turn.update.callback_query:
        turn.edit(turn.t("bot.skip"))
        places = None
    else:
        places = notices.parse_places(check_length(turn.text, 20))
    _f(turn)["places"] = places
    return _next(turn, COST)


@handler(access="member", chat="private")
async def on_cost(turn: Turn) -> str:
    if turn.update.callback_query:
        turn.edit(turn.t("bot.trainings.free"))
        cost = None
    else:
        cost = notices.parse_cost(check_length(turn.text, 40))
    _f(turn)["cost"] = cost
    return _next(turn, APPLY)


@handler(access="member", chat="private")
async def on_apply(turn: Turn) -> str:
    contact = notices.parse_apply(check_length(turn.text, 500))
    _f(turn)["how_to_apply"] = contact.value
    return _next(turn, DISTRICT)


@handler(access="member", chat="private")
async def on_district(turn: Turn) -> State | None:
    if turn.update.callback_query:
        kind = turn.data[1] if len(turn.data) > 1 else ""
        if kind == "dback":
            edit_if_changed(turn, turn.t("bot.trainings.ask_district"), district_buttons(turn, "tr"))
            return None
        district = district_at(turn.ctx, turn.data[2] if len(turn.data) > 2 else None)
        if district is None:
            turn.toast(turn.t("bot.button_expired"))
            return None
        if kind == "sr" and district.kind == "subregion":
            edit_if_changed(turn, turn.t("bot.events.ask_powiat", subregion=district.name),
                            subregion_buttons(turn, "tr", district))
            return None
        turn.edit(esc(district.name))
    else:
        try:
            district = turn.ctx.region.match(check_length(turn.text, 120))
        except UnknownDistrict as exc:  # "Olsztyn": which one; a typo or a place elsewhere: buttons
            turn.reply(*district_question(turn, exc, "tr"))
            return None
    _f(turn)["district"] = district.slug
    return _next(turn, DESCRIPTION)


@handler(access="member", chat="private")
async def on_description(turn: Turn) -> str:
    if turn.update.callback_query:
        turn.edit(turn.t("bot.skip"))
        value = None
    else:
        value = notices.clean_text(check_length(turn.text, notices.DESCRIPTION_MAX), "description",
                                   notices.DESCRIPTION_MAX, multiline=True)
    f = _f(turn)
    f["description"] = value
    return _next(turn, SUMMARY)


def _next(turn: Turn, state: str) -> str:
    """Ask the question of `state`; while one field of a filled form is being changed
    (`editing`), go back to the summary instead (the deadline is asked again when new
    sessions start before it)."""
    f = _f(turn)
    if f.get("editing") and "deadline" in f and (
            state != DEADLINE or f["deadline"] <= _first_day(turn, f["sessions"])):
        state = SUMMARY
    if state == SUMMARY:
        f["editing"] = False
        turn.reply(turn.t("bot.trainings.summary", body=_body(turn, f)), [
            [(turn.t("bot.confirm"), cb("tr", "ok")), (turn.t("bot.events.edit"), cb("tr", "edit")),
             (turn.t("bot.cancel"), cb("tr", "x"))]])
    elif state == TITLE:
        turn.say("bot.trainings.ask_title", limit=notices.TITLE_MAX)
    elif state == SESSIONS:
        turn.say("bot.trainings.ask_sessions")
    elif state == DEADLINE:
        turn.say("bot.trainings.ask_deadline", sessions=_sessions_label(turn, f["sessions"]),
                 first=format_date(_first_day(turn, f["sessions"]), turn.lang))
    elif state == TARGET:
        turn.say("bot.trainings.ask_target")
    elif state == PLACES:
        turn.say("bot.trainings.ask_places", _skip(turn))
    elif state == COST:
        turn.say("bot.trainings.ask_cost", [[(turn.t("bot.trainings.free"), cb("tr", "free"))]])
    elif state == APPLY:
        turn.say("bot.trainings.ask_apply")
    elif state == DISTRICT:
        turn.say("bot.trainings.ask_district", district_buttons(turn, "tr"))
    elif state == DESCRIPTION:
        turn.say("bot.trainings.ask_description", _skip(turn), limit=notices.DESCRIPTION_MAX)
    return state


def _in_order(turn: Turn, sessions: list[list[Any]]) -> list[list[Any]]:
    """Sessions in the order the notice stores them (by first day, then start), so that the
    n-th one here is the n-th session saved."""
    return sorted(sessions, key=lambda s: (_first_day(turn, [s]), str(s[0])))


def _session_inputs(turn: Turn, f: dict[str, Any]) -> list[calendar.EventInput]:
    """The sessions as the calendar will get them (what the conflict check looks at)."""
    member = turn.who.member
    return [calendar.EventInput(
        title=f["title"], start=s[0], end=s[1], all_day=bool(s[2]),
        district=f.get("district") or turn.ctx.region.root.slug, category="training", audiences=["ngo"],
        organisation_id=f.get("organisation_id") or (member.organisation_id if member else None),
    ) for s in f["sessions"]]


def _training_input(turn: Turn, f: dict[str, Any]) -> notices.TrainingInput:
    return notices.TrainingInput(
        title=f["title"], sessions=[(s[0], s[1]) for s in f["sessions"]], deadline=f["deadline"],
        target_group=f["target_group"], how_to_apply=f["how_to_apply"],
        district=f.get("district") or turn.ctx.region.root.slug, places=f.get("places"),
        cost=f.get("cost"), description=f.get("description"), audiences=["ngo"],
    )


def _cost_text(turn: Turn, cost: Any) -> str:
    if cost is None:
        return turn.t("bot.trainings.free")
    return turn.t("bot.trainings.cost_pln", amount=f"{cost:.2f}".replace(".", "," if turn.lang == "pl"
                                                                         else "."))


def _body(turn: Turn, f: dict[str, Any]) -> Html:
    member = turn.who.member
    org = member.organisation.name if member and member.organisation else "—"
    district = turn.ctx.region.by_slug.get(f.get("district", ""), turn.ctx.region.root)
    places = f.get("places")
    rows = [
        f"<b>{esc(f.get('title', ''))}</b>",
        f"{turn.t('bot.trainings.l.organiser')}: {esc(org)}",
        f"{turn.t('bot.trainings.l.sessions')}: {esc(_sessions_label(turn, f.get('sessions', [])))}",
        f"{turn.t('bot.trainings.l.deadline')}: {esc(format_date(f['deadline'], turn.lang))}",
        f"{turn.t('bot.trainings.l.target')}: {esc(f.get('target_group', ''))}",
        f"{turn.t('bot.trainings.l.places')}: "
        f"{esc(places) if places else turn.t('bot.trainings.l.unlimited')}",
        f"{turn.t('bot.trainings.l.cost')}: {esc(_cost_text(turn, f.get('cost')))}",
        f"{turn.t('bot.trainings.l.apply')}: {esc(f.get('how_to_apply', ''))}",
        f"{turn.t('bot.trainings.l.district')}: {esc(district.name)}",
    ]
    if f.get("description"):
        rows.append(esc(f["description"]))
    return Html("\n".join(rows))


@handler(access="member", chat="private", writes=False)
async def on_summary(turn: Turn) -> State | None:
    f = _f(turn)
    choice = turn.data[1] if len(turn.data) > 1 else ""
    if "deadline" not in f or "how_to_apply" not in f:
        turn.toast(turn.t("bot.button_expired"))
        return END
    if choice == "x":
        turn.user_data.pop("training", None)
        turn.edit(turn.t("bot.cancelled"))
        return END
    if choice == "edit":
        turn.edit(turn.t("bot.events.edit_what"), [
            [(turn.t("bot.trainings.f." + name), cb("tr", "f", name))] for name in FIELDS])
        return EDIT_PICK
    if choice != "ok":
        turn.toast(turn.t("bot.button_expired"))
        return None
    f["kept"] = []
    return await _check_and_save(turn, f)


async def _check_and_save(turn: Turn, f: dict[str, Any]) -> State | None:
    """Every session through the calendar's conflict check, in order; the first that clashes
    (and was not kept) gets the /event form's conflict screen and free dates, and the
    notice is saved once none is left."""
    inputs = _session_inputs(turn, f)
    own = set(f.get("session_ids") or [])
    for index, data in enumerate(inputs):
        if index in f.get("kept", []):
            continue
        ids = f.get("session_ids") or []
        exclude = ids[index] if index < len(ids) else None
        found = await conflict_api.find_conflicts(turn.session, turn.ctx, data, exclude_event_id=exclude)
        # The notice's other sessions are not in the way of its own change.
        report = conflict_api.ConflictReport([c for c in found.conflicts if c.event.id not in own],
                                             [c for c in found.duplicates if c.event.id not in own],
                                             found.warnings)
        if report.clear:
            continue
        suggestions = await conflict_api.suggest_dates(turn.session, turn.ctx, data, n=3,
                                                       exclude_event_id=exclude)
        f["conflict_index"] = index
        f["suggestions"] = [[start, end] for start, end in suggestions]
        session = f["sessions"][index]
        head = turn.t("bot.trainings.conflict_session", index=index + 1, count=len(inputs),
                      when=when_text(turn.ctx, session[0], session[1], bool(session[2]), turn.lang))
        turn.edit(Html(f"<b>{head}</b>\n\n" + conflict_text(turn, report, suggestions)),
                  conflict_buttons(turn, suggestions, "tr"))
        return CONFLICT
    async with turn.writing():  # checked in the read transaction; only the save writes
        view = await _save(turn, f)
    kept = [inputs[i] for i in f.get("kept", []) if i < len(inputs)]
    sessions = [e for e in view.sessions if e.status == EventStatus.SCHEDULED]
    if kept:
        # The organisers of what the poster kept the dates against hear about it, as after /event.
        context, chat_id, lang, poster = turn.context, turn.chat_id, turn.lang, turn.who.telegram_id
        for index in f.get("kept", []):
            if index < len(sessions):
                event_id, data = sessions[index].id, inputs[index]
                turn.after_commit(lambda event_id=event_id, data=data: tell_organisers(  # type: ignore[misc]
                    context, chat_id, lang, poster, event_id, data))
    return END


async def _save(turn: Turn, f: dict[str, Any]) -> notices.TrainingView:
    edit_id = f.get("edit_id")
    if edit_id:
        view = await notices.update_training(turn.session, turn.ctx, turn.actor, int(edit_id),
                                             _training_input(turn, f))
        key = "bot.trainings.updated"
    else:
        view = await notices.add_training(turn.session, turn.ctx, turn.actor, _training_input(turn, f))
        key = "bot.trainings.saved"
    turn.user_data.pop("training", None)
    turn.edit(turn.t(key, title=view.training.title))
    if view.training.moderation == Moderation.PENDING:
        turn.say("bot.trainings.pending")
    return view


@handler(access="member", chat="private", writes=False)
async def on_conflict(turn: Turn) -> State | None:
    """The conflict screen of one session: keep its date, take a free date, or cancel."""
    f = _f(turn)
    choice = turn.data[1] if len(turn.data) > 1 else ""
    index = f.get("conflict_index")
    if "deadline" not in f or index is None:
        turn.toast(turn.t("bot.button_expired"))
        return END
    if choice == "x":
        turn.user_data.pop("training", None)
        turn.edit(turn.t("bot.cancelled"))
        return END
    if choice == "keep":
        f.setdefault("kept", []).append(index)
        return await _check_and_save(turn, f)
    if choice == "sug":
        pick = int_part(turn.data, 2)
        suggestions = f.get("suggestions") or []
        if pick is None or not 0 <= pick < len(suggestions):
            turn.toast(turn.t("bot.button_expired"))
            return None
        start, end = suggestions[pick]
        f["sessions"][index] = [start, end, not isinstance(start, datetime)]
        f["kept"] = []  # the order may change: every session is checked again
        f["sessions"] = _in_order(turn, f["sessions"])
        if f["deadline"] > _first_day(turn, f["sessions"]):
            f["editing"] = True
            turn.edit(turn.t("bot.trainings.f.sessions"))
            return _next(turn, DEADLINE)
        return await _check_and_save(turn, f)
    turn.toast(turn.t("bot.button_expired"))
    return None


@handler(access="member", chat="private", db=False)
async def on_edit_pick(turn: Turn) -> State | None:
    f = _f(turn)
    name = turn.data[2] if len(turn.data) > 2 else ""
    if "deadline" not in f:
        turn.toast(turn.t("bot.button_expired"))
        return END
    states = dict(zip(FIELDS, (TITLE, SESSIONS, DEADLINE, TARGET, PLACES, COST, APPLY, DISTRICT,
                               DESCRIPTION), strict=True))
    if name not in states:
        turn.toast(turn.t("bot.button_expired"))
        return None
    turn.edit(turn.t("bot.trainings.f." + name))
    f["editing"] = True
    return _ask(turn, states[name])


def _ask(turn: Turn, state: str) -> str:
    """The question of `state` itself (even while editing)."""
    f = _f(turn)
    editing, f["editing"] = f.get("editing"), False
    try:
        return _next(turn, state)
    finally:
        f["editing"] = editing


@handler(access="member", chat="private", writes=False)
async def on_edit_entry(turn: Turn) -> State | None:
    """Edit under a notice (/trainings, /my): its form, filled in, at the summary; saving
    checks the sessions for conflicts again and updates them in the calendar."""
    training_id = int_part(turn.data, 2)
    if training_id is None:
        turn.toast(turn.t("bot.button_expired"))
        return END
    view = await notices.get_training(turn.session, training_id)
    row = view.training
    turn.actor.require_org(row.organisation_id)
    if row.status != TrainingStatus.OPEN:
        turn.say("training.error.not_open")
        return END
    tz = turn.ctx.tz
    live = [e for e in view.sessions if e.status == EventStatus.SCHEDULED]
    sessions = [[e.starts_at.astimezone(tz).date(), (e.ends_at.astimezone(tz) - timedelta(hours=1)).date(),
                 True] if e.all_day else [e.starts_at, e.ends_at, False] for e in live]
    turn.user_data["training"] = {
        "edit_id": row.id, "session_ids": [e.id for e in live], "title": row.title,
        "sessions": sessions, "deadline": row.deadline, "target_group": row.target_group,
        "places": row.places, "cost": row.cost_pln,
        "how_to_apply": row.apply_url or row.apply_email or row.apply_phone or "",
        "district": row.district.slug, "description": row.description,
        "organisation_id": row.organisation_id,
    }
    return _next(turn, SUMMARY)


# --- /trainings ------------------------------------------------------------------------------


def _notice_text(turn: Turn, view: notices.TrainingView) -> str:
    training = view.training
    live = [e for e in view.sessions if e.status == EventStatus.SCHEDULED]
    sessions = [when_text(turn.ctx, e.starts_at, e.ends_at, False, turn.lang) if not e.all_day else
                when_text(turn.ctx, e.starts_at, e.ends_at - timedelta(hours=1), True, turn.lang)
                for e in live]
    first = sessions[0] if sessions else "—"
    if len(sessions) > 1:
        first = turn.t("bot.trainings.more_sessions", first=first, count=len(sessions) - 1)
    else:
        first = esc(first)
    apply = shorten(training.apply_url or training.apply_email or training.apply_phone or "—", 120)
    places = training.places if training.places else turn.t("bot.trainings.l.unlimited")
    return "\n".join([
        f"<b>{esc(shorten(training.title, 120))}</b> — {esc(shorten(training.organisation.name, 80))}",
        f"{turn.t('bot.trainings.l.sessions')}: {first}",
        f"{turn.t('bot.trainings.l.deadline')}: {esc(format_date(training.deadline, turn.lang))}",
        f"{turn.t('bot.trainings.l.target')}: {esc(shorten(training.target_group, 120))}; "
        f"{turn.t('bot.trainings.l.places')}: {esc(places)}; "
        f"{turn.t('bot.trainings.l.cost')}: {esc(_cost_text(turn, training.cost_pln))}",
        f"{turn.t('bot.trainings.l.apply')}: {esc(apply)} ({esc(training.district.name)})",
    ])


async def _page(turn: Turn, area_key: str, page: int) -> tuple[Html, list[list[tuple[str, str]]]]:
    area = None if area_key == "-" else district_at(turn.ctx, area_key)
    found = await notices.list_open_trainings(turn.session, turn.ctx, area=area.slug if area else None)
    area_text = turn.t("bot.events.in_area", name=area.name) if area else ""
    if not found:
        return turn.t("bot.trainings.list_empty", area=area_text), []
    pages = (len(found) + PAGE_SIZE - 1) // PAGE_SIZE
    page = max(0, min(page, pages - 1))
    lines: list[str] = [turn.t("bot.trainings.list_title", area=area_text)]
    lines += [_notice_text(turn, v) for v in found[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]]
    if pages > 1:
        lines.append(turn.t("bot.events.page", page=page + 1, pages=pages))
    nav: list[tuple[str, str]] = []
    if page > 0:
        nav.append((turn.t("bot.prev"), cb("tr", "p", page - 1, area_key)))
    if page < pages - 1:
        nav.append((turn.t("bot.next"), cb("tr", "p", page + 1, area_key)))
    return Html("\n\n".join(lines)), [nav] if nav else []


@handler()
async def cmd_trainings(turn: Turn) -> None:
    text = " ".join(turn.args).strip()
    area_key = "-"
    if text:
        try:
            district = turn.ctx.region.match(check_length(text, 120))
        except UnknownDistrict as exc:  # buttons that list the district chosen
            districts = turn.ctx.region.districts
            turn.reply(*district_question(turn, exc, "tr",
                                          pick=lambda d: cb("tr", "p", 0, districts.index(d))))
            return
        area_key = str(turn.ctx.region.districts.index(district))
    body, buttons = await _page(turn, area_key, 0)
    turn.reply(body, buttons)
    member = turn.who.member
    if turn.is_private and turn.who.is_member and member is not None and member.organisation_id:
        own = await notices.list_open_trainings(turn.session, turn.ctx,
                                                organisation_id=member.organisation_id,
                                                include_pending=True)
        for view in own[:PAGE_SIZE]:
            turn.reply(Html(_notice_text(turn, view)),
                       [[(turn.t("bot.trainings.edit"), cb("tr", "e", view.training.id)),
                         (turn.t("bot.trainings.cancel"), cb("tr", "c", view.training.id))]])


@handler()
async def on_page(turn: Turn) -> None:
    page = int_part(turn.data, 2)
    area_key = turn.data[3] if len(turn.data) > 3 else "-"
    if page is None or (area_key != "-" and district_at(turn.ctx, area_key) is None):
        turn.toast(turn.t("bot.button_expired"))
        return
    body, buttons = await _page(turn, area_key, page)
    edit_if_changed(turn, body, buttons)


@handler(access="member", chat="private")
async def on_cancel(turn: Turn) -> None:
    training_id = int_part(turn.data, 2)
    if training_id is None:
        turn.toast(turn.t("bot.button_expired"))
        return
    view = await notices.get_training(turn.session, training_id)
    turn.actor.require_org(view.training.organisation_id)
    if view.training.status == TrainingStatus.CANCELLED:
        turn.edit(turn.t("bot.trainings.cancelled", title=view.training.title))
        return
    if len(turn.data) > 3 and turn.data[3] == "y":
        await notices.cancel_training(turn.session, turn.ctx, turn.actor, training_id)
        turn.edit(turn.t("bot.trainings.cancelled", title=view.training.title))
        return
    turn.edit(turn.t("bot.trainings.confirm_cancel", title=view.training.title), [[
        (turn.t("bot.trainings.cancel"), cb("tr", "c", training_id, "y"))]])


@handler()
async def on_stale(turn: Turn) -> None:
    turn.toast(turn.t("bot.button_expired"))


# --- deadline jobs ---------------------------------------------------------------------------------


async def run_deadline_jobs(ctx: AppContext, bot: Bot | None) -> tuple[int, int]:
    """Close expired notices and remind posters a day ahead; tell each poster.

    The rows are claimed in the database before anything is sent (reminders at most
    once, also with two service instances); a poster who cannot be reached is logged.
    Without a bot (no token) notices are still closed, silently, and reminders wait.
    Returns (reminded, closed).
    """
    async with ctx.db.transaction() as session:
        closed = await notices.close_expired(session, ctx)
        reminders = await notices.due_reminders(session, ctx) if bot is not None else []
        ids = {due.poster_id for due in (*closed, *reminders) if due.poster_id is not None}
        posters = {m.id: m for m in (await session.scalars(select(Member).where(Member.id.in_(ids))))}
    if bot is not None:
        for items, key in ((reminders, "bot.trainings.reminder"), (closed, "bot.trainings.closed")):
            for due in items:
                poster = posters.get(due.poster_id) if due.poster_id is not None else None
                if poster is None:
                    continue
                lang = poster.language or "pl"
                deadline = format_date(due.training.deadline, lang)
                await send_html(bot, poster.telegram_id,
                                tr(lang, key, title=due.training.title, deadline=deadline))
    log.info("training deadlines: %d reminded, %d closed", len(reminders), len(closed))
    return len(reminders), len(closed)


async def deadline_job(ctx: AppContext, runtime: BotRuntime | None = None) -> tuple[int, int]:
    """The scheduled job: through the running Application's bot (its rate limiter) when
    there is one, else through a Bot of its own built from `[telegram]` settings, else
    (no token) closing notices only."""
    application = runtime.application if runtime is not None else None
    if application is not None and application.running:
        return await run_deadline_jobs(ctx, application.bot)
    settings = ctx.settings.telegram
    if settings.token is None or not settings.token.get_secret_value():
        return await run_deadline_jobs(ctx, None)
    base_url = settings.base_url or "https://api.telegram.org/bot"  # python-telegram-bot's default
    async with Bot(settings.token.get_secret_value(), base_url=base_url) as bot:
        return await run_deadline_jobs(ctx, bot)


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
