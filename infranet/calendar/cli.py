"""`infranet events add|list|cancel|conflicts|import|export`: thin wrappers over the calendar API.

Stored text (titles, names, places, contacts) is printed through `for_terminal`: what
others typed must not drive the admin's terminal, even when it was stored before the
plain-text rule removed control characters on the way in.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from infranet.commands import add_command
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.validation import for_terminal as safe
from infranet.validation import json_for_terminal


def _add_event_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--title", required=True)
    parser.add_argument("--start", required=True,
                        help='"5.12.2026 10:00", "2026-12-05T10:00"; a date with --all-day')
    parser.add_argument("--end", help='"5.12.2026 14:00" or just "14:00"; with --all-day the last '
                        "day (default: the start day)")
    parser.add_argument("--all-day", action="store_true", help="a day or several whole days")
    parser.add_argument("--district", default="region",
                        help="powiat, subregion or the region (name, slug or TERYT)")
    parser.add_argument("--category", default="other",
                        help="training, conference, meeting, consultation, fair, other")
    parser.add_argument("--audience", action="append", default=[],
                        help="ngo, residents, youth, seniors, local-government, other; repeatable")
    parser.add_argument("--org", help="organisation (id, name or short name)")
    parser.add_argument("--description")
    parser.add_argument("--location")
    parser.add_argument("--url")
    parser.add_argument("--registration-url")
    parser.add_argument("--rrule", help='e.g. "FREQ=WEEKLY;COUNT=6" or "FREQ=MONTHLY;UNTIL=20270630"')


def _filter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--area", action="append", default=[], help="district; repeatable")
    parser.add_argument("--category", action="append", default=[])
    parser.add_argument("--audience", action="append", default=[])
    parser.add_argument("--org", action="append", default=[], help="organisation id; repeatable")


def register(subparsers: Any) -> None:
    events = subparsers.add_parser("events", help="the shared calendar").add_subparsers(
        dest="events_command", metavar="ACTION", required=True)
    add = add_command(events, "add", cmd_add, "add an event (conflicts are printed as warnings)")
    _add_event_arguments(add)
    add.add_argument("--uid", help="a stable UID (default: generated)")
    conflicts = add_command(events, "conflicts", cmd_conflicts,
                            "check a planned event for conflicts and suggest free dates")
    _add_event_arguments(conflicts)
    listing = add_command(events, "list", cmd_list, "list events of a period")
    listing.add_argument("--from", dest="start", help="first day (default: today)")
    listing.add_argument("--to", dest="end", help="last day (default: 30 days on)")
    _filter_arguments(listing)
    listing.add_argument("--cancelled", action="store_true", help="include cancelled events")
    listing.add_argument("--pending", action="store_true", help="include events awaiting moderation")
    listing.add_argument("--json", action="store_true")
    cancel = add_command(events, "cancel", cmd_cancel, "cancel an event (kept, marked cancelled)")
    cancel.add_argument("event_id", type=int, metavar="ID")
    imp = add_command(events, "import", cmd_import,
                      "import an .ics file (idempotent by UID; with --org, synced as one of its sources)")
    imp.add_argument("file", type=Path, metavar="FILE.ics")
    imp.add_argument("--org", help="the organisation whose calendar this is (its source: --source)")
    imp.add_argument("--source", help="the organisation's source this file is a copy of "
                                      "(default: the file's name); needs --org")
    imp.add_argument("--district", help="district for events without one (default: the region)")
    imp.add_argument("--category", help="category for events without a known one (default: other)")
    exp = add_command(events, "export", cmd_export, "print the calendar (or a filtered part) as .ics")
    _filter_arguments(exp)
    exp.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")


async def _org_id(ctx: AppContext, value: str | None) -> int | None:
    if not value:
        return None
    from infranet.network.orgs import find_organisation

    async with ctx.db.read() as session:
        return (await find_organisation(session, value)).id


def _end_moment(text: str | None, start: datetime, ctx: AppContext) -> datetime:
    from infranet.calendar.dates import localize, parse_moment

    if not text:
        raise ValidationFailed(field="end", detail="give --end (e.g. 14:00) for an event with hours")
    stripped = text.strip()
    if len(stripped) <= 5 and ":" in stripped:
        hour, minute = stripped.split(":")
        if not (hour.isdigit() and minute.isdigit()) or int(hour) > 23 or int(minute) > 59:
            raise ValidationFailed(field="end", detail=f"{text!r} is not a time of day")
        local = start.astimezone(ctx.tz).replace(tzinfo=None)
        return localize(datetime.combine(local.date(), time(int(hour), int(minute))), ctx.tz, "end")
    return parse_moment(text, ctx.tz, "end")


async def _event_input(ctx: AppContext, args: argparse.Namespace) -> Any:
    from infranet.calendar.dates import parse_day, parse_moment
    from infranet.calendar.event_input import EventInput

    start: date | datetime
    end: date | datetime
    if args.all_day:
        start = parse_day(args.start, "start")
        end = parse_day(args.end, "end") if args.end else start
    else:
        start = parse_moment(args.start, ctx.tz, "start")
        end = _end_moment(args.end, start, ctx)
    audiences = [a.strip() for value in args.audience for a in value.split(",") if a.strip()]
    return EventInput(title=args.title, start=start, end=end, all_day=args.all_day,
                      district=args.district, category=args.category, audiences=audiences,
                      organisation_id=await _org_id(ctx, args.org), description=args.description,
                      location=args.location, url=args.url, registration_url=args.registration_url,
                      rrule=args.rrule, uid=getattr(args, "uid", None))


def _span(ctx: AppContext, start: datetime, end: datetime, all_day: bool) -> str:
    from infranet.i18n import format_span

    return format_span(start, end, ctx.tz, "pl", all_day=all_day)


def _print_report(ctx: AppContext, report: Any) -> None:
    for c in report.conflicts:
        contact = ", ".join(x for x in (c.contact_email, c.phone) if x) or "-"
        print(f"  CONFLICT ({c.severity}) #{c.event.id} {safe(c.event.title)} — "
              f"{_span(ctx, c.start, c.end, c.event.all_day)}, {safe(c.event.district.name)}; "
              f"{safe(c.organisation_name or 'no organisation')} ({safe(contact)})")
    for c in report.duplicates:
        print(f"  PROBABLE DUPLICATE #{c.event.id} {safe(c.event.title)} — "
              f"{_span(ctx, c.start, c.end, c.event.all_day)}, {safe(c.event.district.name)}; "
              f"{safe(c.organisation_name or 'no organisation')}")
    for w in report.warnings:
        print(f"  WARNING: {safe(w.message('pl'))}")


async def cmd_add(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.conflicts import find_conflicts
    from infranet.calendar.events import add_event
    from infranet.storage.actors import Actor

    data = await _event_input(ctx, args)
    async with ctx.db.transaction() as session:
        report = await find_conflicts(session, ctx, data)
        event = await add_event(session, ctx, Actor.cli(), data, source="cli")
        print(f"added event #{event.id}: {safe(event.title)} — "
              f"{_span(ctx, event.starts_at, event.ends_at, event.all_day)} (UID {safe(event.uid)})")
        _print_report(ctx, report)
    return 0


async def cmd_conflicts(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.conflicts import find_conflicts
    from infranet.calendar.free_dates import suggest_dates

    data = await _event_input(ctx, args)
    async with ctx.db.read() as session:
        report = await find_conflicts(session, ctx, data)
        if report.clear:
            print("no conflicts, duplicates or holidays")
            return 0
        _print_report(ctx, report)
        suggestions = await suggest_dates(session, ctx, data)
    if suggestions:
        print("free dates:")
        for start, end in suggestions:
            if isinstance(start, datetime) and isinstance(end, datetime):
                print("  " + _span(ctx, start, end, False))
            else:
                print(f"  {start.isoformat()} – {end.isoformat()}")
    return 1 if report.conflicts or report.duplicates else 0


async def cmd_list(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.dates import parse_day
    from infranet.calendar.event_queries import list_events
    from infranet.calendar.wallclock import all_day_span

    today = ctx.now().astimezone(ctx.tz).date()
    first = parse_day(args.start, "from") if args.start else today
    last = parse_day(args.end, "to") if args.end else first + timedelta(days=30)
    start, end = all_day_span(first, last, ctx.tz)
    async with ctx.db.read() as session:
        occs = await list_events(session, ctx, start=start, end=end, area=args.area or None,
                                 category=args.category or None, audience=args.audience or None,
                                 organisation_id=[int(o) for o in args.org] or None,
                                 include_cancelled=args.cancelled, include_pending=args.pending)
        rows = [{"id": o.event.id, "title": o.event.title, "when": _span(ctx, o.start, o.end, o.all_day),
                 "start": o.start.astimezone(ctx.tz).isoformat(), "end": o.end.astimezone(ctx.tz).isoformat(),
                 "all_day": o.all_day, "district": o.event.district.name, "category": o.event.category,
                 "audiences": o.event.audiences, "status": o.event.status,
                 "moderation": o.event.moderation,
                 "organisation": o.event.organisation.name if o.event.organisation else None}
                for o in occs]
    if args.json:
        print(json_for_terminal(rows))
        return 0
    for row in rows:
        flags = "" if row["status"] == "scheduled" else f" [{row['status']}]"
        flags += "" if row["moderation"] == "published" else f" [{row['moderation']}]"
        print(f"#{row['id']:<5} {row['when']}  {safe(row['title'])}{flags}  ({safe(row['district'])}"
              f"{'; ' + safe(row['organisation']) if row['organisation'] else ''})")
    if not rows:
        print(f"no events from {first.isoformat()} to {last.isoformat()}")
    return 0


async def cmd_cancel(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.events import cancel_event
    from infranet.storage.actors import Actor

    async with ctx.db.transaction() as session:
        event = await cancel_event(session, ctx, Actor.cli(), args.event_id)
    print(f"cancelled event #{event.id}: {safe(event.title)}")
    return 0


async def cmd_import(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.ics_file import import_file
    from infranet.storage.actors import Actor

    if args.source and not args.org:
        print("infranet: --source needs --org (whose calendar it is)", file=sys.stderr)
        return 2
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"infranet: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    org_id = await _org_id(ctx, args.org)
    try:
        done = await import_file(ctx, Actor.cli(), args.file, data, organisation_id=org_id,
                                 source=args.source, district=args.district, category=args.category)
    except ValidationFailed as exc:
        print(f"infranet: {args.file}: {safe(exc)}; nothing was imported", file=sys.stderr)
        return 1
    report = done.report
    print(f"{args.file}: {report.summary()}")
    if done.source_id is not None:  # the next copy of this calendar: the same --source
        print(f"  as the organisation's source #{done.source_id} {safe(args.source or args.file.name)!r}")
    for line in report.details():
        print(f"  {safe(line)}")
    return 0


async def cmd_export(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.feed_filter import feed_name, parse_filter
    from infranet.calendar.feed_load import load_rows
    from infranet.calendar.ics_writer import render_calendar

    flt = parse_filter(ctx, {"area": args.area, "category": args.category,
                             "audience": args.audience, "org": args.org})
    now = ctx.now()
    async with ctx.db.read() as session:
        rows = await load_rows(session, ctx, flt, now)
    body = render_calendar(ctx, rows, feed_name(ctx, flt), now, exact=True)  # to be imported back
    if args.output:
        args.output.write_bytes(body)
        print(f"wrote {len(rows)} events to {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return 0
