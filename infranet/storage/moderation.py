"""Moderation decisions on waiting events and training notices.

`[calendar] moderation` decides what waits (see calendar.events); this module
is the admins' side: what is waiting, and publishing or rejecting it once. A
decision on an item that no longer waits is refused, so a button pressed twice,
or by two admins, changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.events import get_event, moderate_event
from infranet.context import AppContext
from infranet.errors import NotFound, ValidationFailed
from infranet.i18n import register
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import BotState, Event, EventStatus, Moderation, Training

register({
    "moderation.already": {"pl": "To zostało już rozpatrzone.", "en": "This has already been decided."},
})


@dataclass
class Waiting:
    """One item for the admins: a single event, or a training notice with its sessions."""

    kind: str  # "ev" | "tr"
    id: int
    event: Event | None = None
    training: Training | None = None
    sessions: list[Event] | None = None


async def waiting_since(session: AsyncSession, last_event_id: int, *, limit: int = 50
                        ) -> tuple[list[Waiting], int]:
    """Pending items among events newer than `last_event_id` (an indexed range, cheap with
    many events); returns the items and the highest event id seen."""
    rows = (await session.execute(select(Event.id, Event.moderation, Event.status)
                                  .where(Event.id > last_event_id).order_by(Event.id))).all()
    high = rows[-1].id if rows else last_event_id
    ids = [r.id for r in rows if r.moderation == Moderation.PENDING
           and r.status == EventStatus.SCHEDULED]
    if not ids:
        return [], high
    events = list((await session.scalars(select(Event).where(Event.id.in_(ids))
                                         .order_by(Event.id))).all())
    return await _group(events, session, limit), high


# The announcement position shared by every instance on one database: the highest event id
# whose waiting items have been announced. (Not a `user:`/`chat:`/`bot`/`conv:` row, so the
# bot's persistence never loads or overwrites it.)
ANNOUNCED_KEY = "moderation:announced"


async def has_unannounced(session: AsyncSession) -> bool:
    """Whether `claim_announcements` could find anything: cheap, so that the poll every few
    seconds writes nothing while nothing happens."""
    position = await session.scalar(select(BotState.data).where(BotState.key == ANNOUNCED_KEY))
    return position is None or await last_event_id(session) > int(position.get("last_event_id", 0))


async def claim_announcements(session: AsyncSession, *, start_after: int | None = None,
                              limit: int = 50) -> list[Waiting]:
    """The waiting items nobody has announced yet, claimed for the caller.

    The position lives in one row locked for the transaction, so that two instances polling
    one PostgreSQL database announce each item once, not once each. The first claim ever
    takes everything waiting at that moment (or what came after `start_after`, a position
    kept by an older version), then only what is new.
    """
    row = await _locked_position(session)
    if row is None:
        if start_after is None:
            items, high = await all_waiting(session, limit=limit), await last_event_id(session)
        else:
            items, high = await waiting_since(session, start_after, limit=limit)
        try:
            async with session.begin_nested():
                session.add(BotState(key=ANNOUNCED_KEY, data={"last_event_id": high}))
            return items
        except IntegrityError:  # another instance made the row first: go by it
            row = await _locked_position(session)
            assert row is not None
    last = int(row.data.get("last_event_id", 0))
    items, high = await waiting_since(session, last, limit=limit)
    if high != last:
        row.data = {"last_event_id": high}
    return items


async def _locked_position(session: AsyncSession) -> BotState | None:
    return await session.scalar(select(BotState).where(BotState.key == ANNOUNCED_KEY)
                                .with_for_update().execution_options(populate_existing=True))


async def last_event_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(Event.id))) or 0)


async def all_waiting(session: AsyncSession, *, limit: int = 50) -> list[Waiting]:
    rows = list((await session.scalars(select(Event).where(
        Event.moderation == Moderation.PENDING, Event.status == EventStatus.SCHEDULED)
        .order_by(Event.id))).all())
    return await _group(rows, session, limit)


async def _group(rows: list[Event], session: AsyncSession, limit: int) -> list[Waiting]:
    items: list[Waiting] = []
    trainings: dict[int, Waiting] = {}
    for row in rows:
        if row.training_id is None:
            items.append(Waiting("ev", row.id, event=row))
            continue
        item = trainings.get(row.training_id)
        if item is None:
            training = await session.get(Training, row.training_id)
            if training is None:
                continue
            item = trainings[row.training_id] = Waiting("tr", training.id, training=training,
                                                        sessions=[])
            items.append(item)
        assert item.sessions is not None
        item.sessions.append(row)
    return items[:limit]


async def decide_event(session: AsyncSession, ctx: AppContext, actor: Actor, event_id: int,
                       publish: bool) -> Event:
    actor.require_admin()
    row = await get_event(session, event_id)
    if row.moderation != Moderation.PENDING:
        raise ValidationFailed("moderation.already", status=row.moderation)
    return await moderate_event(session, ctx, actor, event_id, publish)


async def decide_training(session: AsyncSession, ctx: AppContext, actor: Actor, training_id: int,
                          publish: bool) -> Training:
    """Publish or reject a notice together with all its waiting sessions."""
    actor.require_admin()
    training = await session.get(Training, training_id)
    if training is None:
        raise NotFound(detail=f"training #{training_id}")
    if training.moderation != Moderation.PENDING:
        raise ValidationFailed("moderation.already", status=training.moderation)
    sessions = (await session.scalars(select(Event).where(
        Event.training_id == training_id, Event.moderation == Moderation.PENDING))).all()
    for row in sessions:
        await moderate_event(session, ctx, actor, row.id, publish)
    training.moderation = Moderation.PUBLISHED if publish else Moderation.REJECTED
    await session.flush()
    await audit.record(session, actor, "training.publish" if publish else "training.reject",
                       "training", training.id)
    return training
