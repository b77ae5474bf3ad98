"""ICS feeds (RFC 5545) that Google Calendar, Outlook and Thunderbird accept, built fast.

Why hand-written serialisation: building and serialising a VEVENT with icalendar
costs about 0.2 ms, so a 10,000-event feed would take 2 s to build cold. Here each
VEVENT is rendered once per (event id, revision, updated_at) by a small writer that
does RFC 5545 escaping and 75-octet folding itself (tests parse the result back with
icalendar and vobject), kept as bytes, and a feed is assembled by concatenation.
Only the VTIMEZONE comes from icalendar, once per process.

Freshness: a feed is rebuilt when the calendar's version changes — (number of events,
max(events.updated_at), max(organisations.updated_at)), two indexed aggregates that are
the same on every instance. The version is read at most once per `check_interval`
seconds per process (and at once on a new day, when the feeds' windows move); a change
committed by this process invalidates at once.

Memory: everything the cache keeps is counted in bytes against `[calendar] feed_cache_mb`
(see `FeedCache`); filters are canonical (`parse_filter`), so equal feeds share one entry.

Validators: the identity and gzip bodies have different ETags; Last-Modified is a
calendar-wide bound that also covers events leaving a feed (see `FeedCache._last_modified`).
The writer drops control characters and bidi overrides whatever a stored row holds (`plain`).
"""

from __future__ import annotations

import asyncio
import bisect
import gzip
import hashlib
import re
import time
import zlib
from array import array
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache, partial
from operator import attrgetter
from typing import Any, TypeVar

from icalendar import Timezone
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from infranet.calendar import recurrence
from infranet.calendar.district_ids import area_district_ids, district_id_map
from infranet.calendar.event_input import AUDIENCES, CATEGORIES, category_label, resolve_district
from infranet.calendar.event_queries import events_version
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import DEFAULT_LANGUAGE, t
from infranet.region import District as RegionDistrict
from infranet.storage.models import Event, EventStatus, Moderation, Organisation
from infranet.storage.types import parse_timestamp, raw_timestamp
from infranet.web.params import MAX_PARAM_CHARS, check_length, parse_ids

T = TypeVar("T")
PRODID = "-//infranet//shared calendar//PL"
CRLF = b"\r\n"


# --- filters -------------------------------------------------------------------------

# More values than this in one parameter is not a filter anyone picks by hand (the region
# has a few dozen districts); refused before any of them is looked up.
MAX_FILTER_VALUES = 100



@lru_cache(maxsize=64)
def _words(key: str) -> str:
    """A feed's fixed words (cached: they are written into every event of a feed)."""
    return t(DEFAULT_LANGUAGE, key)


@dataclass(frozen=True)
class FeedFilter:
    """What a feed shows. Built by `parse_filter`, which makes equal feeds equal filters
    (sorted, without repeats, areas reduced to the fewest that cover the same districts),
    so that they share one cache entry."""

    areas: tuple[str, ...] = ()  # district slugs
    categories: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    organisations: tuple[int, ...] = ()

    def query_string(self) -> str:
        from urllib.parse import urlencode

        pairs: list[tuple[str, str]] = []
        pairs += [("area", a) for a in self.areas]
        pairs += [("category", c) for c in self.categories]
        pairs += [("audience", a) for a in self.audiences]
        pairs += [("org", str(o)) for o in self.organisations]
        return urlencode(pairs)


def filter_values(params: Mapping[str, Sequence[str]] | Any, name: str) -> list[str]:
    """A parameter's values, repeated or comma-separated, each bounded in length and count."""
    raw = params.getlist(name) if hasattr(params, "getlist") else params.get(name, [])
    if isinstance(raw, str):
        raw = [raw]
    limit = MAX_FILTER_VALUES
    if len(raw) > limit:
        raise ValidationFailed("calendar.error.too_many_values", field=name, count=len(raw), limit=limit)
    for value in raw:
        check_length(value, name, limit * (MAX_PARAM_CHARS + 1))
    parts = [part.strip() for value in raw for part in value.split(",") if part.strip()]
    if len(parts) > limit:
        raise ValidationFailed("calendar.error.too_many_values", field=name, count=len(parts), limit=limit)
    for part in parts:
        check_length(part, name)
    return parts


def canonical_areas(districts: Iterable[RegionDistrict]) -> tuple[str, ...]:
    """The fewest areas whose feed is the same as that of `districts`, as sorted slugs.

    An area's feed holds the events of the area, of its parents and of everything inside
    it. So an area inside another listed area adds nothing (`area=<powiat>&area=<its
    subregion>` is the subregion's feed; anything beside the region is the region's), and
    all the children of a district together are that district."""
    chosen = {d.slug: d for d in districts}
    changed = True
    while changed:
        changed = False
        for slug, district in list(chosen.items()):
            if any(parent.slug in chosen for parent in district.ancestors):
                del chosen[slug]
                changed = True
        for district in list(chosen.values()):
            parent = district.parent
            if (parent is not None and parent.slug not in chosen
                    and all(child.slug in chosen for child in parent.children)):
                for child in parent.children:
                    del chosen[child.slug]
                chosen[parent.slug] = parent
                changed = True
                break
    return tuple(sorted(chosen))


