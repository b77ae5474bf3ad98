"""How much the calendar held in a period, counted in the database, for the network's
indicators and yearly evaluation (`infranet.insight` reads these; it owns no calendar rule).

An event counts once in a period it overlaps (a series once, however many dates it has),
when it is published and not cancelled. It counts in the district it was posted for: a
powiat, a subregion or the whole region; the caller decides how to show the wider ones.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, tzinfo

from sqlalchemy import String, bindparam, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.wallclock import local_midnight
from infranet.storage.hotpath import fetch_rows
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


_AUDIENCES_TEXT = cast(Event.audiences, String)
# One pass over the period's events, grouped by everything counted: a few thousand groups,
# however many events (three grouped scans took twice as long). Read with `fetch_rows`:
# SQLAlchemy's per-row work was a third of the time for the ~16,000 groups of a busy year.
_GROUPS = (
    select(Event.district_id, Event.category, Event.organisation_id, _AUDIENCES_TEXT, func.count())
    .where(Event.status == EventStatus.SCHEDULED, Event.moderation == Moderation.PUBLISHED,
           Event.starts_at < bindparam("end", type_=UTCDateTime()),
           Event.last_ends_at > bindparam("start", type_=UTCDateTime()))
    .group_by(Event.district_id, Event.category, Event.organisation_id, _AUDIENCES_TEXT))


async def calendar_counts(session: AsyncSession, tz: tzinfo, first: date, after: date
                          ) -> CalendarCounts:
    """What the calendar held from the day `first` to the day before `after`, days as the
    region's clocks count them (`tz`)."""
    start, end = local_midnight(first, tz), local_midnight(after, tz)
    events: Counter[int] = Counter()
    by_category: Counter[tuple[int, str]] = Counter()
    by_audience: Counter[tuple[int, str]] = Counter()
    by_organisation: Counter[int] = Counter()
    rows = await fetch_rows(await session.connection(), _GROUPS, {"start": start, "end": end})
    decoded: dict[str, list[str]] = {}  # a few dozen distinct lists of audiences
    for district_id, category, org_id, audiences, count in rows:
        events[district_id] += count
        by_category[(district_id, category)] += count
        if org_id is not None:
            by_organisation[org_id] += count
        if audiences not in decoded:
            decoded[audiences] = [str(a) for a in json.loads(audiences)] if audiences else []
        for audience in decoded[audiences]:
            by_audience[(district_id, audience)] += count
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
