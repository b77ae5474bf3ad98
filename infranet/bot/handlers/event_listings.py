"""The event listings: /check (what is planned on given days in an area), /events (the
coming week or month, a page at a time) and /my (the organisation's own events, each
with its Edit and Cancel).

They only read: every handler here runs in a read-only transaction. The buttons under
a /my item act in `event_edit`, which shows the item again when a cancel is not
confirmed (`occurrence_line`, `my_buttons`, `series_note`).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from infranet.bot.common import Html, Turn, cb, check_length, esc, handler, int_part
from infranet.bot.handlers.event_ui import (
    contact_of,
    dates,
    district_at,
    district_index,
    district_question,
    edit_if_changed,
    occurrence_key,
    occurrence_when,
    page_link,
    shorten,
    today,
)
from infranet.calendar import day_warnings, event_queries
from infranet.calendar import events as calendar
from infranet.calendar.dateparse_hours import Hours, parse_hours
from infranet.calendar.dateparse_when import make_span, parse_when
from infranet.calendar.wallclock import all_day_span
from infranet.errors import ValidationFailed
from infranet.i18n import format_date
from infranet.network.public_contacts import Contacts, published_contacts
from infranet.region import District, UnknownDistrict
from infranet.storage.models import Event, Moderation

PAGE_SIZE = 8
PERIODS = {"week": 7, "month": 31, "tydzien": 7, "tydzień": 7, "miesiac": 31, "miesiąc": 31}


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
                turn, exc, "ev", pick=lambda d: cb("ev", "ck", days, district_index(turn.ctx, d))))
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
        page = await event_queries.first_events(turn.session, ctx, start=start, end=end, area=area, limit=15)
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
    warnings = [w for d in days if (w := day_warnings.day_warning(ctx, d))]
    extra = "".join("\n" + esc(w.message(lang)) for w in warnings[:3])
    if not total:
        return Html(turn.t("bot.events.check_free", when=label, area=area_text) + extra)
    items = Html("\n\n".join(occurrence_line(turn, o) for o in found))
    more = turn.t("bot.events.more", count=total - len(found)) if total > len(found) else ""
    return Html(turn.t("bot.events.check_busy", when=label, area=area_text, count=total, items=items)
                + (f"\n{more}" if more else "") + extra)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range(min((last - first).days + 1, 31))]


def _contacts(turn: Turn, org: Contacts | None) -> tuple[str | None, str | None]:
    """The organiser's e-mail and phone as this reader may see them: every contact for an
    approved member (or admin) in a private chat, who cooperates with the organiser; what
    the organisation published for anyone else, a group included (`published_contacts`)."""
    if org is None:
        return None, None
    if turn.who.is_member and turn.is_private:
        return org.contact_email, org.phone
    shown = published_contacts(org)
    return shown.email, shown.phone


def occurrence_line(turn: Turn, o: event_queries.Occurrence) -> str:
    ev = o.event
    org = shorten(ev.organisation.name, 80) if ev.organisation else "—"
    place = f", {esc(shorten(ev.location, 80))}" if ev.location else ""
    contact = contact_of(*_contacts(turn, ev.organisation))
    # A published event links to its page; one still waiting for moderation has none yet.
    published = getattr(ev, "moderation", Moderation.PUBLISHED) == Moderation.PUBLISHED
    title = page_link(turn.ctx, ev.id, ev.title) if published else esc(shorten(ev.title, 120))
    return (f"<b>{title}</b> — {esc(org)}\n"
            f"{esc(occurrence_when(turn.ctx, o.start, o.end, ev.all_day, turn.lang))}, "
            f"{esc(ev.district.name)}{place}\n{esc(contact)}")


def _parse_listing_args(turn: Turn, args: list[str]) -> tuple[District | None, str]:
    period = "week"
    words = list(args)
    if words and words[-1].lower() in PERIODS:
        period = "week" if PERIODS[words.pop().lower()] == 7 else "month"
    text = " ".join(words).strip()
    return (turn.ctx.region.match(check_length(text, 120)) if text else None), period


async def events_page(turn: Turn, area: District | None, period: str, page: int
                       ) -> tuple[Html, list[list[tuple[str, str]]]]:
    ctx = turn.ctx
    now = ctx.now()
    days = 7 if period == "week" else 31
    # The events up to this page and how many there are: a month of the whole region holds
    # thousands, and loading them all for one page of eight held every other update up.
    page = max(0, page)
    # A forged page number must not overflow the database's LIMIT; no period holds more.
    limit = min((page + 1) * PAGE_SIZE, 2**31 - 1)
    head = await event_queries.first_events(turn.session, ctx, start=now, end=now + timedelta(days=days),
                                       area=area, limit=limit)
    area_text = turn.t("bot.events.in_area", name=area.name) if area else ""
    period_text = turn.t(f"bot.events.period.{period}")
    if not head.total:
        return turn.t("bot.events.list_empty", area=area_text, period=period_text), []
    pages = (head.total + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(page, pages - 1)  # beyond the last page, `head` holds every event
    chunk = head.occurrences[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    lines: list[str] = [turn.t("bot.events.list_title", area=area_text, period=period_text)]
    lines += [occurrence_line(turn, o) for o in chunk]
    if pages > 1:
        lines.append(turn.t("bot.events.page", page=page + 1, pages=pages))
    area_key = district_index(ctx, area) if area else "-"
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
                                      pick=lambda d: cb("ev", "p", 0, period, district_index(turn.ctx, d))))
        return
    text, buttons = await events_page(turn, area, period, 0)
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
    text, buttons = await events_page(turn, area, period, page)
    edit_if_changed(turn, text, buttons)


async def _my_events(turn: Turn) -> list[event_queries.Occurrence]:
    """The organisation's events from now on, each once (a series at its next occurrence),
    read afresh: a page shows what is true when it is asked for."""
    member = turn.who.member
    assert member is not None and member.organisation_id is not None
    now = turn.ctx.now()
    found = await event_queries.list_events(turn.session, turn.ctx, start=now, end=now + timedelta(days=732),
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
        note = await series_note(turn, o)
        turn.reply(Html(occurrence_line(turn, o) + pending + note), my_buttons(turn, o))
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


def my_buttons(turn: Turn, o: event_queries.Occurrence) -> list[list[tuple[str, str]]]:
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


async def series_note(turn: Turn, o: event_queries.Occurrence) -> str:
    """Under a /my item: how many dates a series has, or that the item is a changed date."""
    event = o.event
    if isinstance(event, Event) and event.series_id is not None:
        return "\n" + turn.t("bot.events.override_note")
    if event.rrule and isinstance(event, Event):
        size = await calendar.series_size(turn.session, turn.ctx, event)
        return "\n" + turn.t("bot.events.series_size", count=dates(turn, size))
    return ""

