"""Training recruitment notices: a training cycle whose sessions are calendar events.

Members post a notice (title, sessions, recruitment deadline, target group,
places, cost, how to apply, district); the sessions go into the shared
calendar as events of category "training" with `training_id` set, so they
show up in listings, conflict checks, feeds and the newsletter like any other
event. Notices close themselves after the deadline and the poster is reminded
the day before it.

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
- Only members of the organisation (and admins) post and cancel its notices;
  cancelling a notice cancels its sessions in the calendar.

Business functions flush but never commit; callers own the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import district_ids, event_input, events
from infranet.calendar.dateparse import local_today
from infranet.calendar.dateparse_when import Span
from infranet.context import AppContext
from infranet.errors import NotFound, ValidationFailed
from infranet.i18n import numeric_date
from infranet.region import District as RegionDistrict
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import (
    Event,
    EventStatus,
    Moderation,
    Organisation,
    Training,
    TrainingStatus,
)
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


@dataclass
class TrainingView:
    """A notice with its sessions (calendar events, by start)."""

    training: Training
    sessions: list[Event]

@dataclass(frozen=True)
class Due:
    """A notice whose poster should hear of it (reminder or closing). The calendar names
    the poster by their member id; how to reach them (Telegram) is the bot's business."""

    training: Training
    poster_id: int | None


# --- validation helpers (also used by the bot to check answers step by step) -----------------


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


# --- operations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Checked:
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


def _check(ctx: AppContext, data: TrainingInput, *, future: bool) -> _Checked:
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
    return _Checked(title, target, description, location, places, cost, contact, district, pairs)


async def add_training(session: AsyncSession, ctx: AppContext, actor: Actor,
                       data: TrainingInput) -> TrainingView:
    """Validate a notice, store it, and add its sessions to the calendar (category training)."""
    org_id = data.organisation_id
    if org_id is None and not actor.is_admin:
        org_id = actor.require_approved().organisation_id
    actor.require_org(org_id)
    if org_id is None or await session.get(Organisation, org_id) is None:
        raise ValidationFailed("error.training_needs_org", field="organisation")
    checked = _check(ctx, data, future=True)

    row = Training(
        organisation_id=org_id, member_id=actor.member.id if actor.member else None,
        district_id=(await district_ids.district_id_map(session, ctx))[checked.district.slug],
        deadline=data.deadline, status=TrainingStatus.OPEN,
    )
    checked.apply_to(row)
    session.add(row)
    await session.flush()
    sessions = [await events.add_event(session, ctx, actor,
                                         checked.session(index, data, org_id, row.id))
                for index in range(len(checked.sessions))]
    row.moderation = (Moderation.PENDING if any(e.moderation == Moderation.PENDING for e in sessions)
                      else Moderation.PUBLISHED)
    await session.flush()
    await session.refresh(row, ["organisation", "district"])
    await audit.record(session, actor, "training.add", "training", row.id, title=row.title,
                       sessions=len(sessions), deadline=row.deadline.isoformat())
    return TrainingView(row, sessions)


async def update_training(session: AsyncSession, ctx: AppContext, actor: Actor, training_id: int,
                          data: TrainingInput) -> TrainingView:
    """Change an open notice: its fields, and its sessions in the calendar (the n-th session
    given replaces the n-th session scheduled; more are added, fewer cancel the rest). Only
    the organisation's members and admins may; a closed or cancelled notice is not changed."""
    view = await get_training(session, training_id)
    row = view.training
    actor.require_org(row.organisation_id)
    if row.status != TrainingStatus.OPEN:
        raise ValidationFailed("training.error.not_open")
    checked = _check(ctx, data, future=False)
    checked.apply_to(row)
    row.deadline = data.deadline
    row.district_id = (await district_ids.district_id_map(session, ctx))[checked.district.slug]
    live = [e for e in view.sessions if e.status == EventStatus.SCHEDULED]
    sessions: list[Event] = []
    for index in range(len(checked.sessions)):
        session_input = checked.session(index, data, row.organisation_id, row.id)
        if index < len(live):
            sessions.append(await events.update_event(session, ctx, actor, live[index].id, session_input))
        else:
            sessions.append(await events.add_event(session, ctx, actor, session_input))
    for extra in live[len(checked.sessions):]:
        await events.cancel_event(session, ctx, actor, extra.id)
    await session.flush()
    await session.refresh(row, ["organisation", "district"])
    await audit.record(session, actor, "training.update", "training", row.id, sessions=len(sessions))
    return TrainingView(row, sessions)


