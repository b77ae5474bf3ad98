"""A training notice as given, and every rule on its fields, sessions and deadline.

Kept apart from the commands (`infranet.calendar.trainings`) because the rules need no
database: the bot's /training form checks each answer with them as it is typed
(`parse_cost`, `parse_places`, `parse_apply`, `check_session_times`, `check_deadline`),
and the commands check a whole notice with `check_training`.

Rules:
- The deadline is a local date, not in the past, and not after the day of the
  first session: recruitment for a course that has already started is not a
  recruitment notice any more (the day of the first session itself is allowed,
  people do recruit "until the morning"). Reminders go out the day before the
  deadline; a notice whose deadline is today gets no reminder.
- A notice is open through its deadline day and closed from the next local day.
- Cost: None is free; otherwise a positive amount in PLN with at most 2 decimals.
- How to apply: a web address (http/https, "www." gets https://), an e-mail
  address (validated) or a phone number; exactly one is stored in its column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from infranet.calendar import event_input
from infranet.calendar.dateparse import local_today
from infranet.calendar.dateparse_when import Span
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date
from infranet.region import District as RegionDistrict
from infranet.storage.models import Training
from infranet.validation import URL_MAX, clean_email, clean_text, is_phone, plain_text

TITLE_MAX = 200
TARGET_MAX = 300
DESCRIPTION_MAX = 2000
LOCATION_MAX = 300
PLACES_MAX = 10_000
COST_MAX = Decimal("100000")
MAX_SESSIONS = 60


@dataclass
class TrainingInput:
    """What a poster gives. `sessions`: (start, end) pairs in the EventInput convention
    (aware datetimes for timed sessions; dates with an inclusive last day for all-day
    ones), or dateparse `Span`s; a single pair may be a whole start–end range."""

    title: str
    sessions: Sequence[tuple[datetime | date, datetime | date] | Span]
    deadline: date
    target_group: str
    how_to_apply: str
    district: str = "region"
    organisation_id: int | None = None
    places: int | None = None
    cost: Decimal | None = None  # None: free
    description: str | None = None
    location: str | None = None
    audiences: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ApplyContact:
    kind: str  # "url" | "email" | "phone"
    value: str


# --- the rules, one answer at a time (the bot checks each step with them) -------------------


_FREE_WORDS = {"bezplatne", "bezpłatne", "bezpłatnie", "bezplatnie", "free", "0", "gratis",
               "nieodpłatne", "nieodplatne", "darmowe", "-"}


def parse_cost(text: str | None) -> Decimal | None:
    """`bezpłatne`/`free`/`0` -> None; `150`, `99,50 zł`, `1 200 PLN` -> Decimal."""
    raw = (text or "").strip()
    value = raw.lower()
    if not value or value in _FREE_WORDS:
        return None
    number = re.sub(r"(?i)\s*(zł|zl|pln|złotych|zlotych)\.?$", "", value).replace(" ", "").replace(
        "\u00a0", "").replace(",", ".")
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValidationFailed("training.error.cost", value=raw) from None
    return check_cost(amount, raw)


def check_cost(amount: Decimal | None, raw: str | None = None) -> Decimal | None:
    if amount is None:
        return None
    if not amount.is_finite() or amount < 0 or amount > COST_MAX or amount != amount.quantize(
            Decimal("0.01")):
        raise ValidationFailed("training.error.cost", value=raw if raw is not None else str(amount))
    return None if amount == 0 else amount.quantize(Decimal("0.01"))


def parse_places(text: str | None) -> int | None:
    value = (text or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ValidationFailed("training.error.places", limit=PLACES_MAX)
    return check_places(int(value))


def check_places(places: int | None) -> int | None:
    if places is not None and not 1 <= places <= PLACES_MAX:
        raise ValidationFailed("training.error.places", limit=PLACES_MAX)
    return places


def parse_apply(text: str) -> ApplyContact:
    """A web address, an e-mail address or a phone number, told apart by shape."""
    raw = plain_text(text or "")  # nothing invisible may hide inside an address
    if not raw:
        raise ValidationFailed("error.empty", field="apply")
    if len(raw) > URL_MAX:
        raise ValidationFailed("error.too_long", field="apply", length=len(raw),
                               limit=URL_MAX)
    lowered = raw.lower()
    if lowered.startswith("www."):
        raw, lowered = f"https://{raw}", f"https://{lowered}"
    if lowered.startswith(("http://", "https://")):
        from urllib.parse import urlsplit

        parts = urlsplit(raw)
        if not parts.netloc or "." not in parts.netloc or any(c.isspace() for c in raw) or "<" in raw:
            raise ValidationFailed("training.error.apply", value=raw)
        return ApplyContact("url", raw)
    if "@" in raw:
        return ApplyContact("email", clean_email(raw, "apply"))
    if is_phone(raw):
        return ApplyContact("phone", raw)
    raise ValidationFailed("training.error.apply", value=raw)


def _session_pair(item: tuple[datetime | date, datetime | date] | Span, ctx: AppContext
                  ) -> tuple[datetime | date, datetime | date, bool]:
    """(start, end, all_day) in the EventInput convention."""
    if isinstance(item, Span):
        if item.all_day:
            first = item.start.astimezone(ctx.tz).date()
            last = (item.end.astimezone(ctx.tz) - timedelta(hours=1)).date()
            return first, max(first, last), True
        return item.start, item.end, False
    start, end = item
    all_day = not isinstance(start, datetime)
    if all_day != (not isinstance(end, datetime)):
        raise ValidationFailed("error.session_shape", field="sessions")
    return start, end, all_day


def _first_day(start: datetime | date, ctx: AppContext) -> date:
    return start.astimezone(ctx.tz).date() if isinstance(start, datetime) else start


def check_session_times(ctx: AppContext, sessions: Sequence[tuple[datetime | date, datetime | date, bool]],
                        ) -> None:
    """Every session meets the calendar's rules on a date (end after start, length, the
    planning horizon): the form's sessions step refuses at once what the save would."""
    latest = event_input.horizon(ctx)
    for start, end, all_day in sessions:
        event_input.event_times(ctx, event_input.EventInput(title="", start=start, end=end, all_day=all_day),
                             latest)