def parse_filter(ctx: AppContext, params: Mapping[str, Sequence[str]] | Any) -> FeedFilter:
    """From query parameters (repeated or comma-separated); raises ValidationFailed."""
    areas = canonical_areas(resolve_district(ctx, a) for a in filter_values(params, "area"))
    categories = tuple(dict.fromkeys(filter_values(params, "category")))
    bad = [c for c in categories if c not in CATEGORIES]
    if bad:
        raise ValidationFailed("error.choose_from", field="category", values=", ".join(bad),
                               choices=", ".join(CATEGORIES))
    audiences = tuple(dict.fromkeys(filter_values(params, "audience")))
    bad = [a for a in audiences if a not in AUDIENCES]
    if bad:
        raise ValidationFailed("error.choose_from", field="audience", values=", ".join(bad),
                               choices=", ".join(AUDIENCES))
    orgs = parse_ids(filter_values(params, "org"), "org")
    return FeedFilter(areas=areas, categories=tuple(sorted(categories)),
                      audiences=tuple(sorted(audiences)), organisations=orgs)


# --- RFC 5545 writing --------------------------------------------------------------------


# C0 and C1 control characters (a newline excepted: TEXT escapes it as \\n), DEL, and the
# bidirectional embeddings, overrides and isolates. RFC 5545 forbids control characters in
# content lines, and one of them in a title made a strict parser reject the whole feed; input
# validation removes them, and the writer drops them again so that no stored row can break a feed.
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(value: str) -> str:
    """`value` without the characters of `_UNSAFE` (a tab becomes a space)."""
    return _UNSAFE.sub("", value.replace("\t", " ")) if _UNSAFE.search(value) else value


def escape_text(value: str) -> str:
    """TEXT escaping (RFC 5545 3.3.11); a CR of CRLF is dropped, a lone newline kept as \\n,
    other control characters dropped (`plain`).

    Chained `str.replace` rather than `str.translate`: translate looks every character up
    in a Python dict, which made escaping a third of a cold feed's build time. The
    backslash goes first, so the backslashes added after it are not doubled."""
    return (plain(value.replace("\r", "")).replace("\\", "\\\\").replace(";", "\\;")
            .replace(",", "\\,").replace("\n", "\\n"))


def _param(value: str) -> str:
    """A parameter value: quoted when needed; DQUOTE and control characters cannot appear."""
    cleaned = "".join(ch for ch in plain(value) if ch >= " " and ch != '"')
    return f'"{cleaned}"' if any(ch in cleaned for ch in ',;:') else cleaned


