"""What the public may read of one event, and which events the public site lists in its
sitemap: published ones only (an event waiting for moderation, or refused, does not exist
for a visitor).

The site reads these through here rather than querying `Event` itself, so that the rule
"published means visible" lives in the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.storage.models import Event, EventStatus, Moderation, Training
from infranet.web.params import MAX_ID


@dataclass(frozen=True)
class PublicEvent:
    """A published event with what its page shows beside its own fields."""

    event: Event
    organiser: str | None  # the free-text organiser, else the organisation's name
    cost_pln: Decimal | None  # None: not stated; 0: free (a training session: its notice's cost)


async def published_event(session: AsyncSession, event_id: int) -> PublicEvent | None:
    """The event when it is published (scheduled or cancelled), else None."""
    if not 1 <= event_id <= MAX_ID:
        return None
    row = await session.get(Event, event_id)
    if row is None or row.moderation != Moderation.PUBLISHED:
        return None
    cost: Any = row.cost_pln
    if row.training_id is not None and cost is None:
        training = await session.get(Training, row.training_id)
        if training is not None:  # a training notice's cost: None there means free
            cost = training.cost_pln if training.cost_pln is not None else 0
    organiser = row.organiser_name or (row.organisation.name if row.organisation else None)
    return PublicEvent(row, organiser, Decimal(cost) if cost is not None else None)


@dataclass(frozen=True)
class ListedEvent:
    id: int
    title: str
    updated_at: datetime


async def upcoming_published(session: AsyncSession, now: datetime, limit: int) -> list[ListedEvent]:
    """Published, not cancelled events that have not ended (series by their last date),
    soonest first, at most `limit`: what the sitemap lists."""
    query = (select(Event.id, Event.title, Event.updated_at)
             .where(Event.moderation == Moderation.PUBLISHED, Event.status == EventStatus.SCHEDULED,
                    Event.series_id.is_(None), Event.last_ends_at > now)
             .order_by(Event.starts_at, Event.id).limit(limit))
    return [ListedEvent(id_, title, updated) for id_, title, updated in (await session.execute(query)).all()]
