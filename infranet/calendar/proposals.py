"""Events proposed by people outside the network (the public site's `/events/new`).

Somebody without the bot (an organisation's staff, a resident group) fills in a form; what
they send becomes an ordinary event waiting for moderation (`Moderation.PENDING`, source
"web", no member, no organisation: `organiser_name` says who runs it), which the bot's
moderation job announces to the admins with Publish / Reject like any other. The proposer
is told the outcome by e-mail; for that alone an `EventProposal` row keeps their address,
an optional name and their language, and is deleted some days after they were told
(`proposal_outcomes`).

- `read_form(ctx, form) -> Proposal`: the form's text fields checked by the calendar's own
  rules (`event_input`), every field at once: `ProposalInvalid.errors` maps each wrong
  field to its error (nothing is stored before this passes). `read_event(ctx, form)`:
  the event's fields alone, for the date check.
- `async preview(session, ctx, event) -> Preview`: conflicts and free dates on the
  chosen day and district, before anything is sent.
- `async propose(session, ctx, proposal, token_key) -> Event`: the pending event and its
  proposal row; a form token (`token_key`, its hash) sends one proposal only.

Telling the proposer the outcome, and deleting their data afterwards, is in
`proposal_outcomes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.conflicts import ConflictReport, find_conflicts
from infranet.calendar.dates import localize
from infranet.calendar.district_ids import district_id_map
from infranet.calendar.event_input import (
    AUDIENCES,
    CATEGORIES,
    DESCRIPTION_MAX,
    LOCATION_MAX,
    TITLE_MAX,
    EventInput,
    check_days,
    resolve_district,
    validate_event,
)
from infranet.calendar.event_search import index_words
from infranet.calendar.events import apply_input, mark_changed, new_uid
from infranet.calendar.free_dates import suggest_dates
from infranet.context import AppContext
from infranet.errors import InfranetError, ValidationFailed
from infranet.i18n import LANGUAGES, numeric_date
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import District, Event, EventProposal, EventStatus, Moderation
from infranet.validation import clean_email, clean_text, clean_url

SOURCE = "web"
ORGANISER_MAX = 200
NAME_MAX = 100
COST_MAX = Decimal("100000")
_DOTTED_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")
_AMOUNT = re.compile(r"^\d{1,6}(?:[.,]\d{1,2})?$")
FIELD_MAX = 5000  # any single field longer than this is cut before it is looked at


@dataclass
class ProposalForm:
    """What the form sends, as text; absent fields are empty strings."""

    title: str = ""
    start_date: str = ""
    end_date: str = ""
    start_time: str = ""
    end_time: str = ""
    all_day: bool = False
    location: str = ""
    district: str = ""
    category: str = ""
    audiences: list[str] = field(default_factory=list)
    description: str = ""
    organiser_name: str = ""
    registration_url: str = ""
    cost: str = ""
    email: str = ""
    name: str = ""
    language: str = "pl"


@dataclass(frozen=True)
class Proposal:
    """A form that passed every rule: the event as the calendar takes it, and who to tell."""

    event: EventInput
    organiser_name: str
    cost_pln: Decimal | None
    email: str
    name: str | None
    language: str


class ProposalInvalid(InfranetError):
    """Some fields are wrong; `errors` maps each to its message (one per field)."""

    key = "calendar.proposal.invalid"

    def __init__(self, errors: dict[str, InfranetError]) -> None:
        self.errors = errors
        super().__init__(self.key)


class ProposalReplayed(InfranetError):
    """The form token was used for a proposal already: the form was sent twice."""

    key = "calendar.proposal.replayed"


@dataclass
class Preview:
    conflicts: ConflictReport
    suggestions: list[tuple[datetime | date, datetime | date]]


# --- reading the form ------------------------------------------------------------------


def _day(text: str, name: str) -> date:
    """2027-05-14 (what a date field sends) or 14.05.2027 (what people type)."""
    value = text.strip()
    match = _DOTTED_DATE.match(value)
    try:
        if match:
            return date(int(match[3]), int(match[2]), int(match[1]))
        if len(value) == 10 and value[4] == "-" and value.isascii():
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise ValidationFailed("calendar.proposal.error.date", field=name)


def _clock(text: str, name: str) -> time:
    match = _TIME.match(text.strip())
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        return time(int(match[1]), int(match[2]))
    raise ValidationFailed("calendar.proposal.error.time", field=name)


def _cost(text: str) -> Decimal | None:
    """Blank: not stated; 0: free; otherwise złoty with at most two decimals."""
    value = text.strip().replace(" ", "")
    if not value:
        return None
    if not (value.isascii() and _AMOUNT.match(value)):
        raise ValidationFailed("calendar.proposal.error.cost", field="cost")
    try:
        amount = Decimal(value.replace(",", "."))
    except InvalidOperation:
        raise ValidationFailed("calendar.proposal.error.cost", field="cost") from None
    if amount > COST_MAX:
        raise ValidationFailed("calendar.proposal.error.cost", field="cost")
    return amount


class _Errors:
    """Runs each field's rule and keeps the first error of each field."""

    def __init__(self) -> None:
        self.found: dict[str, InfranetError] = {}

    def add(self, name: str, error: InfranetError) -> None:
        self.found.setdefault(name, error)


