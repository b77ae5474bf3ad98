"""Coordination figures: what happened after the calendar warned of a date clash.

The bot's event forms and the calendar import call `record_decision` once a member (or the
import) has acted on a warning: kept the date, moved to one of the suggested free dates,
moved to another date, or dropped the event. `coordination_counts` adds them up for a
period (the yearly evaluation). Recorded from the day this was installed: earlier warnings
were never stored, so the first year's figures start then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.storage.models import CoordinationDecision

OUTCOMES = ("kept", "moved_suggested", "moved_other", "dropped")
SOURCES = ("bot", "import", "web")


async def record_decision(session: AsyncSession, *, outcome: str, conflicts: int, source: str,
                          organisation_id: int | None, event_id: int | None = None) -> None:
    """One member's (or import's) answer to a clash warning, in the caller's transaction."""
    if outcome not in OUTCOMES or source not in SOURCES or conflicts < 1:
        raise ValueError(f"not a coordination decision: {outcome} {source} {conflicts}")
    session.add(CoordinationDecision(outcome=outcome, conflicts=conflicts, source=source,
                                     organisation_id=organisation_id, event_id=event_id))


@dataclass(frozen=True)
class Coordination:
    warned: int  # warnings acted on
    moved_suggested: int
    moved_other: int
    kept: int
    dropped: int


async def coordination_counts(session: AsyncSession, start: datetime, end: datetime) -> Coordination:
    found = dict.fromkeys(OUTCOMES, 0)
    for outcome, count in await session.execute(
            select(CoordinationDecision.outcome, func.count())
            .where(CoordinationDecision.decided_at >= start, CoordinationDecision.decided_at < end)
            .group_by(CoordinationDecision.outcome)):
        found[outcome] = count
    return Coordination(sum(found.values()), found["moved_suggested"], found["moved_other"],
                        found["kept"], found["dropped"])