def check_deadline(ctx: AppContext, deadline: date, first_day: date | None = None) -> date:
    today = local_today(ctx.now(), ctx.tz)
    if deadline < today:
        raise ValidationFailed("training.error.deadline_past", value=numeric_date(deadline),
                               today=numeric_date(today))
    if first_day is not None and deadline > first_day:
        raise ValidationFailed("training.error.deadline_after_start", value=numeric_date(deadline),
                               first=numeric_date(first_day))
    return deadline


# --- a whole notice ------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedTraining:
    """A notice's fields as validated once, for adding it and for changing it alike."""

    title: str
    target: str
    description: str | None
    location: str | None
    places: int | None
    cost: Decimal | None
    contact: ApplyContact
    district: RegionDistrict
    sessions: list[tuple[datetime | date, datetime | date, bool]]

    def apply_to(self, row: Training) -> None:
        """Write the fields kept on the notice's own row (its sessions are events)."""
        row.title, row.target_group, row.description = self.title, self.target, self.description
        row.places, row.cost_pln = self.places, self.cost
        row.apply_url = self.contact.value if self.contact.kind == "url" else None
        row.apply_email = self.contact.value if self.contact.kind == "email" else None
        row.apply_phone = self.contact.value if self.contact.kind == "phone" else None

    def session(self, index: int, data: TrainingInput, organisation_id: int | None,
                training_id: int) -> event_input.EventInput:
        """The calendar event of the `index`-th session (category training)."""
        start, end, all_day = self.sessions[index]
        return event_input.EventInput(
            title=self.title, start=start, end=end, all_day=all_day, district=self.district.slug,
            category="training", audiences=list(data.audiences), organisation_id=organisation_id,
            description=self.description, location=self.location,
            registration_url=self.contact.value if self.contact.kind == "url" else None,
            training_id=training_id)


def check_training(ctx: AppContext, data: TrainingInput, *, future: bool) -> CheckedTraining:
    """Every rule on a notice's fields and sessions, the deadline against the first session;
    with `future`, no session may have begun (a change may keep one that has)."""
    title = clean_text(data.title, "title", TITLE_MAX, required=True) or ""
    target = clean_text(data.target_group, "target_group", TARGET_MAX, required=True) or ""
    description = clean_text(data.description, "description", DESCRIPTION_MAX, multiline=True)
    location = clean_text(data.location, "location", LOCATION_MAX)
    places = check_places(data.places)
    cost = check_cost(data.cost)
    contact = parse_apply(data.how_to_apply)
    district = event_input.resolve_district(ctx, data.district)
    if not data.sessions:
        raise ValidationFailed("training.error.no_sessions")
    if len(data.sessions) > MAX_SESSIONS:
        raise ValidationFailed("training.error.too_many_sessions", count=len(data.sessions),
                               limit=MAX_SESSIONS)
    pairs = sorted((_session_pair(item, ctx) for item in data.sessions),
                   key=lambda p: (_first_day(p[0], ctx), str(p[0])))
    if future:
        now, today = ctx.now(), local_today(ctx.now(), ctx.tz)
        for start, _end, all_day in pairs:
            if (all_day and start < today) or (not all_day and start < now):
                raise ValidationFailed("training.error.session_past",
                                       value=numeric_date(_first_day(start, ctx)))
    check_deadline(ctx, data.deadline, _first_day(pairs[0][0], ctx))
    return CheckedTraining(title, target, description, location, places, cost, contact, district, pairs)
