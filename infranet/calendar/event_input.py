"""What a user gives for an event and the rules it must meet before anything is stored.

Kept apart from the commands (`infranet.calendar.events`) because the rules need no
database: the bot's event form checks each answer with them as it is typed
(`check_days`, `event_times`), and free-date suggestions re-check a moved event's
times (`event_times`) without touching storage.

- `EventInput` — what a user gives. Timed events: `start`/`end` are datetimes
  (aware; a naive one is wall-clock time in the region's zone). All-day events:
  `start`/`end` are dates and `end` is the LAST day, inclusive.
- `CATEGORIES`, `AUDIENCES` — codes; labels via `category_label`/`audience_label`.
- `validate_event(ctx, data) -> NormalisedEvent` — raises ValidationFailed.
- The length bounds (`TITLE_MAX`, `MAX_EVENT_DAYS`, `LONG_SPAN`...) that queries and
  conflict checks rely on as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from infranet.calendar import recurrence, wallclock
from infranet.calendar.dates import localize
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date, t
from infranet.region import District as RegionDistrict
from infranet.region import UnknownDistrict
from infranet.validation import clean_text, clean_url

CATEGORIES = ("training", "conference", "meeting", "consultation", "fair", "other")
AUDIENCES = ("ngo", "residents", "youth", "seniors", "local-government", "other")


TITLE_MAX = 200
DESCRIPTION_MAX = 4000
LOCATION_MAX = 300
# A single (non-recurring) event lasts at most this long. The bound is what keeps
# conflict checks an indexed range scan: `starts_at > start - MAX_EVENT_SPAN`.
MAX_EVENT_DAYS = 31
MAX_EVENT_SPAN = timedelta(days=MAX_EVENT_DAYS + 1)
# Nearly every event lasts hours, or one day: at most LONG_SPAN (a day, the 25-hour day of
# the autumn DST change included). Range queries look back LONG_SPAN for those, and back
# MAX_EVENT_SPAN only among the few that last longer (`Event.long_span`, an index of their
# own): a day of the index is read instead of a month.
LONG_SPAN = timedelta(hours=25)


def category_label(code: str, lang: str = "pl") -> str:
    return t(lang, f"calendar.category.{code}")


def audience_label(code: str, lang: str = "pl") -> str:
    return t(lang, f"calendar.audience.{code}")


@dataclass
class EventInput:
    title: str
    start: datetime | date
    end: datetime | date
    all_day: bool = False
    district: str = "region"  # slug, TERYT or name; the region itself = region-wide
    category: str = "other"
    audiences: list[str] = field(default_factory=list)  # empty = everyone
    organisation_id: int | None = None
    description: str | None = None
    location: str | None = None
    url: str | None = None
    registration_url: str | None = None
    # "FREQ=WEEKLY;COUNT=6", "FREQ=MONTHLY;UNTIL=20270630", "FREQ=MONTHLY;BYDAY=-1FR" (no end),
    # optionally followed by "\nRDATE:…" / "\nEXDATE:…" lines (`recurrence.canonical_rule`).
    rrule: str | None = None
    training_id: int | None = None
    uid: str | None = None


@dataclass(frozen=True)
class NormalisedEvent:
    """An EventInput checked and turned into what is stored (UTC, canonical RRULE)."""

    title: str
    description: str | None
    location: str | None
    url: str | None
    registration_url: str | None
    starts_at: datetime
    ends_at: datetime
    last_ends_at: datetime
    all_day: bool
    rrule: str | None
    district: RegionDistrict
    category: str
    audiences: tuple[str, ...]
    organisation_id: int | None

    def spans(self, tz: tzinfo) -> tuple[recurrence.Span, ...]:
        return recurrence.expand(self.rrule, self.starts_at, self.ends_at, self.all_day, tz)



# --- validation --------------------------------------------------------------------


def resolve_district(ctx: AppContext, query: str) -> RegionDistrict:
    try:
        return ctx.region.find(query)  # a slug from a form, or a name typed at the CLI
    except UnknownDistrict as exc:
        if exc.suggestions:  # "did you mean", in the reader's language
            raise ValidationFailed("error.district_hint", field="district", query=repr(query),
                                   names=", ".join(d.name for d in exc.suggestions)) from None
        raise ValidationFailed("calendar.error.district", field="district", query=repr(query),
                               hint="") from None


def _as_local(value: datetime | date, tz: tzinfo, field_name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValidationFailed("error.needs_time", field=field_name)
    if value.tzinfo is None:
        return localize(value, tz, field_name)
    return value.astimezone(tz)


def event_times(ctx: AppContext, data: EventInput, latest: datetime | None = None,
                ) -> tuple[datetime, datetime, datetime, datetime]:
    """The time rules of `validate_event` alone: (starts_at, ends_at) in UTC, the local
    start, and the horizon (`latest`, computed when not given). Free-date suggestions
    move a validated event to ~50 other dates, and only its times need checking again."""
    tz = ctx.tz
    if data.all_day:
        first = data.start.astimezone(tz).date() if isinstance(data.start, datetime) else data.start
        last = data.end.astimezone(tz).date() if isinstance(data.end, datetime) else data.end
        if last < first:
            raise ValidationFailed("calendar.error.end_before_start", start=numeric_date(first),
                                   end=numeric_date(last))
        starts_at, ends_at = wallclock.all_day_span(first, last, tz)
        local_start = starts_at.astimezone(tz)
    else:
        local_start = _as_local(data.start, tz, "start")
        local_end = _as_local(data.end, tz, "end")
        if local_end <= local_start:
            raise ValidationFailed("calendar.error.end_before_start",
                                   start=human_moment(local_start), end=human_moment(local_end))
        starts_at, ends_at = local_start.astimezone(UTC), local_end.astimezone(UTC)
    if ends_at - starts_at > timedelta(days=MAX_EVENT_DAYS):
        raise ValidationFailed("calendar.error.too_long_event", days=MAX_EVENT_DAYS)
    latest = latest or horizon(ctx)
    if starts_at > latest:
        raise ValidationFailed("calendar.error.too_far", limit=human_moment(latest.astimezone(tz)))
    return starts_at, ends_at, local_start, latest


def human_moment(local: datetime) -> str:
    """A local date and time as people write it: 5.12.2099 10:00."""
    return f"{numeric_date(local.date())} {local:%H:%M}"


def check_days(ctx: AppContext, first: date, last: date) -> None:
    """The rules on an event's days alone (no hours yet), so that a form's date step can
    refuse at once what the final save would refuse: too long, or beyond the horizon."""
    if (last - first).days + 1 > MAX_EVENT_DAYS:
        raise ValidationFailed("calendar.error.too_long_event", days=MAX_EVENT_DAYS)
    latest = horizon(ctx)
    if first > latest.date():
        raise ValidationFailed("calendar.error.too_far", limit=human_moment(latest.astimezone(ctx.tz)))


def horizon(ctx: AppContext) -> datetime:
    """How far ahead events may be planned: `[calendar] max_years_ahead` from now."""
    now_local = ctx.now().astimezone(ctx.tz)
    years = ctx.settings.calendar.max_years_ahead
    try:
        return now_local.replace(year=now_local.year + years)
    except ValueError:  # 29 February
        return now_local.replace(year=now_local.year + years, day=28)


def validate_event(ctx: AppContext, data: EventInput) -> NormalisedEvent:
    """Check everything that needs no database; return the stored form."""
    tz = ctx.tz
    title = clean_text(data.title, "title", TITLE_MAX, required=True)
    description = clean_text(data.description, "description", DESCRIPTION_MAX, multiline=True)
    location = clean_text(data.location, "location", LOCATION_MAX)
    url = clean_url(data.url, "url")
    registration_url = clean_url(data.registration_url, "registration_url")
    if data.category not in CATEGORIES:
        raise ValidationFailed("error.one_of", field="category", value=data.category,
                               choices=", ".join(CATEGORIES))
    unknown = [a for a in data.audiences if a not in AUDIENCES]
    if unknown:
        raise ValidationFailed("error.choose_from", field="audiences", values=", ".join(unknown),
                               choices=", ".join(AUDIENCES))
    district = resolve_district(ctx, data.district)
    starts_at, ends_at, local_start, latest = event_times(ctx, data)

    rule = None
    last_ends_at = ends_at
    if data.rrule and data.rrule.strip():
        # The rule with its RDATE and EXDATE lines, if any (`recurrence.canonical_rule`); the
        # moved occurrences of a stored series are not part of what is given here:
        # `update_event` carries over those that still belong to the series. An endless
        # series is stored with the horizon, and `last_ends_at` is that horizon.
        rule = recurrence.canonical_rule(data.rrule, all_day=data.all_day,
                                         first_start_local=local_start, tz=tz, latest=latest)
        spans = recurrence.expand_all(rule, starts_at, ends_at, data.all_day, tz)
        if spans[-1].start > latest:
            raise ValidationFailed("calendar.error.too_far", limit=human_moment(latest.astimezone(tz)))
        last_ends_at = recurrence.series_last_end(rule, spans, ends_at)
    return NormalisedEvent(
        title=title or "", description=description, location=location, url=url,
        registration_url=registration_url, starts_at=starts_at, ends_at=ends_at,
        last_ends_at=last_ends_at, all_day=data.all_day, rrule=rule, district=district,
        category=data.category, audiences=tuple(dict.fromkeys(data.audiences)),
        organisation_id=data.organisation_id)

