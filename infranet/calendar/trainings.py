"""Training recruitment notices: the commands (add, change, cancel, list) and the deadline job.

Members post a notice (title, sessions, recruitment deadline, target group,
places, cost, how to apply, district); the sessions go into the shared
calendar as events of category "training" with `training_id` set, so they
show up in listings, conflict checks, feeds and the newsletter like any other
event. Notices close themselves after the deadline and the poster is reminded
the day before it.

The rules on a notice (deadline, cost, how to apply, sessions) are in
`infranet.calendar.training_input`. Only members of the organisation (and admins) post
and cancel its notices; cancelling a notice cancels its sessions in the calendar.

Business functions flush but never commit; callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar import district_ids, event_input, events
from infranet.calendar.dateparse import local_today
from infranet.calendar.training_input import TrainingInput, check_training
from infranet.context import AppContext
from infranet.errors import NotFound, ValidationFailed
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


async def add_training(session: AsyncSession, ctx: AppContext, actor: Actor,
                       data: TrainingInput) -> TrainingView:
    """Validate a notice, store it, and add its sessions to the calendar (category training)."""
    org_id = data.organisation_id
    if org_id is None and not actor.is_admin:
        org_id = actor.require_approved().organisation_id
    actor.require_org(org_id)
    if org_id is None or await session.get(Organisation, org_id) is None:
        raise ValidationFailed("error.training_needs_org", field="organisation")
    checked = check_training(ctx, data, future=True)

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
    checked = check_training(ctx, data, future=False)
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
