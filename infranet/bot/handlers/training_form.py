"""The /training form: its questions one step at a time, the summary, and Edit under a
notice, which opens the same form filled in at the summary.

Thin by design: every rule lives in `infranet.calendar.trainings` (validation, deadline
rules, permissions, sessions as calendar events) and `infranet.calendar.dateparse`
(session lists, dates). The confirm with its conflict check is in `training_save`;
the conversation is registered in `trainings.py`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from infranet.bot.common import END, Html, State, Turn, cb, check_length, esc, form, handler, int_part
from infranet.bot.handlers.event_ui import (
    district_at,
    district_buttons,
    district_question,
    edit_if_changed,
    subregion_buttons,
    today,
    when_text,
)
from infranet.bot.handlers.training_listing import cost_text
from infranet.calendar import training_input
from infranet.calendar import trainings as notices
from infranet.calendar.dateparse import parse_date
from infranet.calendar.dateparse_when import parse_sessions
from infranet.i18n import format_date
from infranet.region import UnknownDistrict
from infranet.storage.models import EventStatus, TrainingStatus
from infranet.validation import clean_text

# Named, not numbered (see the event form).
(TITLE, SESSIONS, DEADLINE, TARGET, PLACES, COST, APPLY, DISTRICT, DESCRIPTION, SUMMARY, CONFLICT,
 EDIT_PICK) = ("training.title", "training.sessions", "training.deadline", "training.target",
               "training.places", "training.cost", "training.apply", "training.district",
               "training.description", "training.summary", "training.conflict", "training.edit_pick")
FIELDS = ("title", "sessions", "deadline", "target", "places", "cost", "apply", "district", "description")


def form_data(turn: Turn) -> dict[str, Any]:
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
    form_data(turn)
    turn.say("bot.trainings.ask_title", limit=training_input.TITLE_MAX)
    return TITLE


@handler(access="member", chat="private")
async def on_title(turn: Turn) -> str:
    form_data(turn)["title"] = clean_text(check_length(turn.text, training_input.TITLE_MAX), "title",
                                          training_input.TITLE_MAX, required=True)
    return next_step(turn, SESSIONS)


@handler(access="member", chat="private")
async def on_sessions(turn: Turn) -> str:
    f = form_data(turn)
    spans = parse_sessions(check_length(turn.text, 900), today(turn), turn.ctx.tz, lang=turn.lang)
    sessions: list[list[Any]] = []
    for span in spans:
        if span.all_day:
            first = span.start.astimezone(turn.ctx.tz).date()
            last = (span.end.astimezone(turn.ctx.tz) - timedelta(hours=1)).date()
            sessions.append([first, max(first, last), True])
        else:
            sessions.append([span.start, span.end, False])
    training_input.check_session_times(turn.ctx, [(s[0], s[1], s[2]) for s in sessions])
    f["sessions"] = in_order(turn, sessions)
    return next_step(turn, DEADLINE)


def first_day(turn: Turn, sessions: list[list[Any]]) -> date:
    start = sessions[0][0]
    return start.astimezone(turn.ctx.tz).date() if isinstance(start, datetime) else start


@handler(access="member", chat="private")
async def on_deadline(turn: Turn) -> str:
    f = form_data(turn)
    deadline = parse_date(check_length(turn.text, 100), today(turn), lang=turn.lang)
    training_input.check_deadline(turn.ctx, deadline, first_day(turn, f["sessions"]))
    f["deadline"] = deadline
    return next_step(turn, TARGET)


@handler(access="member", chat="private")
async def on_target(turn: Turn) -> str:
    form_data(turn)["target_group"] = clean_text(check_length(turn.text, training_input.TARGET_MAX),
                                                 "target_group", training_input.TARGET_MAX, required=True)
    return next_step(turn, PLACES)


@handler(access="member", chat="private")
async def on_places(turn: Turn) -> str:
    if turn.update.callback_query:
        turn.edit(turn.t("bot.skip"))
        places = None
    else:
        places = training_input.parse_places(check_length(turn.text, 20))
    form_data(turn)["places"] = places
    return next_step(turn, COST)


@handler(access="member", chat="private")
async def on_cost(turn: Turn) -> str:
    if turn.update.callback_query:
        turn.edit(turn.t("bot.trainings.free"))
        cost = None
    else:
        cost = training_input.parse_cost(check_length(turn.text, 40))
    form_data(turn)["cost"] = cost
    return next_step(turn, APPLY)


@handler(access="member", chat="private")
async def on_apply(turn: Turn) -> str:
    contact = training_input.parse_apply(check_length(turn.text, 500))
    form_data(turn)["how_to_apply"] = contact.value
    return next_step(turn, DISTRICT)


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
    form_data(turn)["district"] = district.slug
    return next_step(turn, DESCRIPTION)


@handler(access="member", chat="private")
async def on_description(turn: Turn) -> str:
    if turn.update.callback_query:
        turn.edit(turn.t("bot.skip"))
        value = None
    else:
        value = clean_text(check_length(turn.text, training_input.DESCRIPTION_MAX), "description",
                           training_input.DESCRIPTION_MAX, multiline=True)
    f = form_data(turn)
    f["description"] = value
    return next_step(turn, SUMMARY)


def next_step(turn: Turn, state: str) -> str:
    """Ask the question of `state`; while one field of a filled form is being changed
    (`editing`), go back to the summary instead (the deadline is asked again when new
    sessions start before it)."""
    f = form_data(turn)
    if f.get("editing") and "deadline" in f and (
            state != DEADLINE or f["deadline"] <= first_day(turn, f["sessions"])):
        state = SUMMARY
    if state == SUMMARY:
        f["editing"] = False
        turn.reply(turn.t("bot.trainings.summary", body=_body(turn, f)), [
            [(turn.t("bot.confirm"), cb("tr", "ok")), (turn.t("bot.events.edit"), cb("tr", "edit")),
             (turn.t("bot.cancel"), cb("tr", "x"))]])
    elif state == TITLE:
        turn.say("bot.trainings.ask_title", limit=training_input.TITLE_MAX)
    elif state == SESSIONS:
        turn.say("bot.trainings.ask_sessions")
    elif state == DEADLINE:
        turn.say("bot.trainings.ask_deadline", sessions=_sessions_label(turn, f["sessions"]),
                 first=format_date(first_day(turn, f["sessions"]), turn.lang))
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
        turn.say("bot.trainings.ask_description", _skip(turn), limit=training_input.DESCRIPTION_MAX)
    return state


def in_order(turn: Turn, sessions: list[list[Any]]) -> list[list[Any]]:
    """Sessions in the order the notice stores them (by first day, then start), so that the
    n-th one here is the n-th session saved."""
    return sorted(sessions, key=lambda s: (first_day(turn, [s]), str(s[0])))


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
        f"{turn.t('bot.trainings.l.cost')}: {esc(cost_text(turn, f.get('cost')))}",
        f"{turn.t('bot.trainings.l.apply')}: {esc(f.get('how_to_apply', ''))}",
        f"{turn.t('bot.trainings.l.district')}: {esc(district.name)}",
    ]
    if f.get("description"):
        rows.append(esc(f["description"]))
    return Html("\n".join(rows))


@handler(access="member", chat="private", db=False)
async def on_edit_pick(turn: Turn) -> State | None:
    f = form_data(turn)
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
    f = form_data(turn)
    editing, f["editing"] = f.get("editing"), False
    try:
        return next_step(turn, state)
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
    return next_step(turn, SUMMARY)
