"""One VEVENT of an imported file turned into an EventInput, or a reason to skip it.

Times as real calendars write them:
- DTEND, or DURATION instead, or neither: RFC 5545 §3.6.1 makes a DATE start last one
  day and a DATE-TIME start an instant, stored as one minute (an event must end after it
  starts; a minute is the least that still shows and still clashes);
- a TZID that names an IANA zone, a Windows/Outlook zone ("Central European Standard
  Time", mapped by icalendar) or a VTIMEZONE of the file; any other TZID is an error
  naming it (it used to be read silently as the region's time);
- floating times (no TZID, no Z) in the calendar's X-WR-TIMEZONE (Google), else in the
  region's zone.

What cannot be imported is `Skip`ped with a reason in English (the report's language):
the file is still imported, without that event.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from infranet.calendar import wallclock
from infranet.calendar.dates import localize
from infranet.calendar.event_input import AUDIENCES, CATEGORIES, EventInput, category_label
from infranet.calendar.ics_text import description, text_of, unescape
from infranet.errors import ValidationFailed
from infranet.region import fold
from infranet.validation import plain_text

INSTANT = timedelta(minutes=1)


class Skip(Exception):
    """This event is left out of the import, for `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Incoming:
    """A VEVENT of the file, ready to be compared with what is stored."""

    line: int
    uid: str  # as in the file (cleaned as stored)
    data: EventInput
    cancelled: bool
    recurrence_id: datetime | None = None  # an override: the occurrence's original start, UTC
    exdates: list[datetime] = field(default_factory=list)
    sequence: int = 0
    modified: datetime | None = None
    district_found: bool = False


def zone_named(name: str) -> tzinfo | None:
    """An IANA or Windows zone name, or None."""
    clean = name.strip().strip('"')
    clean = WINDOWS_TO_OLSON.get(clean, clean)
    try:
        return zoneinfo.ZoneInfo(clean)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def file_zones(calendar: Any) -> dict[str, tzinfo]:
    """The VTIMEZONEs the file defines, by TZID."""
    zones: dict[str, tzinfo] = {}
    for vtz in calendar.walk("VTIMEZONE"):
        tzid = str(vtz.get("TZID", ""))
        try:
            zones[tzid] = zone_named(tzid) or vtz.to_tz()
        except Exception:  # noqa: S112 - a VTIMEZONE icalendar cannot build: the TZID stays unknown
            continue
    return zones


@dataclass(frozen=True)
class Zones:
    region: tzinfo
    floating: tzinfo | None  # X-WR-TIMEZONE, when the file names a known one
    floating_name: str | None
    defined: dict[str, tzinfo]


def _value(zones: Zones, prop: Any) -> date | datetime:
    value = prop.dt
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is not None:
        return value
    tzid = prop.params.get("TZID")
    if tzid:
        zone = zones.defined.get(str(tzid)) or zone_named(str(tzid))
        if zone is None:
            raise Skip(f"unknown time zone TZID={tzid!r}")
    elif zones.floating_name and zones.floating is None:
        raise Skip(f"unknown time zone X-WR-TIMEZONE:{zones.floating_name}")
    else:
        zone = zones.floating or zones.region
    try:
        return localize(value, zone)
    except ValidationFailed as exc:
        raise Skip(exc.localized("en")) from None


def moments(zones: Zones, component: Any, name: str) -> list[datetime]:
    """The UTC starts a RECURRENCE-ID or EXDATE names (a date: its local midnight)."""
    raw = component.get(name)
    props: list[Any] = []
    for item in raw if isinstance(raw, list) else [raw]:
        if hasattr(item, "dts"):
            props += [_Prop(d.dt, item.params) for d in item.dts]
        else:
            props.append(item)
    out = []
    for prop in props:
        value = _value(zones, prop)
        out.append(value.astimezone(UTC) if isinstance(value, datetime)
                   else wallclock.local_midnight(value, zones.region))
    return out


@dataclass
class _Prop:
    dt: Any
    params: Any


def _times(zones: Zones, component: Any) -> tuple[date | datetime, date | datetime, bool]:
    if component.get("DTSTART") is None:
        raise Skip("no DTSTART")
    start = _value(zones, component["DTSTART"])
    all_day = not isinstance(start, datetime)
    if component.get("DTEND") is not None:
        end = _value(zones, component["DTEND"])
    elif component.get("DURATION") is not None:
        end = start + component.decoded("DURATION")
    else:
        end = start + (timedelta(days=1) if all_day else INSTANT)
    if all_day:
        if isinstance(end, datetime):
            raise Skip("DTSTART is a date but DTEND a date-time")
        end = end - timedelta(days=1) if end != start else start  # DTEND is exclusive
    elif not isinstance(end, datetime):
        raise Skip("DTSTART is a date-time but DTEND a date")
    elif end == start:
        end = start + INSTANT
    return start, end, all_day


def _category(component: Any, default: str) -> str:
    own = text_of(component, "X-INFRANET-CATEGORY")
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


def _modified(component: Any) -> datetime | None:
    prop = component.get("LAST-MODIFIED")
    value = getattr(prop, "dt", None)
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _sequence(component: Any) -> int:
    try:
        return max(0, min(int(str(component.get("SEQUENCE", 0))), 2**31 - 1))
    except ValueError:
        return 0


def incoming(zones: Zones, component: Any, line: int, defaults: dict[str, Any],
             district_of: Any, orgs_by_name: dict[str, int]) -> Incoming:
    """The event as it will be compared and stored; raise Skip with the reason."""
    start, end, all_day = _times(zones, component)
    title = text_of(component, "SUMMARY") or ""
    if not plain_text(title).strip():
        raise Skip("no SUMMARY: nothing to show")
    uid = plain_text(text_of(component, "UID") or "")
    if not uid:
        seed = f"{title}|{start}".encode()
        uid = "import-" + hashlib.sha256(seed).hexdigest()[:32]
    if len(uid) > 255:
        raise Skip("UID longer than 255 characters")
    rrule = component.get("RRULE")
    rule = rrule.to_ical().decode() if rrule is not None else None
    org_id = defaults.get("organisation_id")
    organizer = component.get("ORGANIZER")
    if not defaults.get("source_only") and organizer is not None and organizer.params.get("CN"):
        org_id = orgs_by_name.get(fold(str(organizer.params["CN"])), org_id)
    # Our own export: exact text in X- properties (a hand-written X-INFRANET-DISTRICT alone
    # only names the district).
    ours = all(component.get(name) is not None for name in ("X-INFRANET-DISTRICT", "X-INFRANET-CATEGORY"))
    audiences_raw = text_of(component, "X-INFRANET-AUDIENCES") or ""
    location = unescape(text_of(component, "X-INFRANET-LOCATION")) if ours else text_of(component, "LOCATION")
    district, found = district_of(text_of(component, "X-INFRANET-DISTRICT"), location)
    data = EventInput(
        title=title, start=start, end=end, all_day=all_day,
        district=district or defaults.get("district") or "region",
        category=_category(component, defaults.get("category") or "other"),
        audiences=[a for a in audiences_raw.split(",") if a in AUDIENCES], organisation_id=org_id,
        description=(unescape(text_of(component, "X-INFRANET-DESCRIPTION")) if ours
                     else description(component)),
        location=location, url=text_of(component, "URL"), rrule=rule, uid=uid)
    cancelled = (text_of(component, "STATUS") or "").upper() == "CANCELLED"
    item = Incoming(line, uid, data, cancelled, sequence=_sequence(component),
                    modified=_modified(component), district_found=found)
    if component.get("RECURRENCE-ID") is not None:
        item.recurrence_id = moments(zones, component, "RECURRENCE-ID")[0]
    if component.get("EXDATE") is not None:
        item.exdates = moments(zones, component, "EXDATE")
    if component.get("RDATE") is not None:
        item.data.rrule = _with_rdates(zones, rule, component)
    return item


def _with_rdates(zones: Zones, rule: str | None, component: Any) -> str | None:
    """RDATE passed through to the recurrence module with the rule, as `RDATE:` lines of UTC
    starts (dates for a DATE value), so that its TZID is the file's, not the region's; the
    recurrence module checks them (an event it refuses is skipped with its reason)."""
    raw = component.get("RDATE")
    values: list[str] = []
    for item in raw if isinstance(raw, list) else [raw]:
        for period in getattr(item, "dts", [item]):
            value = period.dt
            if isinstance(value, tuple):
                raise Skip("RDATE periods (start/end) are not supported")
            if isinstance(value, datetime):
                moment = _value(zones, _Prop(value, item.params))
                assert isinstance(moment, datetime)
                values.append(moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
            else:
                values.append(f"{value:%Y%m%d}")
    if not values:
        return rule
    return f"{rule or 'FREQ=DAILY;COUNT=1'}\nRDATE:{','.join(values)}"