def fold_line(line: str) -> bytes:
    """One content line, folded at 75 octets without splitting a UTF-8 character."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return data + CRLF
    out = bytearray()
    limit = 75
    while data:
        if len(data) <= limit:
            out += data + CRLF
            break
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # continuation byte: back up
            cut -= 1
        out += data[:cut] + CRLF + b" "
        data = data[cut:]
        limit = 74
    return bytes(out)


@dataclass(slots=True)
class FeedRow:
    """What one VEVENT needs (a plain row, so serialisation can run in a thread)."""

    id: int
    uid: str
    title: str
    description: str | None
    location: str | None
    url: str | None
    registration_url: str | None
    starts_at: datetime
    ends_at: datetime
    all_day: bool
    rrule: str | None
    category: str
    audiences: tuple[str, ...]
    status: str
    revision: int
    created_at: datetime
    updated_at: datetime
    district_name: str
    district_slug: str
    org_name: str | None
    org_email: str | None
    org_phone: str | None
    org_website: str | None
    # An override (one occurrence of a series, moved): the series' UID and the occurrence's
    # original start, published as RECURRENCE-ID.
    series_uid: str | None = None
    recurrence_id: datetime | None = None


def _stamp(value: datetime) -> str:
    """20261205T090000Z, without strftime (this runs for every event of a cold feed)."""
    v = value.astimezone(UTC)
    return f"{v.year:04d}{v.month:02d}{v.day:02d}T{v.hour:02d}{v.minute:02d}{v.second:02d}Z"


def _local(value: datetime, tz: tzinfo) -> str:
    v = value.astimezone(tz)
    return f"{v.year:04d}{v.month:02d}{v.day:02d}T{v.hour:02d}{v.minute:02d}{v.second:02d}"


_LABELS: dict[str, str] = {}


def render_vevent(row: FeedRow, tz: tzinfo, tzid: str, fallback_organizer: str) -> bytes:
    """One VEVENT as bytes. Short fixed lines are written directly; only lines whose
    length depends on user text go through escaping and folding."""
    stamp = _stamp(row.updated_at)
    head = [f"BEGIN:VEVENT\r\nDTSTAMP:{stamp}\r\nCREATED:{_stamp(row.created_at)}\r\n"
            f"LAST-MODIFIED:{stamp}\r\nSEQUENCE:{row.revision}\r\n"]
    if row.all_day:
        days = recurrence.local_days(row.starts_at, row.ends_at, tz)
        end = days[-1] + timedelta(days=1)
        head.append(f"DTSTART;VALUE=DATE:{days[0].year:04d}{days[0].month:02d}{days[0].day:02d}\r\n"
                    f"DTEND;VALUE=DATE:{end.year:04d}{end.month:02d}{end.day:02d}\r\n")
    else:
        head.append(f"DTSTART;TZID={tzid}:{_local(row.starts_at, tz)}\r\n"
                    f"DTEND;TZID={tzid}:{_local(row.ends_at, tz)}\r\n")
    occurrences: list[str] = []
    if row.rrule:
        head.append(f"RRULE:{plain(recurrence.rule_part(row.rrule) or '')}\r\n")
        cancelled = sorted(recurrence.exclusions(row.rrule)[recurrence.CANCELLED])
        if cancelled:  # a long list is folded with the other lines
            occurrences.append(_occurrence_times("EXDATE", cancelled, row.all_day, tz, tzid))
    if row.recurrence_id is not None:
        occurrences.append(_occurrence_times("RECURRENCE-ID", [row.recurrence_id], row.all_day, tz, tzid))
    label = _LABELS.get(row.category)
    if label is None:
        label = _LABELS[row.category] = escape_text(category_label(row.category, DEFAULT_LANGUAGE))
    head.append(f"CATEGORIES:{label}\r\n")
    head.append("STATUS:CANCELLED\r\n" if row.status == EventStatus.CANCELLED else "STATUS:CONFIRMED\r\n")
    head.append(f"TRANSP:TRANSPARENT\r\nX-INFRANET-CATEGORY:{plain(row.category)}\r\n")
    if row.audiences:
        head.append("X-INFRANET-AUDIENCES:" + plain(",".join(row.audiences)) + "\r\n")
    lines = [f"UID:{escape_text(row.series_uid or row.uid)}", f"SUMMARY:{escape_text(row.title)}",
             *occurrences]
    description = [row.description or ""]
    if row.registration_url:
        description.append(f"{_words('calendar.feed.registration')}: {row.registration_url}")
    if row.org_name:
        contact = ", ".join(x for x in (row.org_email, row.org_phone) if x)
        description.append(f"{_words('calendar.feed.organiser')}: {row.org_name}"
                           + (f" ({contact})" if contact else ""))
    text = "\n\n".join(part for part in description if part)
    if text:
        lines.append(f"DESCRIPTION:{escape_text(text)}")
    location = ", ".join(x for x in (row.location, row.district_name) if x)
    lines.append(f"LOCATION:{escape_text(location)}")
    if row.url or row.registration_url:
        lines.append(f"URL:{plain(row.url or row.registration_url or '')}")
    if row.org_name:
        address = (f"mailto:{row.org_email}" if row.org_email else row.org_website or fallback_organizer)
        lines.append(f"ORGANIZER;CN={_param(row.org_name)}:{plain(address)}")
    # Our own codes, so that `infranet events import` of an export loses nothing.
    lines.append(f"X-INFRANET-DISTRICT:{plain(row.district_slug)}")
    if row.location:
        lines.append(f"X-INFRANET-LOCATION:{escape_text(row.location)}")
    if row.description:
        lines.append(f"X-INFRANET-DESCRIPTION:{escape_text(row.description)}")
    return ("".join(head).encode() + b"".join(map(fold_line, lines)) + b"END:VEVENT\r\n")


def _occurrence_times(name: str, starts: Sequence[datetime], all_day: bool, tz: tzinfo, tzid: str) -> str:
    """EXDATE or RECURRENCE-ID of a series' occurrences (their original starts), in the
    form of the series' DTSTART (a DATE for all-day series, local time in TZID otherwise)."""
    if all_day:
        days = [value.astimezone(tz).date() for value in starts]
        return f"{name};VALUE=DATE:" + ",".join(f"{d.year:04d}{d.month:02d}{d.day:02d}" for d in days)
    return f"{name};TZID={tzid}:" + ",".join(_local(value, tz) for value in starts)


_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _transitions(tz: tzinfo, year: int) -> list[tuple[datetime, timedelta, timedelta, str, bool]]:
    """(local wall time when it happens, offset before, offset after, name after, is DST after)."""
    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    before = day.astimezone(tz).utcoffset()
    while day < end:
        following = day + timedelta(days=1)
        if following.astimezone(tz).utcoffset() != before:  # find the hour within this day
            moment = day
            while moment < following:
                nxt = moment + timedelta(minutes=15)
                local = nxt.astimezone(tz)
                offset = local.utcoffset()
                if offset != before:
                    assert before is not None and offset is not None
                    found.append(((nxt + before).replace(tzinfo=None), before, offset,
                                  local.tzname() or "", bool(local.dst())))
                    before = offset
                moment = nxt
        day = following
    return found


