"""Importing an .ics file: idempotent by UID, all or nothing, errors with their line.

The file is first checked line by line (content-line syntax, BEGIN/END nesting) so a
broken file is reported with the line at fault; then every VEVENT is turned into an
EventInput and validated, and only when all are valid is anything written, in the
caller's single transaction. An event whose UID is already stored is updated only if
something differs, so importing the same file twice changes nothing.

A changed date of a series (a second VEVENT with the series' UID and a RECURRENCE-ID, as
our own feeds publish it) becomes an override of that series, and the dates a series
lists in EXDATE are cancelled, so that importing an export loses nothing.

Text is taken as the plain text it is (`<b>` in a SUMMARY is four characters, not
markup) and cleaned by the same rule as every other input (`infranet.validation`):
invisible control characters never get from someone else's calendar into ours.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import recurrence, wallclock
from infranet.calendar.dates import localize
from infranet.calendar.event_input import AUDIENCES, CATEGORIES, EventInput, category_label, validate_event
from infranet.calendar.events import add_event, cancel_event, cancel_occurrence, move_occurrence, update_event
from infranet.context import AppContext
from infranet.errors import InfranetError, ValidationFailed
from infranet.region import fold
from infranet.storage.actors import Actor
from infranet.storage.models import Event, EventStatus, Organisation
from infranet.validation import plain_text

_CONTENT_LINE = re.compile(r"^[A-Za-z0-9-]+(;[^:]*)?:")


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    ids: list[int] = field(default_factory=list)


def _broken(line: int, detail: str) -> ValidationFailed:
    return ValidationFailed(field=f"line {line}", detail=detail)


def check_structure(text: str) -> list[int]:
    """Raise ValidationFailed naming the first bad line; return the line of each VEVENT."""
    physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    logical: list[tuple[int, str]] = []
    for number, line in enumerate(physical, start=1):
        if line[:1] in (" ", "\t") and logical:
            logical[-1] = (logical[-1][0], logical[-1][1] + line[1:])
        elif line.strip():
            logical.append((number, line))
    if not logical or logical[0][1].strip().upper() != "BEGIN:VCALENDAR":
        raise _broken(logical[0][0] if logical else 1, "an iCalendar file must start with BEGIN:VCALENDAR")
    stack: list[tuple[str, int]] = []
    vevents: list[int] = []
    for number, line in logical:
        if not _CONTENT_LINE.match(line):
            raise _broken(number, f"{line[:60]!r} is not an iCalendar line (NAME:value)")
        name, _, value = line.partition(":")
        key = name.split(";")[0].upper()
        if key == "BEGIN":
            stack.append((value.strip().upper(), number))
            if value.strip().upper() == "VEVENT":
                vevents.append(number)
        elif key == "END":
            if not stack or stack[-1][0] != value.strip().upper():
                expected = f"END:{stack[-1][0]}" if stack else "nothing"
                raise _broken(number, f"END:{value.strip()} does not close anything open here "
                              f"(expected {expected})")
            stack.pop()
            if not stack and number != logical[-1][0]:
                raise _broken(number + 1, "text after END:VCALENDAR")
    if stack:
        raise _broken(stack[-1][1], f"BEGIN:{stack[-1][0]} is never closed (the file is cut short?)")
    return vevents


def _text(component: Any, name: str) -> str | None:
    value = component.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0]
    return str(value)


def _unescape(value: str | None) -> str | None:
    """RFC 5545 TEXT unescaping, for our X- properties (icalendar leaves unknown ones raw)."""
    if value is None:
        return None
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _category(component: Any, default: str) -> str:
    own = _text(component, "X-INFRANET-CATEGORY")
    if own in CATEGORIES:
        return own
    raw = component.get("CATEGORIES")
    values: list[str] = []
    for item in raw if isinstance(raw, list) else [raw] if raw is not None else []:
        values += [str(c) for c in getattr(item, "cats", [item])]
    for value in values:
        key = fold(value)
        for code in CATEGORIES:
            if key in (code, fold(category_label(code, "pl")), fold(category_label(code, "en"))):
                return code
    return default


def _to_input(ctx: AppContext, component: Any, line: int, defaults: dict[str, Any],
              orgs_by_name: dict[str, int]) -> tuple[EventInput, bool]:
    if component.get("DTSTART") is None:
        raise _broken(line, "VEVENT without DTSTART")
    start = component.decoded("DTSTART")
    if component.get("DTEND") is not None:
        end = component.decoded("DTEND")
    elif component.get("DURATION") is not None:
        end = start + component.decoded("DURATION")
    else:
        end = start + (timedelta(days=1) if not isinstance(start, datetime) else timedelta(hours=1))
    all_day = not isinstance(start, datetime)
    if all_day:
        if isinstance(end, datetime):
            end = end.date()
        last: date | datetime = end - timedelta(days=1) if end != start else start
        end = last
    elif not isinstance(end, datetime):
        raise _broken(line, "DTSTART is a date-time but DTEND a date")
    # Cleaned as `add_event` stores it, so that a second import finds the stored event.
    uid = plain_text(_text(component, "UID") or "")
    if not uid:
        seed = f"{_text(component, 'SUMMARY')}|{start}".encode()
        uid = "import-" + hashlib.sha256(seed).hexdigest()[:32]
    rrule = component.get("RRULE")
    org_id = defaults.get("organisation_id")
    organizer = component.get("ORGANIZER")
    if organizer is not None and organizer.params.get("CN"):
        org_id = orgs_by_name.get(fold(str(organizer.params["CN"])), org_id)
    ours = component.get("X-INFRANET-DISTRICT") is not None  # our own export: exact fields
    audiences_raw = _text(component, "X-INFRANET-AUDIENCES") or ""
    audiences = [a for a in audiences_raw.split(",") if a in AUDIENCES]
    district = _text(component, "X-INFRANET-DISTRICT") or defaults.get("district") or "region"
    data = EventInput(
        title=_text(component, "SUMMARY") or "", start=start, end=end, all_day=all_day,
        district=district, category=_category(component, defaults.get("category") or "other"),
        audiences=audiences, organisation_id=org_id,
        description=(_unescape(_text(component, "X-INFRANET-DESCRIPTION")) if ours
                     else _text(component, "DESCRIPTION")),
        location=(_unescape(_text(component, "X-INFRANET-LOCATION")) if ours
                  else _text(component, "LOCATION")),
        url=_text(component, "URL"),
        rrule=rrule.to_ical().decode() if rrule is not None else None, uid=uid)
    cancelled = (_text(component, "STATUS") or "").upper() == "CANCELLED"
    return data, cancelled


def _same(ctx: AppContext, row: Event, data: EventInput) -> bool:
    norm = validate_event(ctx, data)
    return (row.title == norm.title and row.description == norm.description
            and row.location == norm.location and row.url == norm.url
            and row.starts_at == norm.starts_at and row.ends_at == norm.ends_at
            and row.all_day == norm.all_day and recurrence.rule_part(row.rrule) == norm.rrule
            and row.district.slug == norm.district.slug and row.category == norm.category
            and list(row.audiences) == list(norm.audiences)
            and (norm.organisation_id is None or row.organisation_id == norm.organisation_id))


async def import_ics(session: AsyncSession, ctx: AppContext, actor: Actor, text: str, *,
                     organisation_id: int | None = None, district: str | None = None,
                     category: str | None = None) -> ImportResult:
    """Import every VEVENT of `text`; raise ValidationFailed (with the line) before writing
    anything if the file or any event in it is wrong."""
    lines = check_structure(text)
    try:
        calendar = Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise _broken(1, f"cannot read the file: {exc}") from None
    components = list(calendar.walk("VEVENT"))
    rows = (await session.execute(select(Organisation.name_folded, Organisation.id))).all()
    orgs_by_name = {name: id_ for name, id_ in rows}
    defaults = {"organisation_id": organisation_id, "district": district, "category": category}
    prepared: list[tuple[int, EventInput, bool]] = []
    overrides: list[tuple[int, EventInput, bool, datetime, str]] = []
    exdates: dict[str, list[datetime]] = {}
    seen: dict[str, int] = {}
    seen_overrides: dict[tuple[str, datetime], int] = {}
    for index, component in enumerate(components):
        line = lines[index] if index < len(lines) else 1
        try:
            data, cancelled = _to_input(ctx, component, line, defaults, orgs_by_name)
            validate_event(ctx, data)
        except ValidationFailed as exc:
            if str(exc.params.get("field", "")).startswith("line "):
                raise
            raise _broken(line, f"event {_text(component, 'SUMMARY')!r}: {exc.localized('en')}") from None
        except (ValueError, TypeError) as exc:
            raise _broken(line, f"event {_text(component, 'SUMMARY')!r}: {exc}") from None
        assert data.uid is not None
        if component.get("RECURRENCE-ID") is not None:
            moment = _moments(ctx, component, "RECURRENCE-ID")[0]
            if (data.uid, moment) in seen_overrides:
                raise _broken(line, f"UID {data.uid!r} with this RECURRENCE-ID appears twice "
                              f"(first at line {seen_overrides[(data.uid, moment)]})")
            seen_overrides[(data.uid, moment)] = line
            overrides.append((line, replace(data, rrule=None, uid=None), cancelled, moment, data.uid))
            continue
        if component.get("EXDATE") is not None:
            exdates[data.uid] = _moments(ctx, component, "EXDATE")
        if data.uid in seen:
            raise _broken(line, f"UID {data.uid!r} appears twice (first at line {seen[data.uid]})")
        seen[data.uid] = line
        prepared.append((line, data, cancelled))

    result = ImportResult()
    for line, data, cancelled in prepared:
        try:
            row = await session.scalar(select(Event).where(Event.uid == data.uid))
            if row is None:
                row = await add_event(session, ctx, actor, data, source="import")
                result.added += 1
                if cancelled:
                    await cancel_event(session, ctx, actor, row.id)
                    result.cancelled += 1
            elif row.status == EventStatus.CANCELLED:
                result.unchanged += 1
            elif cancelled:
                await cancel_event(session, ctx, actor, row.id)
                result.cancelled += 1
            elif _same(ctx, row, data):
                result.unchanged += 1
            else:
                await update_event(session, ctx, actor, row.id, data)
                result.updated += 1
            for moment in exdates.get(data.uid or "", []):
                if _in_series(ctx, row, moment):
                    await cancel_occurrence(session, ctx, actor, row.id, moment)
        except InfranetError as exc:
            raise _broken(line, f"event {data.title!r}: {exc.localized('en')}") from None
        result.ids.append(row.id)
    masters = {data.uid for _line, data, _cancelled in prepared}
    for line, data, cancelled, moment, uid in overrides:
        try:
            await _import_override(session, ctx, actor, result, data, cancelled, moment, uid, masters)
        except InfranetError as exc:
            raise _broken(line, f"event {data.title!r}: {exc.localized('en')}") from None
    return result


def _moments(ctx: AppContext, component: Any, name: str) -> list[datetime]:
    """The UTC starts a RECURRENCE-ID or EXDATE names (a date: its local midnight)."""
    raw = component.get(name)
    values: list[Any] = []
    for item in raw if isinstance(raw, list) else [raw]:
        values += [d.dt for d in item.dts] if hasattr(item, "dts") else [item.dt]
    moments = []
    for value in values:
        if not isinstance(value, datetime):
            moments.append(wallclock.local_midnight(value, ctx.tz))
        elif value.tzinfo is None:
            moments.append(localize(value, ctx.tz).astimezone(UTC))
        else:
            moments.append(value.astimezone(UTC))
    return moments


def _in_series(ctx: AppContext, row: Event, moment: datetime) -> bool:
    return row.status != EventStatus.CANCELLED and bool(row.rrule) and any(
        span.start == moment for span in recurrence.expand(row.rrule, row.starts_at, row.ends_at,
                                                           row.all_day, ctx.tz))


async def _import_override(session: AsyncSession, ctx: AppContext, actor: Actor, result: ImportResult,
                           data: EventInput, cancelled: bool, moment: datetime, uid: str,
                           masters: set[str | None]) -> None:
    """One changed date of a series: a new override, or the stored one brought up to date."""
    series = await session.scalar(select(Event).where(Event.uid == uid))
    if series is None or uid not in masters:
        raise ValidationFailed(field="RECURRENCE-ID", detail=f"no series with UID {uid!r} in the file")
    stored = await session.scalar(select(Event).where(Event.series_id == series.id,
                                                      Event.recurrence_id == moment))
    if stored is None:
        if not _in_series(ctx, series, moment):
            result.unchanged += 1
            return
        if cancelled:
            await cancel_occurrence(session, ctx, actor, series.id, moment)
            result.cancelled += 1
            return
        row = await move_occurrence(session, ctx, actor, series.id, moment, data)
        result.added += 1
    elif stored.status == EventStatus.CANCELLED:
        result.unchanged += 1
        return
    elif cancelled:
        row = await cancel_event(session, ctx, actor, stored.id)
        result.cancelled += 1
    elif _same(ctx, stored, data):
        row = stored
        result.unchanged += 1
    else:
        row = await update_event(session, ctx, actor, stored.id, data)
        result.updated += 1
    result.ids.append(row.id)
