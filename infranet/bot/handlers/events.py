"""Events in the chat: the /event form with the conflict check, /check, /events, /my.

Thin by design: dates are read by `infranet.calendar.dateparse`, every rule
(validation, permissions, conflicts, suggestions, moderation) lives in
`infranet.calendar.events` / `conflicts`. The form keeps only JSON-friendly
values (str, int, bool, date, datetime), so it survives a restart.

Callback data (prefix `ev`, all under 64 bytes):
  ev:allday  ev:d:<i>  ev:sr:<i>  ev:dback  ev:c:<code>  ev:a:<code>|done  ev:skip
  ev:ok  ev:edit  ev:x  ev:f:<field>  ev:keep  ev:sug:<i>
  ev:p:<page>:<period>:<area index or ->   ev:e:<event id>  ev:del:<event id>[:y]
District buttons carry the district's index in the region (never a free text),
event buttons the event id, which every handler checks again on the server.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from telegram import Message
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot.application import BotContext
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
    rows_of,
    send_html,
    tr,
)
from infranet.bot.reach import EMAIL, NONE, Notice, OrgReach, deliver, reach_of
from infranet.calendar import conflicts as conflict_api
from infranet.calendar import events as calendar
from infranet.calendar import recurrence
from infranet.calendar.dateparse import (
    Hours,
    local_today,
    make_span,
    parse_hours,
    parse_when,
    repeated_note,
)
from infranet.calendar.wallclock import all_day_span
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import format_date, format_span, t
from infranet.region import AmbiguousDistrict, District, UnknownDistrict
from infranet.storage.models import Event, EventStatus, Moderation
from infranet.validation import URL_MAX, clean_text, clean_url

log = logging.getLogger(__name__)

COMMANDS = [Command("event", "member"), Command("check"), Command("events"), Command("my", "member")]

PAGE_SIZE = 8
MAX_SHOWN_CONFLICTS = 6
TITLE_LIMIT = calendar.TITLE_MAX
PLACE_LIMIT = calendar.LOCATION_MAX
DESCRIPTION_LIMIT = 1500
PERIODS = {"week": 7, "month": 31, "tydzien": 7, "tydzień": 7, "miesiac": 31, "miesiąc": 31}

# Named, not numbered: a form's state is stored between updates, so a step added later must
# not shift the meaning of the states of forms people are filling in.
(TITLE, DATE, HOURS, DISTRICT, CATEGORY, AUDIENCE, PLACE, LINK, DESCRIPTION, SUMMARY, CONFLICT,
 EDIT_PICK) = ("event.title", "event.date", "event.hours", "event.district", "event.category",
               "event.audience", "event.place", "event.link", "event.description", "event.summary",
               "event.conflict", "event.edit_pick")



# --- shared helpers (also used by the trainings handler) -------------------------------------


def today(turn: Turn) -> date:
    return local_today(turn.ctx.now(), turn.ctx.tz)


def when_text(ctx: AppContext, start: datetime | date, end: datetime | date, all_day: bool,
              lang: str) -> str:
    """"sobota, 5 grudnia 2026, 10:00–14:00" for stored (UTC) or form values."""
    if all_day:
        first = start if not isinstance(start, datetime) else start.astimezone(ctx.tz).date()
        last = end if not isinstance(end, datetime) else end.astimezone(ctx.tz).date()
        return format_span(*all_day_span(first, last, ctx.tz), ctx.tz, lang, all_day=True)
    assert isinstance(start, datetime) and isinstance(end, datetime)
    return format_span(start, end, ctx.tz, lang)


def occurrence_when(ctx: AppContext, start: datetime, end: datetime, all_day: bool, lang: str) -> str:
    return format_span(start, end, ctx.tz, lang, all_day=all_day)


def district_buttons(turn: Turn, prefix: str) -> list[list[tuple[str, str]]]:
    """First level: the whole region and each subregion."""
    region = turn.ctx.region
    rows: list[list[tuple[str, str]]] = [
        [(turn.t("bot.events.whole_region"), cb(prefix, "d", _index(turn.ctx, region.root)))]]
    rows += rows_of([(d.name, cb(prefix, "sr", _index(turn.ctx, d))) for d in region.subregions], 1)
    return rows


def subregion_buttons(turn: Turn, prefix: str, subregion: District) -> list[list[tuple[str, str]]]:
    rows: list[list[tuple[str, str]]] = [[(turn.t("bot.events.whole_subregion", name=subregion.name),
              cb(prefix, "d", _index(turn.ctx, subregion)))]]
    rows += rows_of([(d.name, cb(prefix, "d", _index(turn.ctx, d))) for d in subregion.children], 2)
    rows.append([(turn.t("bot.prev"), cb(prefix, "dback"))])
    return rows


def district_label(turn: Turn, district: District) -> str:
    """A district as a button says it: a city that is a powiat of its own says so, and a
    powiat says "powiat", so that "Olsztyn" offers two buttons that cannot be confused."""
    if district.kind == "powiat":
        key = "bot.district.city" if district.is_city else "bot.district.powiat"
        return turn.t(key, name=district.name)
    return district.name


def district_question(turn: Turn, exc: UnknownDistrict, prefix: str,
                      pick: Any = None) -> tuple[Html, list[list[tuple[str, str]]]]:
    """The answer to a district the region does not know as typed, with buttons: the
    districts a name may mean ("Olsztyn": the city or the powiat), the close matches of a
    typo, or for a place outside the region, the whole region and its subregions.
    `pick(district)` is the callback data of choosing a district (default `prefix:d:<i>`,
    the form's district step; a subregion then opens its powiaty there)."""
    def choose(district: District) -> str:
        return pick(district) if pick else cb(prefix, "d", _index(turn.ctx, district))

    region = turn.ctx.region
    if isinstance(exc, AmbiguousDistrict):
        return (turn.t("bot.district.which", query=exc.query),
                [[(district_label(turn, d), choose(d))] for d in exc.suggestions])
    if exc.outside:
        text = turn.t("bot.district.outside", query=exc.query, region=region.name)
        if pick is None:
            return text, district_buttons(turn, prefix)
        return text, [[(turn.t("bot.events.whole_region"), choose(region.root))],
                      *[[(d.name, choose(d))] for d in region.subregions]]
    return (turn.t("bot.district.did_you_mean", query=exc.query),
            [[(district_label(turn, d), choose(d))] for d in exc.suggestions])


def _index(ctx: AppContext, district: District) -> int:
    return ctx.region.districts.index(district)


def district_at(ctx: AppContext, value: str | None) -> District | None:
    """The district of a button (an index), or None for a forged value."""
    try:
        index = int(value or "")
    except ValueError:
        return None
    districts = ctx.region.districts
    return districts[index] if 0 <= index < len(districts) else None


def contact_of(org_email: str | None, phone: str | None) -> str:
    return ", ".join(x for x in (org_email, phone) if x) or "—"


def _skip_button(turn: Turn) -> list[list[tuple[str, str]]]:
    return [[(turn.t("bot.skip"), cb("ev", "skip"))]]


# --- the /event form ---------------------------------------------------------------------------


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
        _show_summary(turn)
        return SUMMARY
    ask = {
        DATE: lambda: turn.say("bot.events.ask_date"),
        DISTRICT: lambda: turn.say("bot.events.ask_district", district_buttons(turn, "ev")),
        CATEGORY: lambda: turn.say("bot.events.ask_category", rows_of(
            [(calendar.category_label(c, turn.lang), cb("ev", "c", c)) for c in calendar.CATEGORIES], 2)),
        AUDIENCE: lambda: turn.reply(*_audience_prompt(turn)),
        PLACE: lambda: turn.say("bot.events.ask_place", _skip_button(turn)),
        LINK: lambda: turn.say("bot.events.ask_link", _skip_button(turn)),
        DESCRIPTION: lambda: turn.say("bot.events.ask_description", _skip_button(turn),
                                      limit=DESCRIPTION_LIMIT),
        SUMMARY: lambda: _show_summary(turn),
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
    calendar.check_days(turn.ctx, when.first, when.last)  # the limits now, not at the confirm
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
    calendar.event_times(turn.ctx, calendar.EventInput(title="", start=start, end=end,
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
    if code not in calendar.CATEGORIES:
        turn.toast(turn.t("bot.events.unknown_category"))
        return None
    _f(turn)["category"] = code
    turn.edit(esc(calendar.category_label(code, turn.lang)))
    return _after(turn, AUDIENCE)


def _audience_prompt(turn: Turn) -> tuple[Html, list[list[tuple[str, str]]]]:
    chosen = set(_f(turn).get("audiences", []))
    buttons = rows_of([(("✓ " if code in chosen else "") + calendar.audience_label(code, turn.lang),
                        cb("ev", "a", code)) for code in calendar.AUDIENCES], 2)
    buttons.append([(turn.t("bot.next"), cb("ev", "a", "done"))])
    return turn.t("bot.events.ask_audience"), buttons


@handler(access="member", chat="private", db=False)
async def on_audience(turn: Turn) -> State | None:
    f = _f(turn)
    code = turn.data[2] if len(turn.data) > 2 else ""
    if code == "done":
        chosen = f.setdefault("audiences", [])
        labels = ", ".join(calendar.audience_label(c, turn.lang) for c in chosen) or \
            turn.t("bot.events.everyone")
        turn.edit(esc(labels))
        return _after(turn, PLACE)
    if code not in calendar.AUDIENCES:
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


def _event_input(turn: Turn, f: dict[str, Any]) -> calendar.EventInput:
    return calendar.EventInput(
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
    audiences = ", ".join(calendar.audience_label(a, lang) for a in f.get("audiences", [])) or \
        turn.t("bot.events.everyone")
    lines = [f"<b>{esc(f.get('title', ''))}</b>",
             esc(when_text(ctx, f["start"], f["end"], bool(f.get("all_day")), lang)),
             *([] if f.get("all_day") or not isinstance(f["start"], datetime) else
               [esc(n) for n in [repeated_note(f["start"], f["end"], ctx.tz, lang)] if n]),
             f"{turn.t('bot.events.f.district')}: {esc(district.name)}",
             f"{turn.t('bot.events.f.category')}: "
             f"{esc(calendar.category_label(f.get('category', 'other'), lang))}",
             f"{turn.t('bot.events.f.audience')}: {esc(audiences)}"]
    for key, label in (("location", "place"), ("url", "link"), ("description", "description")):
        if f.get(key):
            lines.append(f"{turn.t('bot.events.f.' + label)}: {esc(f[key])}")
    if f.get("occurrence_when"):
        lines.append("\n" + turn.t("bot.events.one_date_note", when=f["occurrence_when"]))
    elif f.get("series_size"):
        lines.append("\n" + turn.t("bot.events.whole_series_note", count=dates(turn, f["series_size"])))
    return Html("\n".join(lines))


def _show_summary(turn: Turn) -> None:
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
    suggestions = await conflict_api.suggest_dates(turn.session, turn.ctx, data, n=3,
                                                   exclude_event_id=f.get("edit_id"))
    f["suggestions"] = [[s, e] for s, e in suggestions]
    turn.edit(_conflict_text(turn, report, suggestions), _conflict_buttons(turn, suggestions))
    return CONFLICT


def _conflict_text(turn: Turn, report: conflict_api.ConflictReport, suggestions: list[Any]) -> Html:
    ctx, lang = turn.ctx, turn.lang
    items: list[str] = []
    for c in report.conflicts[:MAX_SHOWN_CONFLICTS]:
        place = f", {c.event.location}" if c.event.location else ""
        items.append(turn.t("bot.events.conflict_item", mark="‼️" if c.severity == "high" else "•",
                            title=c.event.title, org=c.organisation_name or "—",
                            when=occurrence_when(ctx, c.start, c.end, c.event.all_day, lang),
                            district=c.event.district.name, place=place,
                            contact=contact_of(c.contact_email, c.phone)))
    if any(c.severity == "high" for c in report.conflicts):
        items.append(turn.t("bot.events.high_note"))
    hidden = len(report.conflicts) - MAX_SHOWN_CONFLICTS
    if hidden > 0:
        items.append(turn.t("bot.events.more", count=hidden))
    for c in report.duplicates[:3]:
        items.append(turn.t("bot.events.duplicate_item", title=c.event.title, org=c.organisation_name or "—",
                            when=occurrence_when(ctx, c.start, c.end, c.event.all_day, lang)))
    for warning in report.warnings[:3]:
        items.append("• " + esc(warning.message(lang)))
    if not suggestions:
        items.append(turn.t("bot.events.no_suggestions"))
    return turn.t("bot.events.conflicts", items=Html("\n".join(items)))


def _conflict_buttons(turn: Turn, suggestions: list[Any], prefix: str = "ev") -> list[list[tuple[str, str]]]:
    """Keep my date, the free dates found, Cancel; `prefix` is the form's (the /training
    form shows this same screen with its own buttons)."""
    rows: list[list[tuple[str, str]]] = [[(turn.t("bot.events.keep"), cb(prefix, "keep"))]]
    for index, (start, end) in enumerate(suggestions):
        all_day = not isinstance(start, datetime)
        rows.append([(when_text(turn.ctx, start, end, all_day, turn.lang)[:60], cb(prefix, "sug", index))])
    rows.append([(turn.t("bot.cancel"), cb(prefix, "x"))])
    return rows


@handler(access="member", chat="private", writes=False)
async def on_conflict_choice(turn: Turn) -> State | None:
    f = _f(turn)
    choice = turn.data[1] if len(turn.data) > 1 else ""
    if "start" not in f:
        turn.toast(turn.t("bot.button_expired"))
        return END
    if choice == "x":
        turn.user_data.pop("event", None)
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
        return await _check_and_save(turn, f)
    if choice == "keep":
        data = _event_input(turn, f)
        async with turn.writing():
            row = await _save(turn, f, data)
        # The user waits for "saved"; finding and telling the other organisers comes after.
        event_id, context, chat_id, lang = row.id, turn.context, turn.chat_id, turn.lang
        poster = turn.who.telegram_id
        turn.after_commit(lambda: _tell_organisers(context, chat_id, lang, poster, event_id, data))
        return END
    turn.toast(turn.t("bot.button_expired"))
    return None


async def _save(turn: Turn, f: dict[str, Any], data: calendar.EventInput) -> Event:
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
    turn.user_data.pop("event", None)
    turn.edit(turn.t(key, title=row.title,
                     when=occurrence_when(turn.ctx, row.starts_at, row.ends_at, row.all_day, turn.lang)))
    if row.moderation == Moderation.PENDING:
        turn.say("bot.events.pending")
    return row


async def _tell_organisers(context: BotContext, chat_id: int, lang: str, poster: int, event_id: int,
                           data: calendar.EventInput) -> None:
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
        for org_id, target in targets.items():
            params = {"org": org, "title": title, "district": district,
                      "theirs": theirs[org_id].event.title, "contact": contact}

            def telegram(member_lang: str, params: dict[str, Any] = params) -> tuple[str, Any]:
                when = occurrence_when(ctx, *span, member_lang)
                return tr(member_lang, "bot.events.conflict_notice", when=when, **params), None

            notices[org_id] = (target, Notice(
                telegram, subject=t(mail_lang, "bot.events.conflict_subject", title=title),
                body=t(mail_lang, "bot.events.conflict_email",
                       when=occurrence_when(ctx, *span, mail_lang), **params),
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


@handler(access="member", chat="private", writes=False)
async def on_edit_entry(turn: Turn) -> State | None:
    """/my → Edit: the event's form, straight to the summary; saving re-runs the conflict check."""
    event_id = int_part(turn.data, 2)
    if event_id is None:
        turn.toast(turn.t("bot.button_expired"))
        return END
    row = await calendar.get_event(turn.session, event_id)
    turn.actor.require_org(row.organisation_id)
    if row.status == EventStatus.CANCELLED:
        turn.toast(turn.t("bot.button_expired"))
        return END
    tz = turn.ctx.tz
    all_day = row.all_day
    start: date | datetime = row.starts_at.astimezone(tz).date() if all_day else row.starts_at
    end: date | datetime = (row.ends_at.astimezone(tz) - timedelta(hours=1)).date() if all_day \
        else row.ends_at
    turn.user_data["event"] = {
        "edit_id": row.id, "title": row.title, "start": start, "end": end, "all_day": all_day,
        "first": row.starts_at.astimezone(tz).date(), "last": row.ends_at.astimezone(tz).date(),
        "district": row.district.slug, "category": row.category, "audiences": list(row.audiences),
        "location": row.location, "url": row.url, "description": row.description,
        "organisation_id": row.organisation_id, "rrule": recurrence.rule_part(row.rrule),
        "training_id": row.training_id,
        # The summary says plainly that every date of a series changes.
        "series_size": await calendar.series_size(turn.session, turn.ctx, row) if row.rrule else None,
    }
    _show_summary(turn)
    return SUMMARY


@handler(access="member", chat="private", writes=False)
async def on_occurrence_entry(turn: Turn) -> State | None:
    """"Only this date" of a series: the form of that one date, straight to the summary;
    saving stores it as an override of the series (`calendar.move_occurrence`)."""
    event_id = int_part(turn.data, 2)
    start = occurrence_at(turn.data[3] if len(turn.data) > 3 else None)
    if event_id is None or start is None:
        turn.toast(turn.t("bot.button_expired"))
        return END
    row = await calendar.get_event(turn.session, event_id)
    turn.actor.require_org(row.organisation_id)
    span = series_occurrence(turn, row, start)  # a date no longer in the series: said, nothing changes
    tz = turn.ctx.tz
    all_day = row.all_day
    first_day = span.start.astimezone(tz).date()
    last_day = recurrence.local_days(span.start, span.end, tz)[-1]
    turn.user_data["event"] = {
        "edit_id": row.id, "occurrence": occurrence_key(start), "title": row.title,
        "occurrence_when": occurrence_when(turn.ctx, span.start, span.end, all_day, turn.lang),
        "start": first_day if all_day else span.start, "end": last_day if all_day else span.end,
        "all_day": all_day, "first": first_day, "last": last_day,
        "district": row.district.slug, "category": row.category, "audiences": list(row.audiences),
        "location": row.location, "url": row.url, "description": row.description,
        "organisation_id": row.organisation_id, "rrule": None, "training_id": row.training_id,
    }
    _show_summary(turn)
    return SUMMARY


def occurrence_key(start: datetime) -> str:
    """An occurrence of a series in a button: its original start, UTC, to the minute."""
    return start.astimezone(UTC).strftime("%Y%m%d%H%M")


def occurrence_at(key: object) -> datetime | None:
    """The original start a button names (None: none, or a forged value)."""
    if not isinstance(key, str) or not (len(key) == 12 and key.isascii() and key.isdigit()):
        return None
    try:
        return datetime.strptime(key, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def series_occurrence(turn: Turn, row: Event, start: datetime) -> recurrence.Span:
    """The occurrence of the series `row` that starts at `start`; ValidationFailed (said to
    the user, nothing changes) when it is no longer part of the series."""
    if row.status == EventStatus.CANCELLED or not row.rrule:
        raise ValidationFailed("calendar.error.occurrence_gone",
                               when=occurrence_when(turn.ctx, start, start, False, turn.lang))
    for span in recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, turn.ctx.tz):
        if span.start == start:
            return span
    raise ValidationFailed("calendar.error.occurrence_gone",
                           when=occurrence_when(turn.ctx, start, start, row.all_day, turn.lang))


def dates(turn: Turn, count: int) -> str:
    """"1 termin", "3 terminy", "12 terminów" (the catalog's plural forms)."""
    return turn.t("bot.count.dates", count=count)


@handler(access="member", chat="private", writes=False)
async def on_series_edit(turn: Turn) -> None:
    """Edit under a series in /my: this date, or the whole series (and how many dates that is)."""
    event_id = int_part(turn.data, 2)
    start = occurrence_at(turn.data[3] if len(turn.data) > 3 else None)
    if event_id is None or start is None:
        turn.toast(turn.t("bot.button_expired"))
        return
    row = await calendar.get_event(turn.session, event_id)
    turn.actor.require_org(row.organisation_id)
    span = series_occurrence(turn, row, start)
    count = dates(turn, await calendar.series_size(turn.session, turn.ctx, row))
    turn.edit(turn.t("bot.events.series_edit_which", title=row.title, count=count,
                     when=occurrence_when(turn.ctx, span.start, span.end, row.all_day, turn.lang)), [
        [(turn.t("bot.events.only_this"), cb("ev", "eo", row.id, occurrence_key(start)))],
        [(turn.t("bot.events.whole_series", count=count), cb("ev", "e", row.id))]])


@handler(access="member", chat="private")
async def on_cancel_occurrence(turn: Turn) -> None:
    """"Only this date" under a series' Cancel: that date goes (EXDATE in feeds); a date that
    is no longer in the series is said so and nothing changes."""
    event_id = int_part(turn.data, 2)
    start = occurrence_at(turn.data[3] if len(turn.data) > 3 else None)
    if event_id is None or start is None:
        turn.toast(turn.t("bot.button_expired"))
        return
    row = await calendar.get_event(turn.session, event_id)
    turn.actor.require_org(row.organisation_id)
    span = series_occurrence(turn, row, start)
    await calendar.cancel_occurrence(turn.session, turn.ctx, turn.actor, row.id, start)
    turn.edit(turn.t("bot.events.occurrence_cancelled", title=row.title,
                     when=occurrence_when(turn.ctx, span.start, span.end, row.all_day, turn.lang)))


# --- /check, /events, /my ------------------------------------------------------------------------


def _split_date_area(turn: Turn, args: list[str]) -> tuple[date, date, Hours | None, str]:
    """`/check piątek 10-14 olsztyński`: the longest leading words that make a date (with
    hours, if given), then the words naming a district (returned as typed)."""
    last_error: ValidationFailed | None = None
    for cut in range(len(args), 0, -1):
        try:
            when = parse_when(" ".join(args[:cut]), today(turn), lang=turn.lang, allow_past=True)
        except ValidationFailed as exc:
            last_error = last_error or exc
            continue
        hours = None if when.hours is None or when.hours.all_day else when.hours
        return when.first, when.last, hours, " ".join(args[cut:]).strip()
    assert last_error is not None
    raise last_error


def _hours_key(hours: Hours | None) -> str:
    """Hours in a button's data: `1000-1430` (`2400` for midnight at the end), `-` for none."""
    if hours is None or hours.start is None or hours.end is None:
        return "-"
    end = "2400" if hours.ends_next_day else hours.end.strftime("%H%M")
    return f"{hours.start.strftime('%H%M')}-{end}"


def _hours_of(key: str) -> Hours | None:
    if key == "-":
        return None
    found = re.fullmatch(r"(\d{2})(\d{2})-(\d{2})(\d{2})", key)
    if found is None:
        raise ValueError(key)
    return parse_hours("{}:{}-{}:{}".format(*found.groups()))


@handler(writes=False)
async def cmd_check(turn: Turn) -> None:
    if not turn.args:
        turn.say("bot.events.check_usage")
        return
    first, last, hours, place = _split_date_area(turn, turn.args)
    area: District | None = None
    if place:
        try:
            area = turn.ctx.region.match(check_length(place, 120))
        except UnknownDistrict as exc:
            # Buttons that run this very check in the district chosen.
            days = f"{first:%Y%m%d}:{last:%Y%m%d}:{_hours_key(hours)}"
            turn.reply(*district_question(
                turn, exc, "ev", pick=lambda d: cb("ev", "ck", days, _index(turn.ctx, d))))
            return
    turn.reply(await _check_answer(turn, first, last, hours, area))


@handler(writes=False)
async def on_check_pick(turn: Turn) -> None:
    """A district button under /check's question: `ev:ck:<first>:<last>:<hours>:<district>`."""
    try:
        first = datetime.strptime(turn.data[2], "%Y%m%d").date()
        last = datetime.strptime(turn.data[3], "%Y%m%d").date()
        hours = _hours_of(turn.data[4])
    except (IndexError, ValueError, ValidationFailed):
        turn.toast(turn.t("bot.button_expired"))
        return
    area = district_at(turn.ctx, turn.data[5] if len(turn.data) > 5 else None)
    if area is None or not 0 <= (last - first).days <= 366:
        turn.toast(turn.t("bot.button_expired"))
        return
    turn.edit(await _check_answer(turn, first, last, hours, area))


async def _check_answer(turn: Turn, first: date, last: date, hours: Hours | None,
                        area: District | None) -> Html:
    """What is planned on these days (within these hours, on each day) in this area."""
    ctx, lang = turn.ctx, turn.lang
    days = _days(first, last)
    if hours is None:
        windows = [all_day_span(first, last, ctx.tz)]
    else:
        windows = [(span.start, span.end) for span in (make_span(d, d, hours, ctx.tz) for d in days)]
    total, found, seen = 0, list[Any](), set[tuple[int, datetime]]()
    for start, end in windows:
        page = await calendar.first_events(turn.session, ctx, start=start, end=end, area=area, limit=15)
        total += page.total
        for o in page.occurrences:
            if (o.event.id, o.start) not in seen and len(found) < 15:
                seen.add((o.event.id, o.start))
                found.append(o)
    label = format_date(first, lang) if first == last else \
        f"{format_date(first, lang)} – {format_date(last, lang)}"
    if hours is not None:
        label += f", {hours.label()}"
    area_text = turn.t("bot.events.in_area", name=area.name) if area else ""
    warnings = [w for d in days if (w := conflict_api.day_warning(ctx, d))]
    extra = "".join("\n" + esc(w.message(lang)) for w in warnings[:3])
    if not total:
        return Html(turn.t("bot.events.check_free", when=label, area=area_text) + extra)
    items = Html("\n\n".join(_occurrence_line(turn, o) for o in found))
    more = turn.t("bot.events.more", count=total - len(found)) if total > len(found) else ""
    return Html(turn.t("bot.events.check_busy", when=label, area=area_text, count=total, items=items)
                + (f"\n{more}" if more else "") + extra)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range(min((last - first).days + 1, 31))]


def shorten(text: str, limit: int) -> str:
    """Listings show at most `limit` characters of a field, so that a page fits one message."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _occurrence_line(turn: Turn, o: calendar.Occurrence) -> str:
    ev = o.event
    org = shorten(ev.organisation.name, 80) if ev.organisation else "—"
    place = f", {esc(shorten(ev.location, 80))}" if ev.location else ""
    contact = contact_of(ev.organisation.contact_email if ev.organisation else None,
                         ev.organisation.phone if ev.organisation else None)
    return (f"<b>{esc(shorten(ev.title, 120))}</b> — {esc(org)}\n"
            f"{esc(occurrence_when(turn.ctx, o.start, o.end, ev.all_day, turn.lang))}, "
            f"{esc(ev.district.name)}{place}\n{esc(contact)}")


def _parse_listing_args(turn: Turn, args: list[str]) -> tuple[District | None, str]:
    period = "week"
    words = list(args)
    if words and words[-1].lower() in PERIODS:
        period = "week" if PERIODS[words.pop().lower()] == 7 else "month"
    text = " ".join(words).strip()
    return (turn.ctx.region.match(check_length(text, 120)) if text else None), period


async def _events_page(turn: Turn, area: District | None, period: str, page: int
                       ) -> tuple[Html, list[list[tuple[str, str]]]]:
    ctx = turn.ctx
    now = ctx.now()
    days = 7 if period == "week" else 31
    # The events up to this page and how many there are: a month of the whole region holds
    # thousands, and loading them all for one page of eight held every other update up.
    page = max(0, page)
    # A forged page number must not overflow the database's LIMIT; no period holds more.
    limit = min((page + 1) * PAGE_SIZE, 2**31 - 1)
    head = await calendar.first_events(turn.session, ctx, start=now, end=now + timedelta(days=days),
                                       area=area, limit=limit)
    area_text = turn.t("bot.events.in_area", name=area.name) if area else ""
    period_text = turn.t(f"bot.events.period.{period}")
    if not head.total:
        return turn.t("bot.events.list_empty", area=area_text, period=period_text), []
    pages = (head.total + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(page, pages - 1)  # beyond the last page, `head` holds every event
    chunk = head.occurrences[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    lines: list[str] = [turn.t("bot.events.list_title", area=area_text, period=period_text)]
    lines += [_occurrence_line(turn, o) for o in chunk]
    if pages > 1:
        lines.append(turn.t("bot.events.page", page=page + 1, pages=pages))
    area_key = _index(ctx, area) if area else "-"
    nav: list[tuple[str, str]] = []
    if page > 0:
        nav.append((turn.t("bot.prev"), cb("ev", "p", page - 1, period, area_key)))
    if page < pages - 1:
        nav.append((turn.t("bot.next"), cb("ev", "p", page + 1, period, area_key)))
    return Html("\n\n".join(lines)), [nav] if nav else []


@handler(writes=False)
async def cmd_events(turn: Turn) -> None:
    try:
        area, period = _parse_listing_args(turn, turn.args)
    except UnknownDistrict as exc:  # buttons that list the district chosen
        last = turn.args[-1].lower() if turn.args else ""
        period = "month" if PERIODS.get(last) == 31 else "week"
        turn.reply(*district_question(turn, exc, "ev",
                                      pick=lambda d: cb("ev", "p", 0, period, _index(turn.ctx, d))))
        return
    text, buttons = await _events_page(turn, area, period, 0)
    turn.reply(text, buttons)


@handler(writes=False)
async def on_events_page(turn: Turn) -> None:
    page = int_part(turn.data, 2)
    period = turn.data[3] if len(turn.data) > 3 else ""
    area_key = turn.data[4] if len(turn.data) > 4 else "-"
    area = None if area_key == "-" else district_at(turn.ctx, area_key)
    if page is None or period not in ("week", "month") or (area_key != "-" and area is None):
        turn.toast(turn.t("bot.button_expired"))
        return
    text, buttons = await _events_page(turn, area, period, page)
    edit_if_changed(turn, text, buttons)


def would_not_change(turn: Turn, text: str, buttons: list[list[tuple[str, str]]]) -> bool:
    """Would this edit change nothing? (Telegram refuses such edits.)"""
    message = turn.update.callback_query.message if turn.update.callback_query else None
    if not isinstance(message, Message):  # absent, or too old for Telegram to show
        return False
    visible = html.unescape(re.sub(r"<[^>]+>", "", text))
    old_buttons = [[(b.text, b.callback_data or b.url or "") for b in row]
                   for row in (message.reply_markup.inline_keyboard if message.reply_markup else [])]
    new_buttons = [[(label, value) for label, value in row] for row in buttons]
    return getattr(message, "text", None) == visible and old_buttons == new_buttons


def edit_if_changed(turn: Turn, text: str, buttons: list[list[tuple[str, str]]]) -> None:
    """Edit the pressed message, unless that would change nothing (a second press of a
    button whose result is already on screen): then only answer the press."""
    if would_not_change(turn, text, buttons):
        turn.toast(turn.t("bot.button_expired"))
    else:
        turn.edit(text, buttons)


async def _my_events(turn: Turn) -> list[calendar.Occurrence]:
    """The organisation's events from now on, each once (a series at its next occurrence),
    read afresh: a page shows what is true when it is asked for."""
    member = turn.who.member
    assert member is not None and member.organisation_id is not None
    now = turn.ctx.now()
    found = await calendar.list_events(turn.session, turn.ctx, start=now, end=now + timedelta(days=732),
                                       organisation_id=member.organisation_id, include_pending=True,
                                       viewer=turn.actor)
    seen: set[tuple[str, int]] = set()
    events = []
    for o in found:
        # A series once, and a training notice once (its buttons act on the notice).
        training_id = o.event.training_id
        key = ("t", training_id) if training_id is not None else ("e", o.event.id)
        if key not in seen:
            seen.add(key)
            events.append(o)
    return events


async def _show_my_page(turn: Turn, page: int, *, always_bar: bool) -> None:
    """One page of /my: a message per event with its Edit and Cancel, then the page bar
    (‹ ›). The page is clamped to what exists now, and the bar says which page it is."""
    events = await _my_events(turn)
    pages = max(1, (len(events) + PAGE_SIZE - 1) // PAGE_SIZE)
    page = min(max(0, page), pages - 1)
    for o in events[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]:
        pending = turn.t("bot.events.my_pending") if o.event.moderation == Moderation.PENDING else ""
        note = await _series_note(turn, o)
        turn.reply(Html(_occurrence_line(turn, o) + pending + note), _my_buttons(turn, o))
    if pages > 1 or always_bar:
        nav = []
        if page > 0:
            nav.append(("‹", cb("ev", "my", page - 1)))
        if page < pages - 1:
            nav.append(("›", cb("ev", "my", page + 1)))
        count = turn.t("bot.count.events", count=len(events))
        turn.say("bot.events.my_page", [nav] if nav else None, page=page + 1, pages=pages, count=count)


@handler(access="member", chat="private", writes=False)
async def cmd_my(turn: Turn) -> None:
    member = turn.who.member
    if member is None or member.organisation_id is None:
        turn.say("bot.events.no_org")
        return
    if not await _my_events(turn):
        turn.say("bot.events.my_empty")
        return
    org = member.organisation.name if member.organisation else ""
    turn.say("bot.events.my_title", org=org)
    await _show_my_page(turn, 0, always_bar=False)


@handler(access="member", chat="private", writes=False)
async def on_my_page(turn: Turn) -> None:
    """‹ › under /my: the asked page as it is now (a late press shows the current truth;
    a page that no longer exists shows the last one, numbered as it is)."""
    member = turn.who.member
    if member is None or member.organisation_id is None:
        turn.say("bot.events.no_org")
        return
    page = int_part(turn.data, 2)
    if page is None:
        page = 0
    if not await _my_events(turn):
        turn.say("bot.events.my_empty")
        return
    await _show_my_page(turn, page, always_bar=True)


@handler(access="member", chat="private")
async def on_cancel_event(turn: Turn) -> None:
    event_id = int_part(turn.data, 2)
    if event_id is None:
        turn.toast(turn.t("bot.button_expired"))
        return
    row = await calendar.get_event(turn.session, event_id)
    turn.actor.require_org(row.organisation_id)  # before showing anything
    when = occurrence_when(turn.ctx, row.starts_at, row.ends_at, row.all_day, turn.lang)
    if row.status == EventStatus.CANCELLED:
        turn.edit(turn.t("bot.events.cancelled", title=row.title))
        return
    choice = turn.data[3] if len(turn.data) > 3 else ""
    if choice == "n":
        occurrence = _next_occurrence(turn, row)
        note = await _series_note(turn, occurrence)
        turn.edit(Html(_occurrence_line(turn, occurrence) + note), _my_buttons(turn, occurrence))
        return
    if choice == "y":
        size = await calendar.series_size(turn.session, turn.ctx, row) if row.rrule else 0
        await calendar.cancel_event(turn.session, turn.ctx, turn.actor, event_id)
        if size:
            turn.edit(turn.t("bot.events.series_cancelled", title=row.title, count=dates(turn, size)))
        else:
            turn.edit(turn.t("bot.events.cancelled", title=row.title))
        return
    start = occurrence_at(choice)
    if start is None and row.rrule and not choice:  # a series' Cancel without its date: the next one
        start = _next_occurrence(turn, row).start
    if start is not None:  # a series: this date or all of them
        span = series_occurrence(turn, row, start)
        count = dates(turn, await calendar.series_size(turn.session, turn.ctx, row))
        turn.edit(turn.t("bot.events.series_cancel_which", title=row.title, count=count,
                         when=occurrence_when(turn.ctx, span.start, span.end, row.all_day, turn.lang)), [
            [(turn.t("bot.events.only_this"), cb("ev", "xo", row.id, occurrence_key(start)))],
            [(turn.t("bot.events.whole_series", count=count), cb("ev", "del", row.id, "y"))],
            [(turn.t("bot.events.keep_event"), cb("ev", "del", row.id, "n"))]])
        return
    turn.edit(turn.t("bot.events.confirm_cancel", title=row.title, when=when), [[
        (turn.t("bot.events.cancel_event"), cb("ev", "del", event_id, "y")),
        (turn.t("bot.events.keep_event"), cb("ev", "del", event_id, "n"))]])


def _my_buttons(turn: Turn, o: calendar.Occurrence) -> list[list[tuple[str, str]]]:
    """Edit and Cancel of one /my item; under a series they name the date shown, and ask
    whether the change is for that date or the whole series."""
    event_id = o.event.id
    training_id = getattr(o.event, "training_id", None)
    if training_id is not None:  # a session of a training notice: the notice is what changes
        return [[(turn.t("bot.trainings.edit"), cb("tr", "e", training_id)),
                 (turn.t("bot.trainings.cancel"), cb("tr", "c", training_id))]]
    if o.event.rrule:
        key = occurrence_key(o.start)
        return [[(turn.t("bot.events.edit"), cb("ev", "e", event_id, key)),
                 (turn.t("bot.events.cancel_event"), cb("ev", "del", event_id, key))]]
    return [[(turn.t("bot.events.edit"), cb("ev", "e", event_id)),
             (turn.t("bot.events.cancel_event"), cb("ev", "del", event_id))]]


async def _series_note(turn: Turn, o: calendar.Occurrence) -> str:
    """Under a /my item: how many dates a series has, or that the item is a changed date."""
    event = o.event
    if isinstance(event, Event) and event.series_id is not None:
        return "\n" + turn.t("bot.events.override_note")
    if event.rrule and isinstance(event, Event):
        size = await calendar.series_size(turn.session, turn.ctx, event)
        return "\n" + turn.t("bot.events.series_size", count=dates(turn, size))
    return ""


def _next_occurrence(turn: Turn, row: Event) -> calendar.Occurrence:
    """The event as /my shows it: a series at its next date still in the series."""
    now = turn.ctx.now()
    spans = recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, turn.ctx.tz)
    span = next((s for s in spans if s.end > now), spans[-1] if spans else None)
    if span is None:
        return calendar.Occurrence(row, row.starts_at, row.ends_at)
    return calendar.Occurrence(row, span.start, span.end)


@handler(db=False)
async def on_stale(turn: Turn) -> None:
    turn.toast(turn.t("bot.button_expired"))


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    text = filters.TEXT & ~filters.COMMAND
    skip = CallbackQueryHandler(on_place, pattern=r"^ev:skip$")
    form_handler = conversation(
        ctx, "event",
        entry_points=[CommandHandler("event", cmd_event),
                      CallbackQueryHandler(on_edit_entry, pattern=r"^ev:e:\d+$"),
                      CallbackQueryHandler(on_occurrence_entry, pattern=r"^ev:eo:\d+:\d+$")],
        states={
            TITLE: [MessageHandler(text, on_title)],
            DATE: [MessageHandler(text, on_date)],
            HOURS: [MessageHandler(text, on_hours), CallbackQueryHandler(on_hours, pattern=r"^ev:allday$")],
            DISTRICT: [MessageHandler(text, on_district),
                       CallbackQueryHandler(on_district, pattern=r"^ev:(d|sr|dback)(:|$)")],
            CATEGORY: [CallbackQueryHandler(on_category, pattern=r"^ev:c:")],
            AUDIENCE: [CallbackQueryHandler(on_audience, pattern=r"^ev:a:")],
            PLACE: [MessageHandler(text, on_place), skip],
            LINK: [MessageHandler(text, on_link), CallbackQueryHandler(on_link, pattern=r"^ev:skip$")],
            DESCRIPTION: [MessageHandler(text, on_description),
                          CallbackQueryHandler(on_description, pattern=r"^ev:skip$")],
            SUMMARY: [CallbackQueryHandler(on_summary, pattern=r"^ev:(ok|edit|x)$")],
            EDIT_PICK: [CallbackQueryHandler(on_edit_pick, pattern=r"^ev:f:")],
            CONFLICT: [CallbackQueryHandler(on_conflict_choice, pattern=r"^ev:(keep|sug:\d+|x)$")],
        },
    )
    return [
        form_handler,
        CommandHandler("check", cmd_check),
        CommandHandler("events", cmd_events),
        CommandHandler("my", cmd_my),
        CallbackQueryHandler(on_events_page, pattern=r"^ev:p:"),
        CallbackQueryHandler(on_check_pick, pattern=r"^ev:ck:"),
        CallbackQueryHandler(on_cancel_event, pattern=r"^ev:del:"),
        CallbackQueryHandler(on_series_edit, pattern=r"^ev:e:\d+:\d+$"),
        CallbackQueryHandler(on_cancel_occurrence, pattern=r"^ev:xo:"),
        CallbackQueryHandler(on_my_page, pattern=r"^ev:my:"),
        CallbackQueryHandler(on_stale, pattern=r"^ev:"),
    ]