def _rule_for(day: datetime) -> str:
    weekday = _WEEKDAYS[day.weekday()]
    last = (day + timedelta(days=7)).month != day.month
    nth = "-1" if last else str((day.day - 1) // 7 + 1)
    return f"FREQ=YEARLY;BYMONTH={day.month};BYDAY={nth}{weekday}"


def _offset(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


@lru_cache(maxsize=8)
def vtimezone(tzid: str, first_year: int, last_year: int) -> bytes:
    """A VTIMEZONE in the classic yearly-RRULE form (what Google and Outlook publish and every
    parser understands); zones whose rules changed in the range get icalendar's explicit form."""
    from zoneinfo import ZoneInfo

    from dateutil.rrule import rrulestr

    tz = ZoneInfo(tzid)
    base = _transitions(tz, first_year)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tzid}", f"X-LIC-LOCATION:{tzid}"]
    if not base:
        offset = datetime(first_year, 1, 1, tzinfo=tz).utcoffset() or timedelta()
        name = datetime(first_year, 1, 1, tzinfo=tz).tzname() or tzid
        lines += ["BEGIN:STANDARD", f"DTSTART:{first_year}0101T000000", f"TZOFFSETFROM:{_offset(offset)}",
                  f"TZOFFSETTO:{_offset(offset)}", f"TZNAME:{name}", "END:STANDARD"]
    else:
        expected = [t[0] for year in range(first_year, last_year + 1) for t in _transitions(tz, year)]
        produced = []
        for local, before, after, name, dst in base:
            rule = _rule_for(local)
            produced += list(rrulestr(f"{rule};UNTIL={last_year}1231T235959", dtstart=local))
            kind = "DAYLIGHT" if dst else "STANDARD"
            lines += [f"BEGIN:{kind}", f"DTSTART:{local:%Y%m%dT%H%M%S}", f"RRULE:{rule}",
                      f"TZOFFSETFROM:{_offset(before)}", f"TZOFFSETTO:{_offset(after)}",
                      f"TZNAME:{name}", f"END:{kind}"]
        if sorted(produced) != sorted(expected):
            component = Timezone.from_tzinfo(tz, tzid=tzid, first_date=date(first_year, 1, 1),
                                             last_date=date(last_year, 12, 31))
            return component.to_ical()
    lines.append("END:VTIMEZONE")
    return b"".join(fold_line(line) for line in lines)


def calendar_header(ctx: AppContext, name: str, now: datetime) -> bytes:
    tzid = str(ctx.tz)
    minutes = ctx.settings.calendar.feed_refresh_minutes
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"NAME:{escape_text(name)}", f"X-WR-CALNAME:{escape_text(name)}",
             f"X-WR-TIMEZONE:{tzid}", f"REFRESH-INTERVAL;VALUE=DURATION:PT{minutes}M",
             f"X-PUBLISHED-TTL:PT{minutes}M"]
    head = b"".join(fold_line(line) for line in lines)
    years = ctx.settings.calendar.max_years_ahead
    return head + vtimezone(tzid, now.year - 2, now.year + years + 1)


CALENDAR_FOOTER = b"END:VCALENDAR\r\n"


# --- loading and caching -------------------------------------------------------------------


_SERIES = aliased(Event)
_FULL_COLUMNS = (
    Event.id, Event.uid, Event.title, Event.description, Event.location, Event.url,
    Event.registration_url, raw_timestamp(Event.starts_at), raw_timestamp(Event.ends_at), Event.all_day,
    Event.rrule, Event.category, Event.audiences, Event.status, Event.revision,
    raw_timestamp(Event.created_at), raw_timestamp(Event.updated_at), Event.district_id,
    Organisation.name, Organisation.contact_email,
    Organisation.phone, Organisation.website,
    # An override's series' UID (NULL for every other event: an index look-up per override).
    select(_SERIES.uid).where(_SERIES.id == Event.series_id).correlate(Event).scalar_subquery(),
    raw_timestamp(Event.recurrence_id),
)


async def _conditions(session: AsyncSession, ctx: AppContext, flt: FeedFilter,
                      now: datetime) -> list[Any]:
    settings = ctx.settings.calendar
    conditions: list[Any] = [
        Event.moderation == Moderation.PUBLISHED,
        Event.last_ends_at >= now - timedelta(days=settings.feed_past_days),
        or_(Event.status == EventStatus.SCHEDULED,
            and_(Event.status == EventStatus.CANCELLED,
                 Event.cancelled_at >= now - timedelta(days=settings.cancelled_keep_days))),
    ]
    if flt.areas:
        areas = [ctx.region.by_slug[s] for s in flt.areas if s in ctx.region.by_slug]
        conditions.append(Event.district_id.in_(await area_district_ids(session, ctx, areas)))
    if flt.categories:
        conditions.append(Event.category.in_(flt.categories))
    if flt.organisations:
        conditions.append(Event.organisation_id.in_(flt.organisations))
    return conditions