async def get_training(session: AsyncSession, training_id: int) -> TrainingView:
    row = await session.get(Training, training_id)
    if row is None:
        raise NotFound("error.not_found.training", id=training_id)
    return TrainingView(row, (await _sessions_of(session, [row.id])).get(row.id, []))


async def _sessions_of(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[Event]]:
    if not ids:
        return {}
    rows = (await session.scalars(select(Event).where(Event.training_id.in_(list(ids)))
                                  .order_by(Event.starts_at, Event.id))).all()
    found: dict[int, list[Event]] = {}
    for row in rows:
        assert row.training_id is not None
        found.setdefault(row.training_id, []).append(row)
    return found


async def cancel_training(session: AsyncSession, ctx: AppContext, actor: Actor,
                          training_id: int) -> TrainingView:
    """Cancel a notice and its sessions; only the organisation's members and admins may."""
    view = await get_training(session, training_id)
    row = view.training
    actor.require_org(row.organisation_id)
    if row.status == TrainingStatus.CANCELLED:
        return view
    row.status = TrainingStatus.CANCELLED
    row.closed_at = ctx.now()
    for event_row in view.sessions:
        if event_row.status != EventStatus.CANCELLED:
            await events.cancel_event(session, ctx, actor, event_row.id)
    await session.flush()
    await audit.record(session, actor, "training.cancel", "training", row.id)
    return view


async def list_open_trainings(
    session: AsyncSession, ctx: AppContext, *, area: str | None = None,
    organisation_id: int | None = None, include_pending: bool = False, limit: int | None = None,
) -> list[TrainingView]:
    """Open recruitments (deadline today or later), nearest deadline first."""
    today = local_today(ctx.now(), ctx.tz)
    conditions = [Training.status == TrainingStatus.OPEN, Training.deadline >= today]
    if not include_pending:
        conditions.append(Training.moderation == Moderation.PUBLISHED)
    if area is not None:
        district = event_input.resolve_district(ctx, area)
        conditions.append(Training.district_id.in_(
            await district_ids.area_district_ids(session, ctx, [district])))
    if organisation_id is not None:
        conditions.append(Training.organisation_id == organisation_id)
    query = select(Training).where(*conditions).order_by(Training.deadline, Training.id)
    if limit is not None:
        query = query.limit(limit)
    rows = list((await session.scalars(query)).all())
    sessions = await _sessions_of(session, [r.id for r in rows])
    return [TrainingView(r, sessions.get(r.id, [])) for r in rows]


async def _due(session: AsyncSession, ids: Sequence[int]) -> list[Due]:
    if not ids:
        return []
    rows = (await session.scalars(select(Training).where(Training.id.in_(list(ids)))
                                  .order_by(Training.deadline, Training.id))).all()
    return [Due(training, training.member_id) for training in rows]


async def close_expired(session: AsyncSession, ctx: AppContext) -> list[Due]:
    """Close every open notice whose deadline has passed; return them (each exactly once,
    also with two processes: the UPDATE itself claims the rows)."""
    today = local_today(ctx.now(), ctx.tz)
    ids = list((await session.scalars(
        update(Training)
        .where(Training.status == TrainingStatus.OPEN, Training.deadline < today)
        .values(status=TrainingStatus.CLOSED, closed_at=ctx.now())
        .returning(Training.id)
        .execution_options(synchronize_session=False))).all())
    for training_id in ids:
        await audit.record(session, Actor.system(), "training.close", "training", training_id)
    due = await _due(session, ids)
    for item in due:
        await session.refresh(item.training)
    return due


async def due_reminders(session: AsyncSession, ctx: AppContext) -> list[Due]:
    """Notices whose deadline is tomorrow (local) and whose poster was not reminded yet;
    marks them reminded in the same statement, so that a reminder goes out once."""
    tomorrow = local_today(ctx.now(), ctx.tz) + timedelta(days=1)
    ids = list((await session.scalars(
        update(Training)
        .where(Training.status == TrainingStatus.OPEN, Training.deadline == tomorrow,
               Training.reminded_at.is_(None), Training.moderation != Moderation.REJECTED)
        .values(reminded_at=ctx.now())
        .returning(Training.id)
        .execution_options(synchronize_session=False))).all())
    for training_id in ids:
        await audit.record(session, Actor.system(), "training.remind", "training", training_id)
    due = await _due(session, ids)
    for item in due:
        await session.refresh(item.training)
    return due