def _times(ctx: AppContext, form: ProposalForm, errors: _Errors
           ) -> tuple[datetime | date, datetime | date] | None:
    """The event's start and end as `EventInput` takes them; None (errors kept) when wrong.
    Each of the four fields is read on its own, so that each wrong one is named at once."""

    def read(name: str, parse: Callable[[], Any]) -> Any:
        try:
            return parse()
        except ValidationFailed as exc:
            errors.add(name, exc)
            return None

    first = read("start_date", lambda: _day(form.start_date, "start_date"))
    last = read("end_date", lambda: _day(form.end_date, "end_date")) if form.end_date.strip() else first
    start = end = None
    if not form.all_day:
        start = read("start_time", lambda: _clock(form.start_time, "start_time"))
        end = read("end_time", lambda: _clock(form.end_time, "end_time"))
    if first is None or last is None:
        return None
    if last < first:
        errors.add("end_date", ValidationFailed(
            "calendar.error.end_before_start", start=numeric_date(first), end=numeric_date(last)))
        return None
    try:
        check_days(ctx, first, last)  # not too long, not beyond the planning horizon
    except ValidationFailed as exc:
        errors.add("start_date", exc)
        return None
    if first < ctx.now().astimezone(ctx.tz).date():
        errors.add("start_date", ValidationFailed("calendar.proposal.error.past", field="start_date"))
        return None
    if form.all_day:
        return first, last
    if start is None or end is None:
        return None
    try:
        begins = localize(datetime.combine(first, start), ctx.tz, "start")
        ends = localize(datetime.combine(last, end), ctx.tz, "end")
    except ValidationFailed as exc:
        errors.add("start_time", exc)
        return None
    if begins < ctx.now():
        errors.add("start_time", ValidationFailed("calendar.proposal.error.past", field="start_time"))
        return None
    return begins, ends


def _cut(form: ProposalForm) -> ProposalForm:
    """Every field bounded before any rule reads it (the clean_* rules still say how long)."""
    texts: dict[str, Any] = {name: value[:FIELD_MAX] for name, value in vars(form).items()
                             if isinstance(value, str)}
    return replace(form, **texts, audiences=[a[:50] for a in form.audiences[:len(AUDIENCES) * 2]])


def _rule(errors: _Errors, name: str, check: Callable[[], object]) -> None:
    try:
        check()
    except InfranetError as exc:
        errors.add(name, exc)


def _event_fields(ctx: AppContext, form: ProposalForm, errors: _Errors) -> EventInput | None:
    """The event's own fields (what the date check needs), their errors kept in `errors`."""
    _rule(errors, "title", lambda: clean_text(form.title, "title", TITLE_MAX, required=True))
    _rule(errors, "location", lambda: clean_text(form.location, "location", LOCATION_MAX))
    _rule(errors, "description", lambda: clean_text(form.description, "description",
                                                    DESCRIPTION_MAX, multiline=True))
    _rule(errors, "registration_url", lambda: clean_url(form.registration_url, "registration_url"))
    if form.district.strip():
        _rule(errors, "district", lambda: resolve_district(ctx, form.district))
    else:
        errors.add("district", ValidationFailed("error.empty", field="district"))
    if form.category not in CATEGORIES:
        errors.add("category", ValidationFailed("calendar.proposal.error.choose", field="category"))
    if any(a not in AUDIENCES for a in form.audiences):
        errors.add("audiences", ValidationFailed("calendar.proposal.error.choose", field="audiences"))
    times = _times(ctx, form, errors)
    if times is None:
        return None
    return EventInput(title=form.title, start=times[0], end=times[1], all_day=form.all_day,
                      district=form.district, category=form.category,
                      audiences=list(dict.fromkeys(form.audiences)),
                      description=form.description, location=form.location,
                      registration_url=form.registration_url)


