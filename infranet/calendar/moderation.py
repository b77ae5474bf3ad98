"""Moderation decisions on waiting events and training notices.

`[calendar] moderation` decides what waits (see calendar.events); this module
is the admins' side: what is waiting, and publishing or rejecting it once. A
decision on an item that no longer waits changes nothing, so a button pressed twice,
or by two admins, changes nothing the second time; the second is told who decided.

A decision names the version the admin saw (an event's `revision`, a notice's
`training_version`): a waiting event edited after it was announced is not published
by a button that showed the older text; that button shows the current one instead.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.events import moderate_event
from infranet.context import AppContext
from infranet.errors import NotFound
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, BotState, Event, EventStatus, Member, Moderation, Training


@dataclass
class Waiting:
    """One item for the admins: a single event, or a training notice with its sessions."""

    kind: str  # "ev" | "tr"
    id: int
    event: Event | None = None
    training: Training | None = None
    sessions: list[Event] | None = None

    @property
    def version(self) -> int:
        """What the admin is shown, as a number their buttons carry."""
        if self.event is not None:
            return self.event.revision
        return training_version(self.sessions or [])


def training_version(sessions: list[Event]) -> int:
    """A notice's version: changes when any of its waiting sessions is edited, added or
    removed (a notice has no revision of its own). Kept below 2**31, the callback id bound."""
    key = ",".join(f"{e.id}.{e.revision}" for e in sorted(sessions, key=lambda e: e.id))
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


@dataclass
class Verdict:
    """What pressing Publish / Reject did: `state` is "decided" (by this admin), "already"
    (decided before, by `decided_by`), "outdated" (changed since: `current` is what waits
    now) or "cancelled" (its organiser cancelled it while it waited: nothing to decide)."""

    state: str
    title: str
    moderation: str
    member_id: int | None = None
    decided_by: str = "—"
    current: Waiting | None = None


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


async def decided_by(session: AsyncSession, entity: str, entity_id: int) -> str:
    """The name of who published or rejected an item, from the audit log."""
    actor = await session.scalar(select(AuditLog.actor).where(
        AuditLog.entity == entity, AuditLog.entity_id == str(entity_id),
        AuditLog.action.in_([f"{entity}.publish", f"{entity}.reject"]))
        .order_by(AuditLog.id.desc()).limit(1))
    if actor is None:
        return "—"
    if actor.startswith("tg:") and actor[3:].isdigit():
        name = await session.scalar(select(Member.display_name).where(
            Member.telegram_id == int(actor[3:])))
        return name or actor
    return "CLI" if actor == "cli" else actor


async def decide_event(session: AsyncSession, ctx: AppContext, actor: Actor, event_id: int,
                       publish: bool, version: int | None = None) -> Verdict:
    """Publish or reject the event as the admin saw it (`version`: its revision then). The
    row is locked first, so of two admins deciding at once on PostgreSQL one decides and
    the other is told who did."""
    actor.require_admin()
    row = await session.get(Event, event_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound("error.not_found.event", id=event_id)
    if row.moderation != Moderation.PENDING:
        return Verdict("already", row.title, row.moderation, row.member_id,
                       await decided_by(session, "event", row.id))
    if row.status == EventStatus.CANCELLED:  # withdrawn by its organiser while it waited
        return Verdict("cancelled", row.title, row.moderation, row.member_id)
    if version is not None and version != row.revision:
        return Verdict("outdated", row.title, row.moderation, row.member_id,
                       current=Waiting("ev", row.id, event=row))
    row = await moderate_event(session, ctx, actor, event_id, publish)
    return Verdict("decided", row.title, row.moderation, row.member_id, _label(actor))


async def decide_training(session: AsyncSession, ctx: AppContext, actor: Actor, training_id: int,
                          publish: bool, version: int | None = None) -> Verdict:
    """Publish or reject a notice together with all its waiting sessions, as the admin saw
    it (`version`: `training_version` of its sessions then)."""
    actor.require_admin()
    training = await session.get(Training, training_id, with_for_update=True,
                                 populate_existing=True)
    if training is None:
        raise NotFound("error.not_found.training", id=training_id)
    if training.moderation != Moderation.PENDING:
        return Verdict("already", training.title, training.moderation, training.member_id,
                       await decided_by(session, "training", training.id))
    sessions = list((await session.scalars(select(Event).where(
        Event.training_id == training_id, Event.moderation == Moderation.PENDING,
        Event.status == EventStatus.SCHEDULED).order_by(Event.id))).all())
    if version is not None and version != training_version(sessions):
        return Verdict("outdated", training.title, training.moderation, training.member_id,
                       current=Waiting("tr", training.id, training=training, sessions=sessions))
    for row in sessions:
        await moderate_event(session, ctx, actor, row.id, publish)
    training.moderation = Moderation.PUBLISHED if publish else Moderation.REJECTED
    await session.flush()
    await audit.record(session, actor, "training.publish" if publish else "training.reject",
                       "training", training.id)
    return Verdict("decided", training.title, training.moderation, training.member_id,
                   _label(actor))


def _label(actor: Actor) -> str:
    from infranet.network.membership import actor_label

    return actor_label(actor)
