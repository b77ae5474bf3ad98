"""The clashes an import brought: its new and changed events against other organisations'.

Each added or changed event of the file is checked as the bot checks a member's event
(`conflicts.find_conflicts`, the other events only); a clash with an event of another
organisation is listed in the report (`ConflictNote`), for the importing side, and
`notices_for_others` says it to the other organisations' members, as the bot tells them
when a member keeps a clashing date (`ctx.notices`, after the commit: the calendar does
not know the bot). A big first import checks at most `MAX_CHECKED` events, the soonest
first: a file of thousands of events would otherwise hold the transaction for minutes.

The coordination figures (`coordination.record_decision`): an import does not ask, it
saves its events as the file has them, so each added or changed event that clashes with at
least one other organisation's event counts as one warning whose date was "kept" (source
"import"), in the import's transaction (an import that fails or is previewed and rolled
back counts nothing). An unchanged event on the next sync is not checked again, so a
clash counts once per change of the event, not once per sync.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.conflicts import find_conflicts
from infranet.calendar.coordination import record_decision
from infranet.calendar.ics_report import ConflictNote
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date
from infranet.storage.models import Event, EventStatus

if TYPE_CHECKING:
    from infranet.calendar.ics_event import Incoming

MAX_CHECKED = 300


# A clashing imported event: (its id, its organisation, how many other events it clashes with).
Clash = tuple[int, int | None, int]


async def conflicts_of(session: AsyncSession, ctx: AppContext,
                       changed: list[tuple[Event, Incoming]]) -> list[ConflictNote]:
    """The clashes, each clashing event counted as kept in `session` (a write transaction)."""
    notes, clashes = await clashes_of(session, ctx, changed)
    await record_kept(session, clashes)
    return notes


async def record_kept(session: AsyncSession, clashes: list[Clash]) -> None:
    """The import's decisions: every clashing event it saved kept its date."""
    for event_id, organisation_id, count in clashes:
        await record_decision(session, outcome="kept", conflicts=count, source="import",
                              organisation_id=organisation_id, event_id=event_id)


async def clashes_of(session: AsyncSession, ctx: AppContext, changed: list[tuple[Event, Incoming]]
                     ) -> tuple[list[ConflictNote], list[Clash]]:
    """The clashes as the report lists them, and per clashing event their number (for
    `record_kept`: a batched import looks in a read transaction and records after it)."""
    notes: list[ConflictNote] = []
    clashes: list[Clash] = []
    live = [(row, item) for row, item in changed if row.status != EventStatus.CANCELLED]
    live.sort(key=lambda pair: pair[0].starts_at)
    for row, item in live[:MAX_CHECKED]:
        data = replace(item.data, organisation_id=row.organisation_id, uid=None)
        if row.series_id is not None:
            data = replace(data, rrule=None)
        try:
            found = await find_conflicts(session, ctx, data, exclude_event_id=row.id)
        except ValidationFailed:
            continue
        seen: set[int] = set()
        for conflict in [*found.conflicts, *found.duplicates]:
            other = conflict.event
            if (other.organisation_id is None or other.organisation_id == row.organisation_id
                    or other.id in seen or other.id == row.series_id):
                continue
            seen.add(other.id)
            notes.append(ConflictNote(row.title, conflict.candidate_start, other.title,
                                      other.organisation.name if other.organisation else "—",
                                      other.organisation_id))
        if seen:
            clashes.append((row.id, row.organisation_id, len(seen)))
    return notes, clashes


def notices_for_others(ctx: AppContext, organisation: str,
                       conflicts: list[ConflictNote]) -> list[tuple[int, str, dict[str, Any]]]:
    """(organisation id, message id, parameters): one notice to each other organisation whose
    events an import clashes with, listing the clashes (`sources.conflicts_theirs`)."""
    by_org: dict[int, list[ConflictNote]] = {}
    for note in conflicts:
        if note.other_organisation_id is not None:
            by_org.setdefault(note.other_organisation_id, []).append(note)
    out = []
    for org_id, notes in sorted(by_org.items()):
        items = "\n".join(f"• {n.title} ({numeric_date(n.starts_at.astimezone(ctx.tz).date())}): "
                          f"{n.other_title}" for n in notes[:10])
        if len(notes) > 10:
            items += f"\n… (+{len(notes) - 10})"
        out.append((org_id, "sources.conflicts_theirs", {"org": organisation, "items": items}))
    return out
