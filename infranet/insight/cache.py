"""The last gathered figures of each period, kept for a short while: a visitor who changes
the indicator, the measure or the service on /insight asks for the same figures again, and
gathering them reads the period's events, organisations and support (a quarter of a second
for a network of 100,000 events on SQLite).

Fresh as the site's pages are (`infranet/site/page_cache.py`): a change this process makes
to events or to organisations and members drops them at once; any other change (another
instance, the CLI, the support register) shows within `max_age` seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.insight.indicators import Insight, Period, gather

KEPT_PERIODS = 8


class InsightCache:
    def __init__(self, ctx: AppContext, *, max_age: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.max_age = max_age
        self.clock = clock
        self._kept: OrderedDict[Period, tuple[float, tuple[int, int], Insight]] = OrderedDict()

    def _generation(self) -> tuple[int, int] | None:
        events, people = self.ctx.changes.events.token(), self.ctx.changes.people.token()
        return None if events is None or people is None else (events, people)

    async def get(self, session: AsyncSession, period: Period) -> Insight:
        generation = self._generation()
        kept = self._kept.get(period)
        if kept is not None and kept[1] == generation and self.clock() - kept[0] < self.max_age:
            self._kept.move_to_end(period)
            return kept[2]
        insight = await gather(session, self.ctx, period)
        if generation is not None and generation == self._generation():
            self._kept[period] = (self.clock(), generation, insight)
            while len(self._kept) > KEPT_PERIODS:
                self._kept.popitem(last=False)
        return insight
