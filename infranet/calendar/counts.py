"""How much the calendar held in a period, counted in the database, for the network's
indicators and yearly evaluation (`infranet.insight` reads these; it owns no calendar rule).

An event counts once in a period it overlaps (a series once, however many dates it has),
when it is published and not cancelled. It counts in the district it was posted for: a
powiat, a subregion or the whole region; the caller decides how to show the wider ones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlalchemy import ColumnElement, and_, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.wallclock import local_midnight
from infranet.storage.models import Event, EventStatus, Moderation, Training, TrainingStatus
from infranet.storage.types import UTCDateTime


@dataclass(frozen=True)
class CalendarCounts:
    # district id -> events; (district id, category) -> events; (district id, audience) -> events
    events: Counter[int]
    by_category: Counter[tuple[int, str]]
    by_audience: Counter[tuple[int, str]]
    # district id -> training notices whose application deadline falls in the period, and
    # the places they offered (notices without a number of places add none)
    trainings: Counter[int]
    training_places: Counter[int]
    # organisation id -> events it posted that the period holds
    by_organisation: Counter[int]


def _held(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(Event.status == EventStatus.SCHEDULED, Event.moderation == Moderation.PUBLISHED,
                Event.starts_at < end, Event.last_ends_at > start)


async def calendar_counts(session: AsyncSession, tz: tzinfo, first: date, after: date
                          ) -> CalendarCounts:
    """What the calendar held from the day `first` to the day before `after`, days as the
    region's clocks count them (`tz`)."""
    start, end = local_midnight(first, tz), local_midnight(after, tz)
    held = _held(start, end)
    by_category: Counter[tuple[int, str]] = Counter()
    events: Counter[int] = Counter()
    rows = await session.execute(select(Event.district_id, Event.category, func.count())
                                 .where(held).group_by(Event.district_id, Event.category))
    for district_id, category, count in rows:
        by_category[(district_id, category)] = count
        events[district_id] += count
    by_organisation: Counter[int] = Counter()
    for org_id, count in await session.execute(
            select(Event.organisation_id, func.count())
            .where(held, Event.organisation_id.is_not(None)).group_by(Event.organisation_id)):
        if org_id is not None:
            by_organisation[org_id] = count
    by_audience = await _audiences(session, start, end)
    trainings: Counter[int] = Counter()
    places: Counter[int] = Counter()
    training_rows = await session.execute(
        select(Training.district_id, func.count(), func.coalesce(func.sum(Training.places), 0))
        .where(Training.moderation == Moderation.PUBLISHED,
               Training.status != TrainingStatus.CANCELLED,
               Training.deadline >= first, Training.deadline < after)
        .group_by(Training.district_id))
    for district_id, count, total in training_rows:
        trainings[district_id] = count
        places[district_id] = int(total or 0)
    return CalendarCounts(events, by_category, by_audience, trainings, places, by_organisation)


async def _audiences(session: AsyncSession, start: datetime, end: datetime) -> Counter[tuple[int, str]]:
    """Events per (district, audience), the audiences unpacked by the database's own JSON
    functions (an event for two audiences counts for each)."""
    unpack = ("json_each(events.audiences) AS a" if session.get_bind().dialect.name == "sqlite"
              else "json_array_elements_text(events.audiences) AS a(value)")
    statement = text(
        f"SELECT events.district_id, a.value, count(*) FROM events, {unpack} "  # noqa: S608
        "WHERE events.status = :scheduled AND events.moderation = :published "
        "AND events.starts_at < :end AND events.last_ends_at > :start "
        "GROUP BY events.district_id, a.value").bindparams(
        bindparam("start", start, type_=UTCDateTime()), bindparam("end", end, type_=UTCDateTime()),
        scheduled=str(EventStatus.SCHEDULED), published=str(Moderation.PUBLISHED))
    found: Counter[tuple[int, str]] = Counter()
    for district_id, audience, count in (await session.execute(statement)).all():
        found[(district_id, str(audience))] = count
    return found