def _feed_rows(result_rows: Iterable[Any], names: Mapping[int, tuple[str, str]]) -> list[FeedRow]:
    return [FeedRow(id=r[0], uid=r[1], title=r[2], description=r[3], location=r[4], url=r[5],
                    registration_url=r[6], starts_at=parse_timestamp(r[7]), ends_at=parse_timestamp(r[8]),
                    all_day=r[9], rrule=r[10],
                    category=r[11], audiences=tuple(r[12] or ()), status=r[13], revision=r[14],
                    created_at=parse_timestamp(r[15]), updated_at=parse_timestamp(r[16]),
                    district_name=names.get(r[17], ("", ""))[0], district_slug=names.get(r[17], ("", ""))[1],
                    org_name=r[18], org_email=r[19], org_phone=r[20], org_website=r[21],
                    series_uid=r[22], recurrence_id=parse_timestamp(r[23]) if r[23] is not None else None)
            for r in result_rows]


async def load_rows(session: AsyncSession, ctx: AppContext, flt: FeedFilter,
                    now: datetime, *, extra: Sequence[Any] = ()) -> list[FeedRow]:
    """The rows of a feed in feed order (by start, then id). Sorted here rather than in SQL,
    so the database may pick the cheapest access path for the filter."""
    conditions = [*await _conditions(session, ctx, flt, now), *extra]
    query = (select(*_FULL_COLUMNS).outerjoin(Organisation, Organisation.id == Event.organisation_id)
             .where(*conditions))
    rows = _feed_rows((await session.execute(query)).all(), await _district_names(session, ctx))
    rows.sort(key=attrgetter("starts_at", "id"))
    return _audience_filter(rows, flt)


def _audience_filter(rows: list[FeedRow], flt: FeedFilter) -> list[FeedRow]:
    if not flt.audiences:
        return rows
    wanted = set(flt.audiences)
    return [r for r in rows if not r.audiences or wanted & set(r.audiences)]


async def _district_names(session: AsyncSession, ctx: AppContext) -> dict[int, tuple[str, str]]:
    ids = await district_id_map(session, ctx)
    return {i: (ctx.region.by_slug[s].name if s in ctx.region.by_slug else s, s) for s, i in ids.items()}


def feed_name(ctx: AppContext, flt: FeedFilter) -> str:
    name = t(DEFAULT_LANGUAGE, "calendar.feed.name", region=ctx.region.name)
    if flt.areas:
        name += " – " + ", ".join(ctx.region.by_slug[s].name for s in flt.areas
                                  if s in ctx.region.by_slug)
    return name


def render_calendar(ctx: AppContext, rows: Sequence[FeedRow], name: str, now: datetime) -> bytes:
    """A whole calendar from rows, without any cache (export, tests)."""
    tz, tzid = ctx.tz, str(ctx.tz)
    organizer = ctx.settings.http.public_base_url
    return (calendar_header(ctx, name, now)
            + b"".join(render_vevent(r, tz, tzid, organizer) for r in rows) + CALENDAR_FOOTER)


@dataclass
class Feed:
    """One feed as served: its validators and its body, kept whole (`body`) or, when it is too
    large for the cache's budget, assembled from the cached per-event bytes for each response
    (`parts()`, streamed). The gzip and identity bodies are different representations, so
    they carry different ETags (`etag`, `gzip_etag`)."""

    key: FeedFilter
    etag: str
    last_modified: datetime
    count: int
    size: int  # bytes of the identity body
    body: bytes | None
    _parts: Callable[[], list[bytes]] | None = field(default=None, repr=False)
    _gzip: bytes | None = field(default=None, repr=False)

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'

    @property
    def streamed(self) -> bool:
        return self.body is None

    def parts(self) -> list[bytes]:
        """The identity body in pieces, taken at once: call it right after `FeedCache.get`
        (before any await), so that one response never mixes two builds."""
        if self.body is not None:
            return [self.body]
        assert self._parts is not None
        return self._parts()


# Pieces of a streamed body are sent in chunks of about this size, with a pause for the
# event loop between two (gzip costs about 1 ms per chunk).
STREAM_CHUNK = 64 * 1024


def _chunks(parts: list[bytes]) -> Iterable[bytes]:
    batch: list[bytes] = []
    size = 0
    for part in parts:
        batch.append(part)
        size += len(part)
        if size >= STREAM_CHUNK:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)


