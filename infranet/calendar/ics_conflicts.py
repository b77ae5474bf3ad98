"""The clashes an import brought: its new and changed events against other organisations'.

Each added or changed event of the file is checked as the bot checks a member's event
(`conflicts.find_conflicts`, the other events only); a clash with an event of another
organisation is listed in the report (`ConflictNote`), for the importing side, and
`notices_for_others` says it to the other organisations' members, as the bot tells them
when a member keeps a clashing date (`ctx.notices`, after the commit: the calendar does
not know the bot). A big first import checks at most `MAX_CHECKED` events, the soonest
first: a file of thousands of events would otherwise hold the transaction for minutes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.conflicts import find_conflicts
from infranet.calendar.ics_report import ConflictNote
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import numeric_date
from infranet.storage.models import Event, EventStatus

if TYPE_CHECKING:
    from infranet.calendar.ics_event import Incoming

MAX_CHECKED = 300


async def conflicts_of(session: AsyncSession, ctx: AppContext,
                       changed: list[tuple[Event, Incoming]]) -> list[ConflictNote]:
    notes: list[ConflictNote] = []
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
    return notes


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
