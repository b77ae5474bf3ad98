"""Changing a saved event from /my: Edit (the whole event, or one date of a series) and
Cancel (the event, the whole series, or one date of it).

Edit fills the /event form (`event_form`) with the event and opens it at the summary,
so saving runs the same conflict check; a single date of a series is saved as an
override of the series. Every button carries the event id (and a date's original
start, `occurrence_key`), checked again here against the organisation of who presses.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from infranet.bot.common import END, Html, State, Turn, cb, handler, int_part
from infranet.bot.handlers.event_form import SUMMARY, show_summary
from infranet.bot.handlers.event_listings import my_buttons, occurrence_line, series_note
from infranet.bot.handlers.event_ui import dates, occurrence_at, occurrence_key, occurrence_when
from infranet.calendar import event_queries, recurrence
from infranet.calendar import events as calendar
from infranet.errors import ValidationFailed
from infranet.storage.models import Event, EventStatus


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
        "organisation_id": row.organisation_id, "rrule": recurrence.definition(row.rrule),
        "training_id": row.training_id,
        # The summary says plainly that every date of a series changes.
        "series_size": await calendar.series_size(turn.session, turn.ctx, row) if row.rrule else None,
    }
    show_summary(turn)
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
    show_summary(turn)
    return SUMMARY


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
        note = await series_note(turn, occurrence)
        turn.edit(Html(occurrence_line(turn, occurrence) + note), my_buttons(turn, occurrence))
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


def _next_occurrence(turn: Turn, row: Event) -> event_queries.Occurrence:
    """The event as /my shows it: a series at its next date still in the series."""
    now = turn.ctx.now()
    spans = recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, turn.ctx.tz)
    span = next((s for s in spans if s.end > now), spans[-1] if spans else None)
    if span is None:
        return event_queries.Occurrence(row, row.starts_at, row.ends_at)
    return event_queries.Occurrence(row, span.start, span.end)

