"""The /training form's confirm: every session through the calendar's conflict check,
the conflict screen of a session that clashes (keep its date, take a free date, or
cancel), the save, and telling the organisers whose dates were kept against.

The conflict screen and the organisers' notices are the /event form's
(`event_conflicts`), shown one session at a time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from infranet.bot.common import END, Html, State, Turn, cb, handler, int_part
from infranet.bot.handlers.event_conflicts import (
    conflict_buttons,
    conflict_text,
    date_key,
    record_dropped,
    record_warnings,
    tell_organisers,
    warning_answered,
    warning_shown,
)
from infranet.bot.handlers.event_ui import when_text
from infranet.bot.handlers.training_form import (
    CONFLICT,
    DEADLINE,
    EDIT_PICK,
    FIELDS,
    first_day,
    form_data,
    in_order,
    next_step,
)
from infranet.calendar import conflicts as conflict_api
from infranet.calendar import event_input, free_dates, training_input
from infranet.calendar import trainings as notices
from infranet.storage.models import EventStatus, Moderation


@handler(access="member", chat="private", writes=False)
async def on_summary(turn: Turn) -> State | None:
    f = form_data(turn)
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


def _days(start: datetime | date, end: datetime | date, tz: tzinfo) -> list[date]:
    """The local days a session takes (an all-day one is given by its first and last day)."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        first = start.astimezone(tz).date()
        last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    else:
        first = start.date() if isinstance(start, datetime) else start
        last = end.date() if isinstance(end, datetime) else end
    return [first + timedelta(days=i) for i in range(max(0, (last - first).days) + 1)]


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
        # A free date on the day of another session of this notice would put two sessions
        # on one day: asked for a few more, those are left out.
        taken = {day for other, item in enumerate(inputs) if other != index
                 for day in _days(item.start, item.end, turn.ctx.tz)}
        suggestions = [(start, end) for start, end in await free_dates.suggest_dates(
            turn.session, turn.ctx, data, n=3 + len(inputs), exclude_event_id=exclude)
            if not taken & set(_days(start, end, turn.ctx.tz))][:3]
        f["conflict_index"] = index
        f["suggestions"] = [[start, end] for start, end in suggestions]
        session = f["sessions"][index]
        warning_shown(turn, report, date_key(data.start, data.end))
        head = turn.t("bot.trainings.conflict_session", index=index + 1, count=len(inputs),
                      when=when_text(turn.ctx, session[0], session[1], bool(session[2]), turn.lang))
        turn.edit(Html(f"<b>{head}</b>\n\n" + conflict_text(turn, report, suggestions)),
                  conflict_buttons(turn, suggestions, "tr"))
        return CONFLICT
    async with turn.writing():  # checked in the read transaction; only the save writes
        view = await _save(turn, f)
        sessions = [e for e in view.sessions if e.status == EventStatus.SCHEDULED]
        # The warnings the form showed, each counted once with the session it was about.
        saved = {date_key(data.start, data.end): row.id for data, row in zip(inputs, sessions, strict=False)}
        await record_warnings(turn, view.training.organisation_id, saved, None)
    kept = [inputs[i] for i in f.get("kept", []) if i < len(inputs)]
    if kept:
        # The organisers of what the poster kept the dates against hear about it, as after /event.
        context, chat_id, lang, poster = turn.context, turn.chat_id, turn.lang, turn.who.telegram_id
        for index in f.get("kept", []):
            if index < len(sessions):
                event_id, data = sessions[index].id, inputs[index]
                turn.after_commit(lambda event_id=event_id, data=data: tell_organisers(  # type: ignore[misc]
                    context, chat_id, lang, poster, event_id, data))
    return END


def _session_inputs(turn: Turn, f: dict[str, Any]) -> list[event_input.EventInput]:
    """The sessions as the calendar will get them (what the conflict check looks at)."""
    member = turn.who.member
    return [event_input.EventInput(
        title=f["title"], start=s[0], end=s[1], all_day=bool(s[2]),
        district=f.get("district") or turn.ctx.region.root.slug, category="training", audiences=["ngo"],
        organisation_id=f.get("organisation_id") or (member.organisation_id if member else None),
    ) for s in f["sessions"]]


def _training_input(turn: Turn, f: dict[str, Any]) -> training_input.TrainingInput:
    return training_input.TrainingInput(
        title=f["title"], sessions=[(s[0], s[1]) for s in f["sessions"]], deadline=f["deadline"],
        target_group=f["target_group"], how_to_apply=f["how_to_apply"],
        district=f.get("district") or turn.ctx.region.root.slug, places=f.get("places"),
        cost=f.get("cost"), description=f.get("description"), audiences=["ngo"],
    )


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
    f = form_data(turn)
    choice = turn.data[1] if len(turn.data) > 1 else ""
    index = f.get("conflict_index")
    if "deadline" not in f or index is None:
        turn.toast(turn.t("bot.button_expired"))
        return END
    if choice == "x":
        turn.user_data.pop("training", None)
        member = turn.who.member
        await record_dropped(turn, f.get("organisation_id") or (member.organisation_id if member else None))
        turn.edit(turn.t("bot.cancelled"))
        return END
    if choice == "keep":
        f.setdefault("kept", []).append(index)
        kept = f["sessions"][index] if index < len(f["sessions"]) else None
        if kept is not None:
            warning_answered(turn, "kept", date_key(kept[0], kept[1]))
        return await _check_and_save(turn, f)
    if choice == "sug":
        pick = int_part(turn.data, 2)
        suggestions = f.get("suggestions") or []
        if pick is None or not 0 <= pick < len(suggestions):
            turn.toast(turn.t("bot.button_expired"))
            return None
        start, end = suggestions[pick]
        f["sessions"][index] = [start, end, not isinstance(start, datetime)]
        warning_answered(turn, "moved_suggested", date_key(start, end))
        f["kept"] = []  # the order may change: every session is checked again
        f["sessions"] = in_order(turn, f["sessions"])
        if f["deadline"] > first_day(turn, f["sessions"]):
            f["editing"] = True
            turn.edit(turn.t("bot.trainings.f.sessions"))
            return next_step(turn, DEADLINE)
        return await _check_and_save(turn, f)
    turn.toast(turn.t("bot.button_expired"))
    return None
