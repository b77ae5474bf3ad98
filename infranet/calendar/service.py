"""The calendar as a component of the service: its HTTP routes (feeds, page, JSON API) and
its jobs: the round that fetches the calendars members follow by URL (`source_refresh`), and
the daily move of endless series' horizons (`series_horizon`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from infranet.calendar.feed import FeedCache
from infranet.calendar.http import CalendarHttp
from infranet.calendar.series_horizon import extend_endless_series
from infranet.calendar.source_refresh import refresh_due
from infranet.component import Component, Job
from infranet.context import AppContext

SOURCES_ROUND_MINUTES = 5


def build(ctx: AppContext) -> Component:
    # One worker thread for the CPU-bound part of feeds and API answers: with one thread
    # beside it, the event loop waits at most one GIL switch interval (5 ms) to run again.
    cpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="calendar-cpu")
    cache = FeedCache(ctx, cpu=cpu)
    web = CalendarHttp(ctx, cache, cpu=cpu)

    async def stop() -> None:
        cpu.shutdown(wait=False, cancel_futures=True)

    def status() -> dict[str, Any]:
        return {"ok": True, "feed_builds": cache.builds, "feed_cache_bytes": cache.size,
                "feed_cache_feeds": cache.feeds, "feed_cache_evictions": cache.evictions}

    async def refresh_sources() -> None:
        await refresh_due(ctx)

    # Every few minutes: each source is due on its own interval ([sources] interval_minutes),
    # so a round finds the few that are due (or none) and a new source is fetched soon.
    sources = Job("calendar-sources", "fetch the calendars members follow by URL",
                  IntervalTrigger(minutes=SOURCES_ROUND_MINUTES, jitter=30), refresh_sources)
    async def extend_series() -> None:
        await extend_endless_series(ctx)

    # Daily, outside the 02:00-03:00 hour the clocks change in; idempotent across instances.
    horizons = Job("calendar-series-horizon", "endless series keep up with the planning horizon",
                   CronTrigger(hour=4, minute=30, timezone=ctx.tz), extend_series)
    return Component("calendar", routes=web.routes(), stop=stop, status=status,
                     jobs=[sources, horizons])
