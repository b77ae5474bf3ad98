"""The /event form: its questions one step at a time, the summary, the conflict check
at the confirm, and the save. One conversation whose steps read top-down, a little over
400 lines; the parts both forms share are in `event_ui` and `event_conflicts`.

Thin by design: dates are read by `infranet.calendar.dateparse`, every rule
(validation, permissions, conflicts, suggestions, moderation) lives in
`infranet.calendar.event_input` / `events` / `conflicts`. The form keeps only JSON-friendly
values (str, int, bool, date, datetime), so it survives a restart. Editing an event
(`event_edit`) fills this same form and opens it at the summary; the conversation is
registered in `events.py`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from infranet.bot.common import (
    END,
    Html,
    State,
    Turn,
    cb,
    check_length,
    esc,
    form,
    handler,
    int_part,
    rows_of,
)
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
from infranet.bot.handlers.event_ui import (
    dates,
    district_at,
    district_buttons,
    district_question,
    edit_if_changed,
    occurrence_at,
    occurrence_when,
    subregion_buttons,
    today,
    when_text,
)
from infranet.calendar import conflicts as conflict_api
from infranet.calendar import event_input, free_dates
from infranet.calendar import events as calendar
from infranet.calendar.dateparse_hours import parse_hours, repeated_note
from infranet.calendar.dateparse_when import make_span, parse_when
from infranet.errors import ValidationFailed
from infranet.i18n import format_date
from infranet.region import UnknownDistrict
from infranet.storage.models import Event, Moderation
from infranet.validation import URL_MAX, clean_text, clean_url

TITLE_LIMIT = event_input.TITLE_MAX
PLACE_LIMIT = event_input.LOCATION_MAX
DESCRIPTION_LIMIT = 1500


# Named, not numbered: a form's state is stored between updates, so a step added later must
# not shift the meaning of the states of forms people are filling in.
(TITLE, DATE, HOURS, DISTRICT, CATEGORY, AUDIENCE, PLACE, LINK, DESCRIPTION, SUMMARY, CONFLICT,
 EDIT_PICK) = ("event.title", "event.date", "event.hours", "event.district", "event.category",
               "event.audience", "event.place", "event.link", "event.description", "event.summary",
               "event.conflict", "event.edit_pick")


def _skip_button(turn: Turn) -> list[list[tuple[str, str]]]:
    return [[(turn.t("bot.skip"), cb("ev", "skip"))]]


def _f(turn: Turn) -> dict[str, Any]:
    return form(turn, "event")


@handler(access="member", chat="private", db=False)
async def cmd_event(turn: Turn) -> str:
    turn.user_data.pop("event", None)
    _f(turn)
    turn.say("bot.events.ask_title", limit=TITLE_LIMIT)
    return TITLE


def _after(turn: Turn, state: str) -> str:
    """Next question, or straight back to the summary when editing one field."""
    f = _f(turn)
    if f.get("editing"):
        show_summary(turn)
        return SUMMARY
    ask = {
        DATE: lambda: turn.say("bot.events.ask_date"),
        DISTRICT: lambda: turn.say("bot.events.ask_district", district_buttons(turn, "ev")),
        CATEGORY: lambda: turn.say("bot.events.ask_category", rows_of(
            [(event_input.category_label(c, turn.lang), cb("ev", "c", c))
             for c in event_input.CATEGORIES], 2)),
        AUDIENCE: lambda: turn.reply(*_audience_prompt(turn)),
        PLACE: lambda: turn.say("bot.events.ask_place", _skip_button(turn)),
        LINK: lambda: turn.say("bot.events.ask_link", _skip_button(turn)),
        DESCRIPTION: lambda: turn.say("bot.events.ask_description", _skip_button(turn),
                                      limit=DESCRIPTION_LIMIT),
        SUMMARY: lambda: show_summary(turn),
    }
    ask[state]()
    return state


@handler(access="member", chat="private", db=False)
async def on_title(turn: Turn) -> str:
    title = check_length(turn.text, TITLE_LIMIT)
    if not title:
        raise ValidationFailed("bot.text_expected")
    # Cleaned now, so that the summary shows what will be stored (and emptiness is said now).
    _f(turn)["title"] = clean_text(title, "title", TITLE_LIMIT, required=True)
    return _after(turn, DATE)


@handler(access="member", chat="private", db=False)
async def on_date(turn: Turn) -> str:
    f = _f(turn)
    when = parse_when(check_length(turn.text, 300), today(turn), lang=turn.lang)
    event_input.check_days(turn.ctx, when.first, when.last)  # the limits now, not at the confirm
    if when.hours is not None:
        _set_span(turn, f, when.hours, when.first, when.last)
        f["first"], f["last"] = when.first, when.last
        return _after(turn, DISTRICT)
    f["first"], f["last"] = when.first, when.last
    label = format_date(when.first, turn.lang) if not when.is_range else \
        f"{format_date(when.first, turn.lang)} – {format_date(when.last, turn.lang)}"
    turn.say("bot.events.ask_hours", [[(turn.t("bot.events.all_day"), cb("ev", "allday"))]],
             when=label)
    return HOURS


def _set_span(turn: Turn, f: dict[str, Any], hours: Any, first: date, last: date) -> None:
    """The form's start and end from days and hours, once every rule on a date holds
    (end after start, length, the planning horizon): the step that gave them repeats."""
    span = make_span(first, last, hours, turn.ctx.tz)  # refuses a time in the DST gap
    if span.all_day:
        start, end = first, last
    else:
        start, end = span.start, span.end
    event_input.event_times(turn.ctx, event_input.EventInput(title="", start=start, end=end,
                                                             all_day=span.all_day))
    f.update(all_day=span.all_day, start=start, end=end)
    if not span.all_day:
        note = repeated_note(span.start, span.end, turn.ctx.tz, turn.lang)  # the autumn hour
        if note:
            turn.reply(esc(note))


@handler(access="member", chat="private", db=False)
async def on_hours(turn: Turn) -> str:
    f = _f(turn)
    if "first" not in f:
        return _after(turn, DATE)
    if turn.update.callback_query:
        hours = parse_hours("all day")
        turn.edit(turn.t("bot.events.all_day"))
    else:
        hours = parse_hours(check_length(turn.text, 100))
    _set_span(turn, f, hours, f["first"], f["last"])
    return _after(turn, DISTRICT)


@handler(access="member", chat="private", db=False)
async def on_district(turn: Turn) -> State | None:
    f = _f(turn)
    if turn.update.callback_query:
        kind = turn.data[1] if len(turn.data) > 1 else ""
        district = district_at(turn.ctx, turn.data[2] if len(turn.data) > 2 else None)
        if kind == "dback":
            edit_if_changed(turn, turn.t("bot.events.ask_district"), district_buttons(turn, "ev"))
            return None
        if district is None:
            turn.toast(turn.t("bot.button_expired"))
            return None
        if kind == "sr" and district.kind == "subregion":
            edit_if_changed(turn, turn.t("bot.events.ask_powiat", subregion=district.name),
                            subregion_buttons(turn, "ev", district))
            return None
        turn.edit(esc(district.name))
    else:
        try:
            district = turn.ctx.region.match(check_length(turn.text, 120))
        except UnknownDistrict as exc:
            turn.reply(*district_question(turn, exc, "ev"))
            return None
    f["district"] = district.slug
    return _after(turn, CATEGORY)


@handler(access="member", chat="private", db=False)
async def on_category(turn: Turn) -> State | None:
    code = turn.data[2] if len(turn.data) > 2 else ""
    if code not in event_input.CATEGORIES:
        turn.toast(turn.t("bot.events.unknown_category"))
        return None
    _f(turn)["category"] = code
    turn.edit(esc(event_input.category_label(code, turn.lang)))
    return _after(turn, AUDIENCE)


def _audience_prompt(turn: Turn) -> tuple[Html, list[list[tuple[str, str]]]]:
    chosen = set(_f(turn).get("audiences", []))
    buttons = rows_of([(("✓ " if code in chosen else "") + event_input.audience_label(code, turn.lang),
                        cb("ev", "a", code)) for code in event_input.AUDIENCES], 2)
    buttons.append([(turn.t("bot.next"), cb("ev", "a", "done"))])
    return turn.t("bot.events.ask_audience"), buttons


@handler(access="member", chat="private", db=False)
async def on_audience(turn: Turn) -> State | None:
    f = _f(turn)
    code = turn.data[2] if len(turn.data) > 2 else ""
    if code == "done":
        chosen = f.setdefault("audiences", [])
        labels = ", ".join(event_input.audience_label(c, turn.lang) for c in chosen) or \
            turn.t("bot.events.everyone")
        turn.edit(esc(labels))
        return _after(turn, PLACE)
    if code not in event_input.AUDIENCES:
        turn.toast(turn.t("bot.button_expired"))
        return None
    chosen = list(f.get("audiences", []))
    if code in chosen:
        chosen.remove(code)
    else:
        chosen.append(code)
    f["audiences"] = chosen
    turn.edit(*_audience_prompt(turn))  # the ticks change, so the edit always changes something
    return None


def _optional(turn: Turn, limit: int) -> str | None:
    if turn.update.callback_query:
        turn.edit(turn.t("bot.skip"))
        return None
    return check_length(turn.text, limit) or None


@handler(access="member", chat="private", db=False)
async def on_place(turn: Turn) -> str:
    value = _optional(turn, PLACE_LIMIT)
    _f(turn)["location"] = clean_text(value, "location", PLACE_LIMIT)
    return _after(turn, LINK)


@handler(access="member", chat="private", db=False)
async def on_link(turn: Turn) -> str:
    value = _optional(turn, URL_MAX)
    if value:
        if value.lower().startswith("www."):
            value = "https://" + value
        if not value.lower().startswith(("http://", "https://")) or " " in value:
            raise ValidationFailed("bot.events.bad_link")
        clean_url(value, "url")
    _f(turn)["url"] = value
    return _after(turn, DESCRIPTION)


@handler(access="member", chat="private", db=False)
async def on_description(turn: Turn) -> str:
    value = _optional(turn, DESCRIPTION_LIMIT)
    _f(turn)["description"] = clean_text(value, "description", DESCRIPTION_LIMIT, multiline=True)
    return _after(turn, SUMMARY)


def _event_input(turn: Turn, f: dict[str, Any]) -> event_input.EventInput:
    return event_input.EventInput(
        title=f["title"], start=f["start"], end=f["end"], all_day=bool(f.get("all_day")),
        district=f.get("district", "region") or turn.ctx.region.root.slug,
        category=f.get("category", "other"), audiences=list(f.get("audiences", [])),
        organisation_id=f.get("organisation_id"), description=f.get("description"),
        location=f.get("location"), url=f.get("url"), rrule=f.get("rrule"),
        training_id=f.get("training_id"),
    )


def _body(turn: Turn, f: dict[str, Any]) -> Html:
    ctx, lang = turn.ctx, turn.lang
    district = ctx.region.by_slug.get(f.get("district", ""), ctx.region.root)
    audiences = ", ".join(event_input.audience_label(a, lang) for a in f.get("audiences", [])) or \
        turn.t("bot.events.everyone")
    lines = [f"<b>{esc(f.get('title', ''))}</b>",
             esc(when_text(ctx, f["start"], f["end"], bool(f.get("all_day")), lang)),
             *([] if f.get("all_day") or not isinstance(f["start"], datetime) else
               [esc(n) for n in [repeated_note(f["start"], f["end"], ctx.tz, lang)] if n]),
             f"{turn.t('bot.events.f.district')}: {esc(district.name)}",
             f"{turn.t('bot.events.f.category')}: "
             f"{esc(event_input.category_label(f.get('category', 'other'), lang))}",
             f"{turn.t('bot.events.f.audience')}: {esc(audiences)}"]
    for key, label in (("location", "place"), ("url", "link"), ("description", "description")):
        if f.get(key):
            lines.append(f"{turn.t('bot.events.f.' + label)}: {esc(f[key])}")
    if f.get("occurrence_when"):
        lines.append("\n" + turn.t("bot.events.one_date_note", when=f["occurrence_when"]))
    elif f.get("series_size"):
        lines.append("\n" + turn.t("bot.events.whole_series_note", count=dates(turn, f["series_size"])))
    return Html("\n".join(lines))


def show_summary(turn: Turn) -> None:
    f = _f(turn)
    f["editing"] = False
    turn.reply(turn.t("bot.events.summary", body=_body(turn, f)), [
        [(turn.t("bot.confirm"), cb("ev", "ok")), (turn.t("bot.events.edit"), cb("ev", "edit")),
         (turn.t("bot.cancel"), cb("ev", "x"))]])


@handler(access="member", chat="private", writes=False)
async def on_summary(turn: Turn) -> State | None:
    f = _f(turn)
    choice = turn.data[1] if len(turn.data) > 1 else ""
    if "start" not in f or "title" not in f:
        turn.toast(turn.t("bot.button_expired"))
        return END
    if choice == "x":
        turn.user_data.pop("event", None)
        turn.edit(turn.t("bot.cancelled"))
        return END
    if choice == "edit":
        fields = ["title", "date", "district", "category", "audience", "place", "link", "description"]
        turn.edit(turn.t("bot.events.edit_what"), rows_of(
            [(turn.t("bot.events.f." + name), cb("ev", "f", name)) for name in fields], 2))
        return EDIT_PICK
    if choice != "ok":
        turn.toast(turn.t("bot.button_expired"))
        return None
    return await _check_and_save(turn, f)


async def _check_and_save(turn: Turn, f: dict[str, Any]) -> State | None:
    data = _event_input(turn, f)
    report = await conflict_api.find_conflicts(turn.session, turn.ctx, data,
                                               exclude_event_id=f.get("edit_id"))
    if report.clear:
        async with turn.writing():  # checked in the read transaction; only the save writes
            await _save(turn, f, data)
        return END
    suggestions = await free_dates.suggest_dates(turn.session, turn.ctx, data, n=3,
                                                   exclude_event_id=f.get("edit_id"))
    f["suggestions"] = [[s, e] for s, e in suggestions]
    warning_shown(turn, report, date_key(data.start, data.end))
    turn.edit(conflict_text(turn, report, suggestions), conflict_buttons(turn, suggestions))
    return CONFLICT


@handler(access="member", chat="private", writes=False)
async def on_conflict_choice(turn: Turn) -> State | None:
    f = _f(turn)
    choice = turn.data[1] if len(turn.data) > 1 else ""
    if "start" not in f:
        turn.toast(turn.t("bot.button_expired"))
        return END
    if choice == "x":
        turn.user_data.pop("event", None)
        await record_dropped(turn, _organisation_of(turn, f))
        turn.edit(turn.t("bot.cancelled"))
        return END
    if choice == "sug":
        index = int_part(turn.data, 2)
        suggestions = f.get("suggestions") or []
        if index is None or not 0 <= index < len(suggestions):
            turn.toast(turn.t("bot.button_expired"))
            return None
        start, end = suggestions[index]
        f["start"], f["end"] = start, end
        warning_answered(turn, "moved_suggested", date_key(start, end))
        return await _check_and_save(turn, f)
    if choice == "keep":
        data = _event_input(turn, f)
        warning_answered(turn, "kept", date_key(data.start, data.end))
        async with turn.writing():
            row = await _save(turn, f, data)
        # The user waits for "saved"; finding and telling the other organisers comes after.
        event_id, context, chat_id, lang = row.id, turn.context, turn.chat_id, turn.lang
        poster = turn.who.telegram_id
        turn.after_commit(lambda: tell_organisers(context, chat_id, lang, poster, event_id, data))
        return END
    turn.toast(turn.t("bot.button_expired"))
    return None


async def _save(turn: Turn, f: dict[str, Any], data: event_input.EventInput) -> Event:
    edit_id = f.get("edit_id")
    occurrence = occurrence_at(f.get("occurrence"))
    if edit_id and occurrence is not None:
        row = await calendar.move_occurrence(turn.session, turn.ctx, turn.actor, int(edit_id),
                                             occurrence, data)
        key = "bot.events.updated"
    elif edit_id:
        row = await calendar.update_event(turn.session, turn.ctx, turn.actor, int(edit_id), data)
        key = "bot.events.updated"
    else:
        row = await calendar.add_event(turn.session, turn.ctx, turn.actor, data)
        key = "bot.events.saved"
    # The warnings this form showed, counted with the save (a replayed confirm does neither).
    await record_warnings(turn, row.organisation_id, {date_key(data.start, data.end): row.id}, row.id)
    turn.user_data.pop("event", None)
    turn.edit(turn.t(key, title=row.title,
                     when=occurrence_when(turn.ctx, row.starts_at, row.ends_at, row.all_day, turn.lang)))
    if row.moderation == Moderation.PENDING:
        turn.say("bot.events.pending")
    return row


def _organisation_of(turn: Turn, f: dict[str, Any]) -> int | None:
    """The organisation the event is for: the edited event's, else the member's."""
    member = turn.who.member
    return f.get("organisation_id") or (member.organisation_id if member else None)


@handler(access="member", chat="private", db=False)
async def on_edit_pick(turn: Turn) -> State | None:
    f = _f(turn)
    name = turn.data[2] if len(turn.data) > 2 else ""
    if "start" not in f:
        turn.toast(turn.t("bot.button_expired"))
        return END
    states = {"title": TITLE, "date": DATE, "district": DISTRICT, "category": CATEGORY,
              "audience": AUDIENCE, "place": PLACE, "link": LINK, "description": DESCRIPTION}
    if name not in states:
        turn.toast(turn.t("bot.button_expired"))
        return None
    turn.edit(turn.t("bot.events.f." + name))
    if name == "title":
        turn.say("bot.events.ask_title", limit=TITLE_LIMIT)
    else:
        _after(turn, states[name])
    f["editing"] = True
    return states[name]