def _validated(ctx: AppContext, form: ProposalForm, data: EventInput) -> EventInput:
    try:
        validate_event(ctx, data)
    except ValidationFailed as exc:  # the times together: end before start, too long, too far
        where = "end_time" if exc.key == "calendar.error.end_before_start" and not form.all_day \
            else "end_date" if exc.key == "calendar.error.end_before_start" else "start_date"
        raise ProposalInvalid({where: exc}) from None
    return data


def read_event(ctx: AppContext, form: ProposalForm) -> EventInput:
    """The event alone, for the date check before sending (no need to say who you are
    to see whether a date is free); ProposalInvalid names each wrong field."""
    form = _cut(form)
    errors = _Errors()
    data = _event_fields(ctx, form, errors)
    if errors.found or data is None:
        raise ProposalInvalid(errors.found)
    return _validated(ctx, form, data)


def read_form(ctx: AppContext, form: ProposalForm) -> Proposal:
    """The whole form checked by the calendar's rules, every field at once;
    ProposalInvalid names each wrong field."""
    form = _cut(form)
    errors = _Errors()
    data = _event_fields(ctx, form, errors)
    _rule(errors, "organiser_name", lambda: clean_text(form.organiser_name, "organiser_name",
                                                       ORGANISER_MAX, required=True))
    _rule(errors, "name", lambda: clean_text(form.name, "proposer_name", NAME_MAX))
    _rule(errors, "email", lambda: clean_email(form.email, "email"))
    _rule(errors, "cost", lambda: _cost(form.cost))
    if errors.found or data is None:
        raise ProposalInvalid(errors.found)
    data = _validated(ctx, form, data)
    return Proposal(event=data, organiser_name=clean_text(form.organiser_name, "organiser_name",
                                                          ORGANISER_MAX, required=True) or "",
                    cost_pln=_cost(form.cost), email=clean_email(form.email, "email"),
                    name=clean_text(form.name, "proposer_name", NAME_MAX),
                    language=form.language if form.language in LANGUAGES else "pl")


# --- before sending: conflicts and free dates -------------------------------------------


async def preview(session: AsyncSession, ctx: AppContext, event: EventInput, *,
                  suggestions: int = 3) -> Preview:
    """What the proposed date collides with in its district, and the nearest free dates
    (only asked for when it collides with something)."""
    report = await find_conflicts(session, ctx, event)
    free = [] if report.clear else await suggest_dates(session, ctx, event, suggestions)
    return Preview(report, free)


# --- sending ---------------------------------------------------------------------------


async def propose(session: AsyncSession, ctx: AppContext, proposal: Proposal,
                  token_key: str) -> Event:
    """Store the proposal as a pending event (always pending, whatever `[calendar]
    moderation` says: nobody vouches for a web form) and who to tell. `token_key` (the
    form token's hash) may send one proposal: ProposalReplayed for the second."""
    if await session.scalar(select(EventProposal.id).where(EventProposal.form_token == token_key)):
        raise ProposalReplayed()
    norm = validate_event(ctx, proposal.event)
    district_id = (await district_id_map(session, ctx))[norm.district.slug]
    row = Event(uid=new_uid(ctx), organisation_id=None, member_id=None,
                status=EventStatus.SCHEDULED, moderation=Moderation.PENDING, revision=0,
                source=SOURCE, organiser_name=proposal.organiser_name, cost_pln=proposal.cost_pln)
    apply_input(row, norm, district_id)
    row.organisation = None
    row.district = await session.get_one(District, district_id)
    session.add(row)
    await session.flush()
    await index_words(session, row, row.id, new=True)
    try:
        async with session.begin_nested():  # two posts of one form at once: one wins
            session.add(EventProposal(event_id=row.id, email=proposal.email, name=proposal.name,
                                      language=proposal.language, form_token=token_key,
                                      created_at=ctx.now()))
    except IntegrityError:
        raise ProposalReplayed() from None
    await audit.record(session, Actor("web"), "event.propose", "event", row.id, title=row.title)
    mark_changed(session, ctx)
    return row