async def stream_body(parts: list[bytes], *, gzipped: bool) -> AsyncIterator[bytes]:
    """A streamed feed's body, gzip-compressed on the way when asked."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzipped else None  # 31: gzip wrapper
    for chunk in _chunks(parts):
        data = compressor.compress(chunk) if compressor is not None else chunk
        if data:
            yield data
        await asyncio.sleep(0)
    if compressor is not None:
        yield compressor.flush()


# Rows read per step of a full build. Turning them into FeedRows costs the event loop about
# 3 ms per 250, and stretches to 2-3 times that while the worker thread renders (the two
# share the GIL): small steps keep other requests waiting little.
FULL_BUILD_CHUNK = 250

# Bytes a cached VEVENT costs beyond its text (the entry, its sort key, dates and ETag part),
# and what a cached feed costs beyond its bodies and its list of event ids. Measured with
# tracemalloc on a 20,000-event feed and rounded up.
EVENT_OVERHEAD = 400
FEED_OVERHEAD = 2048


@dataclass(slots=True)
class _Rendered:
    """One event's VEVENT as of one revision, shared by every feed that shows it."""

    revision: int
    updated_at: datetime
    key: tuple[datetime, int]  # feed order: start, then id
    tag: str  # its part of a feed's ETag, made once per change
    data: bytes

    @property
    def cost(self) -> int:
        return len(self.data) + EVENT_OVERHEAD


@dataclass
class _FeedState:
    """What one feed holds between builds, so that a change costs only the changed rows."""

    version: object
    day: date
    org_version: object
    event_count: int
    high_water: datetime | None  # max(updated_at) of the rows read at the last build
    order: array[int]  # event ids in feed order (8 bytes each, not a list of int objects)
    header: bytes
    feed: Feed
    cost: int = 0

    def measure(self) -> int:
        self.cost = (FEED_OVERHEAD + len(self.header) + self.order.itemsize * len(self.order)
                     + (len(self.feed.body) if self.feed.body is not None else 0)
                     + (len(self.feed._gzip) if self.feed._gzip is not None else 0))
        return self.cost


# Rows changed by a transaction that committed after our last read may carry an
# updated_at slightly older than what we saw (transactions here last milliseconds;
# instances' clocks are NTP-synchronised); re-reading this margin catches them.
HIGH_WATER_MARGIN = timedelta(seconds=10)
# Even without a visible version change, look for such late commits (and count the
# rows, which notices deletions) this often.
RECHECK_SECONDS = 300


