"""Telling people outside the network what became of the event they proposed
(`proposals`), and deleting what was kept about them once they were told.

- `async claim_outcomes(session, ctx) -> list[Told]`: proposals whose event was decided,
  each claimed once (`told_at` set before the caller sends), so no proposer is told twice.
- `async has_untold(session, ctx) -> bool`: whether there is anything to claim (a read).
- `async purge_told(session, ctx) -> int`: the proposer's data, once told and kept
  `RETENTION_DAYS`.

An event still waiting when it has ended counts as not published: the proposer is told,
and their data does not wait for a decision that will not come. Apart from `proposals`,
which reads the form and stores the proposal, because this runs later, from a job, on
proposals already stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import Event, EventProposal, EventStatus, Moderation

RETENTION_DAYS = 30  # after the proposer was told, their address is kept this long, then deleted
PUBLISHED, REJECTED = "published", "rejected"
CLAIM_LIMIT = 20  # proposals told per run of the job


@dataclass(frozen=True)
class Told:
    """A decided proposal, claimed: the caller sends the e-mail."""

    proposal_id: int
    event_id: int
    title: str
    email: str
    name: str | None
    language: str
    outcome: str


def _newly_decided(now: datetime) -> ColumnElement[bool]:
    """Proposals without a noted outcome whose event was decided, cancelled, or has ended
    still waiting (nobody will decide it any more)."""
    return and_(EventProposal.decided_at.is_(None),
                or_(Event.moderation != Moderation.PENDING, Event.status != EventStatus.SCHEDULED,
                    Event.last_ends_at < now))


def _untold() -> ColumnElement[bool]:
    return and_(EventProposal.decided_at.is_not(None), EventProposal.told_at.is_(None))


async def _note_decisions(session: AsyncSession, ctx: AppContext) -> None:
    """Record the outcome of the proposals `_newly_decided` finds."""
    now = ctx.now()
    rows = (await session.execute(
        select(EventProposal, Event.moderation, Event.status)
        .join(Event, Event.id == EventProposal.event_id)
        .where(_newly_decided(now))
        .order_by(EventProposal.id).limit(CLAIM_LIMIT * 5)
        .with_for_update(skip_locked=True, of=EventProposal))).all()
    for proposal, moderation, status in rows:
        published = moderation == Moderation.PUBLISHED and status == EventStatus.SCHEDULED
        proposal.decided_at = now
        proposal.outcome = PUBLISHED if published else REJECTED


async def claim_outcomes(session: AsyncSession, ctx: AppContext, *,
                         limit: int = CLAIM_LIMIT) -> list[Told]:
    """Decided proposals not told yet, each claimed here (`told_at`) before its e-mail goes:
    with several instances, or a crash between claim and send, a proposer is told at most
    once (an e-mail lost to a crash is not sent again). The caller sends after the commit."""
    await _note_decisions(session, ctx)
    rows = (await session.execute(
        select(EventProposal, Event.title)
        .join(Event, Event.id == EventProposal.event_id)
        .where(_untold())
        .order_by(EventProposal.id).limit(limit)
        .with_for_update(skip_locked=True, of=EventProposal))).all()
    now = ctx.now()
    claimed = []
    for proposal, title in rows:
        proposal.told_at = now
        claimed.append(Told(proposal.id, proposal.event_id, title, proposal.email, proposal.name,
                            proposal.language, proposal.outcome or REJECTED))
    await session.flush()
    return claimed


async def has_untold(session: AsyncSession, ctx: AppContext) -> bool:
    """Whether `claim_outcomes` would find anything: a read, so that the frequent job
    writes nothing while nothing was decided."""
    found = await session.scalar(
        select(EventProposal.id).join(Event, Event.id == EventProposal.event_id)
        .where(or_(_untold(), _newly_decided(ctx.now()))).limit(1))
    return found is not None


async def purge_told(session: AsyncSession, ctx: AppContext) -> int:
    """Delete proposers' data `RETENTION_DAYS` after they were told (the event stays)."""
    cutoff = ctx.now() - timedelta(days=RETENTION_DAYS)
    ids: Sequence[int] = (await session.scalars(select(EventProposal.id).where(
        EventProposal.told_at.is_not(None), EventProposal.told_at < cutoff))).all()
    if not ids:
        return 0
    await session.execute(delete(EventProposal).where(EventProposal.id.in_(ids)))
    await audit.record(session, Actor.system(), "event.proposals_purge", "event", None,
                       count=len(ids))
    return len(ids)
