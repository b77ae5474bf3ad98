"""Free dates for the /event form, worked out while the user is still filling it in.

When the date clashes, the form's confirm step offers free dates nearby: some fifty
shifted dates checked against the calendar, the slowest work of the whole form. What
they depend on (title, times, district, organisation) is known steps earlier, once the
district is chosen; from then on the search runs in the background while the user picks
a category, an audience and the optional fields, and the confirm step takes its result
instead of searching while the user waits.

The conflict check itself still runs at confirm, on the calendar as it is then. The
suggestions are advice, and a suggested date is checked again before it is saved; still,
a search is used only if the same form started it, less than `MAX_AGE_S` ago, and no
event changed in this process since.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from infranet.calendar.conflicts import suggest_dates
from infranet.calendar.events import EventInput, local_change_count
from infranet.context import AppContext

Suggestions = list[tuple[datetime | date, datetime | date]]

log = logging.getLogger(__name__)

MAX_AGE_S = 120.0
SUGGESTIONS = 3


@dataclass
class _Search:
    inputs: tuple[Any, ...]
    changes: int
    started: float
    task: asyncio.Task[Any]  # its result: the suggestions, or None (search again in the foreground)


class SuggestionPrefetch:
    """One background search per user: the latest form's."""

    def __init__(self) -> None:
        self._searches: dict[int, _Search] = {}

    async def search(self, ctx: AppContext, user_id: int, data: EventInput,
                     exclude_event_id: int | None) -> Suggestions | None:
        """The background search, run after the step's reply has gone out
        (`Turn.after_commit`); nothing happens if the same search is on its way."""
        inputs = _inputs(data, exclude_event_id)
        current = self._searches.get(user_id)
        if current is not None and current.inputs == inputs and self._usable(ctx, current):
            return None
        task = asyncio.current_task()
        if task is None:
            return None
        self._forget(user_id)
        self._drop_old()
        self._searches[user_id] = _Search(inputs, local_change_count(ctx), time.monotonic(), task)
        try:
            async with ctx.db.read() as session:
                return await suggest_dates(session, ctx, data, n=SUGGESTIONS,
                                           exclude_event_id=exclude_event_id)
        except Exception:  # the foreground search answers the error, if it comes again
            log.info("early search for free dates failed", exc_info=True)
            return None

    async def take(self, ctx: AppContext, user_id: int, data: EventInput,
                   exclude_event_id: int | None) -> Suggestions | None:
        """The background search's result for exactly this form, or None (then search now)."""
        found = self._searches.pop(user_id, None)
        if found is None:
            return None
        if found.inputs != _inputs(data, exclude_event_id) or not self._usable(ctx, found):
            found.task.cancel()
            return None
        return await found.task

    def _usable(self, ctx: AppContext, search: _Search) -> bool:
        return (search.changes == local_change_count(ctx)
                and time.monotonic() - search.started < MAX_AGE_S and not search.task.cancelled())

    def _forget(self, user_id: int) -> None:
        found = self._searches.pop(user_id, None)
        if found is not None:
            found.task.cancel()

    def _drop_old(self) -> None:
        """Forms abandoned midway leave their search behind; it goes once it is too old."""
        now = time.monotonic()
        for user_id in [u for u, s in self._searches.items() if now - s.started >= MAX_AGE_S]:
            self._forget(user_id)


def _inputs(data: EventInput, exclude_event_id: int | None) -> tuple[Any, ...]:
    """What decides whether a date is free for the event: its times and place, and its
    title and organisation (a near-duplicate counts as taken). Category and audience only
    make a clash more or less severe, so they may still change after the search began."""
    return (data.title, data.start, data.end, data.all_day, data.district, data.rrule,
            data.organisation_id, exclude_event_id)