class FeedCache:
    """Per-process cache of rendered VEVENTs and of whole feeds, within a byte budget.

    A feed's first build reads all its rows; later builds (after any change) read only the
    rows with `updated_at` above the last high-water mark (an indexed range), re-render
    those, and re-assemble the feed from cached VEVENT bytes. A new day (the feed window
    moves), fewer events than before (a deletion) or an organisation change rebuild fully.

    Memory: the VEVENT bytes (shared by all feeds), each feed's list of event ids and its
    identity and gzip bodies all count against `max_bytes` (`[calendar] feed_cache_mb`).
    Over the budget, the least recently used feeds are dropped, then the VEVENTs no kept feed
    shows. A feed whose body would take more than half the budget keeps no body: each
    response is assembled from the VEVENT bytes and streamed. The feed being served always
    stays, so the budget should hold the VEVENTs of the largest feed (about 1 kB per event).
    Filters come canonical from `parse_filter`, so equal feeds share one entry.
    """

    def __init__(self, ctx: AppContext, *, check_interval: float = 1.0,
                 max_bytes: int | None = None, cpu: Executor | None = None) -> None:
        self.ctx = ctx
        self.cpu = cpu  # renders and compresses; None: asyncio's default executor
        self.check_interval = check_interval
        self.max_bytes = (ctx.settings.calendar.feed_cache_mb * 2**20 if max_bytes is None
                          else max_bytes)
        self._events: dict[int, _Rendered] = {}
        self._event_bytes = 0
        self._states: OrderedDict[FeedFilter, _FeedState] = OrderedDict()
        self._feed_bytes = 0
        self._version: tuple[Any, ...] | None = None
        self._modified: tuple[tuple[Any, ...], datetime] | None = None
        self._checked_at = float("-inf")
        self._checked_local = -1
        self._count = 0
        self._count_tick = -1
        self._lock = asyncio.Lock()
        self.builds = 0
        self.full_builds = 0
        self.evictions = 0

    @property
    def size(self) -> int:
        """Bytes the cache holds, as counted against `max_bytes`."""
        return self._event_bytes + self._feed_bytes

    @property
    def feeds(self) -> int:
        return len(self._states)

    async def _offload(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.cpu, work)

    async def version(self) -> tuple[Any, ...]:
        local = self.ctx.changes.events.generation
        if (self._version is not None and local == self._checked_local
                and time.monotonic() - self._checked_at < self.check_interval
                and self._version[4] == self.ctx.now().date()):  # a new day moves the windows
            return self._version
        tick = int(time.time() // RECHECK_SECONDS)
        with_count = tick != self._count_tick
        async with self.ctx.db.read() as session:
            max_id, events_max, orgs_max, count = await events_version(session, with_count=with_count)
        if count is not None:
            self._count, self._count_tick = count, tick
        self._version = (self._count, max_id, events_max, orgs_max, self.ctx.now().date(), tick)
        self._checked_at, self._checked_local = time.monotonic(), local
        return self._version

    async def get(self, flt: FeedFilter) -> Feed:
        version = await self.version()
        state = self._states.get(flt)
        if state is not None and state.version == version:
            self._states.move_to_end(flt)
            return state.feed
        async with self._lock:
            state = self._states.get(flt)
            if state is not None and state.version == version:
                self._states.move_to_end(flt)
                return state.feed
            state = await self._build(flt, version, state)
            self._store(flt, state)
            return state.feed

    async def gzipped(self, feed: Feed) -> bytes:
        """The gzip body of a feed that keeps its body; kept (and counted) while the feed is."""
        if feed._gzip is not None:
            return feed._gzip
        assert feed.body is not None, "a streamed feed is compressed while it streams"
        body = feed.body
        data = await self._offload(lambda: gzip.compress(body, 6, mtime=0))
        state = self._states.get(feed.key)
        if state is not None and state.feed is feed and feed._gzip is None:
            feed._gzip = data
            before = state.cost
            self._feed_bytes += state.measure() - before
            if not self._lock.locked():  # a build in progress holds rows no feed lists yet;
                self._enforce(feed.key)  # it enforces the budget when it stores its feed
        return data

    def _store(self, flt: FeedFilter, state: _FeedState) -> None:
        old = self._states.pop(flt, None)
        if old is not None:
            self._feed_bytes -= old.cost
        self._states[flt] = state
        self._feed_bytes += state.measure()
        self._enforce(flt)

    def _enforce(self, keep: FeedFilter) -> None:
        """Drop the least recently used feeds (never `keep`, the one being served) and the
        VEVENTs only they showed, until the cache is within its budget."""
        evicted = False
        while self.size > self.max_bytes and len(self._states) > 1:
            victim = next(iter(self._states))
            if victim == keep:
                self._states.move_to_end(keep)
                continue
            self._feed_bytes -= self._states.pop(victim).cost
            self.evictions += 1
            evicted = True
        shown = sum(len(st.order) for st in self._states.values())
        if evicted or len(self._events) > shown + 1000:
            self._prune()

    def _prune(self) -> None:
        """Forget rendered VEVENTs no cached feed shows (evicted feeds, events that left every
        window), in place: streamed feeds read this dict when they respond."""
        used: set[int] = set()
        for st in self._states.values():
            used.update(st.order)
        for i in [i for i in self._events if i not in used]:
            self._event_bytes -= self._events.pop(i).cost

    def _remember(self, entries: Iterable[_Rendered]) -> None:
        events = self._events
        for entry in entries:
            old = events.get(entry.key[1])
            if old is not None:
                self._event_bytes -= old.cost
            events[entry.key[1]] = entry
            self._event_bytes += entry.cost

    def _stale(self, rows: Iterable[FeedRow]) -> list[FeedRow]:
        return [r for r in rows if (hit := self._events.get(r.id)) is None
                or hit.revision != r.revision or hit.updated_at != r.updated_at]

    def _renderer(self) -> Callable[[Sequence[FeedRow]], list[_Rendered]]:
        """What a worker thread runs: rows to cache entries, VEVENT bytes and all."""
        tz, tzid, organizer = self.ctx.tz, str(self.ctx.tz), self.ctx.settings.http.public_base_url

        def work(todo: Sequence[FeedRow]) -> list[_Rendered]:
            return [_Rendered(r.revision, r.updated_at, (r.starts_at, r.id),
                              f"{r.id}.{r.revision}.{r.updated_at.timestamp()}",
                              render_vevent(r, tz, tzid, organizer)) for r in todo]

        return work

    async def _render(self, rows: Sequence[FeedRow]) -> None:
        todo = self._stale(rows)
        if not todo:
            return
        work = self._renderer()
        self._remember(await self._offload(partial(work, todo)) if len(todo) > 50 else work(todo))

    async def _load_and_render(self, session: AsyncSession, flt: FeedFilter,
                               now: datetime) -> list[FeedRow]:
        """A full build's rows, rendered while the next rows are still being read: the
        database streams in chunks and each chunk is rendered in a worker thread. Between two
        chunks the event loop runs other requests (see FULL_BUILD_CHUNK)."""
        ctx = self.ctx
        conditions = await _conditions(session, ctx, flt, now)
        names = await _district_names(session, ctx)
        query = (select(*_FULL_COLUMNS)
                 .outerjoin(Organisation, Organisation.id == Event.organisation_id).where(*conditions))
        work = self._renderer()
        rows: list[FeedRow] = []
        jobs: list[asyncio.Future[list[_Rendered]]] = []
        result = await session.stream(query)
        async for part in result.partitions(FULL_BUILD_CHUNK):
            chunk = _audience_filter(_feed_rows(part, names), flt)
            rows.extend(chunk)
            todo = self._stale(chunk)
            if todo:
                jobs.append(asyncio.ensure_future(self._offload(partial(work, todo))))
        for job in jobs:
            self._remember(await job)
            await asyncio.sleep(0)  # a finished job's await does not yield
        rows.sort(key=attrgetter("starts_at", "id"))
        return rows

    async def _last_modified(self, session: AsyncSession, version: tuple[Any, ...],
                             now: datetime) -> datetime:
        """When any feed last changed, at the latest: the last change to any event or
        organisation, or the last moment an event left the feeds' windows (a cancellation
        older than the keep window, an end older than the past window).

        Calendar-wide on purpose: an event moved out of a feed's area or period is no longer
        among the feed's rows, and neither this process (after a restart or an eviction) nor
        another instance can know it was there. A wider bound makes `If-Modified-Since`
        answer 200 more often than needed, never 304 over a stale feed; ETags stay exact."""
        if self._modified is not None and self._modified[0] == version:
            return self._modified[1]
        settings = self.ctx.settings.calendar
        past = timedelta(days=settings.feed_past_days)
        keep = timedelta(days=settings.cancelled_keep_days)
        ended = await session.scalar(select(func.max(raw_timestamp(Event.last_ends_at)))
                                     .where(Event.last_ends_at < now - past))
        cancelled = await session.scalar(select(func.max(raw_timestamp(Event.cancelled_at))).where(
            Event.status == EventStatus.CANCELLED, Event.cancelled_at < now - keep,
            Event.last_ends_at >= now - past - keep))
        _count, _max_id, events_max, orgs_max, _day, _tick = version
        moments = [m for m in (events_max, orgs_max) if m is not None]
        if ended is not None:
            moments.append(parse_timestamp(ended) + past)
        if cancelled is not None:
            moments.append(parse_timestamp(cancelled) + keep)
        # Never after this moment (the Date header's clock, or a test's clock ahead of it).
        modified = min(max(moments, default=now), max(now, datetime.now(UTC))).replace(microsecond=0)
        self._modified = (version, modified)
        return modified

    def _assemble(self, order: array[int], header: bytes) -> list[bytes]:
        events = self._events
        return [header, *[events[i].data for i in order], CALENDAR_FOOTER]

    async def _build(self, flt: FeedFilter, version: tuple[Any, ...],
                     old: _FeedState | None) -> _FeedState:
        ctx = self.ctx
        now = ctx.now()
        count, _max_id, _events_max, orgs_max, today, _tick = version
        self.builds += 1
        full = (old is None or old.day != today or old.org_version != orgs_max
                or count < old.event_count or old.high_water is None)
        if old is not None and old.org_version != orgs_max:
            # Organiser names/contacts are inside the VEVENTs; every other feed is stale too
            # (its versions differ) and rebuilds fully before it is served again.
            self._events.clear()
            self._event_bytes = 0
        changed: set[int] = set()
        async with ctx.db.read() as session:
            if full:
                self.full_builds += 1
                rows = await self._load_and_render(session, flt, now)
                high_water = max((r.updated_at for r in rows), default=None)
            else:
                assert old is not None and old.high_water is not None
                since = old.high_water - HIGH_WATER_MARGIN
                touched = (await session.execute(
                    select(Event.id, Event.updated_at).where(Event.updated_at > since))).all()
                changed = {i for i, _ in touched}
                ids = sorted(changed)
                rows = []
                for start in range(0, len(ids), 500):  # by primary key: no plan can go astray
                    rows += await load_rows(session, ctx, flt, now,
                                            extra=[Event.id.in_(ids[start:start + 500])])
                rows.sort(key=attrgetter("starts_at", "id"))
                high_water = max([old.high_water, *(u for _, u in touched)])
            modified = await self._last_modified(session, version, now)
        if full or old is None:
            order = array("q", [r.id for r in rows])  # in feed order already
        else:
            events = self._events
            kept = [i for i in old.order if i not in changed]
            keys = [events[i].key for i in kept]
            await self._render(rows)
            for r in rows:
                pos = bisect.bisect(keys, (r.starts_at, r.id))
                keys.insert(pos, (r.starts_at, r.id))
                kept.insert(pos, r.id)
            order = array("q", kept)
        header = calendar_header(ctx, feed_name(ctx, flt), now)
        events = self._events
        digest = hashlib.blake2b(header, digest_size=16)
        digest.update(",".join([events[i].tag for i in order]).encode())
        etag = '"' + digest.hexdigest() + '"'
        size = len(header) + sum(len(events[i].data) for i in order) + len(CALENDAR_FOOTER)
        if old is not None and old.feed.etag == etag:
            body, gzipped = old.feed.body, old.feed._gzip  # nothing visible changed: keep them
        elif size + size // 8 <= self.max_bytes // 2:  # a gzip body is about 1/8 of it
            body, gzipped = b"".join(self._assemble(order, header)), None
        else:
            body, gzipped = None, None
        if old is not None and old.feed.etag != etag and modified <= old.feed.last_modified:
            # Changed within the second of the last change (HTTP dates count whole seconds).
            modified = old.feed.last_modified + timedelta(seconds=1)
        feed = Feed(key=flt, etag=etag, last_modified=modified, count=len(order), size=size, body=body,
                    _parts=None if body is not None else lambda: self._assemble(order, header),
                    _gzip=gzipped)
        return _FeedState(version=version, day=today, org_version=orgs_max, event_count=count,
                          high_water=high_water, order=order, header=header, feed=feed)
