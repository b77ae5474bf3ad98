"""The calendar as a component of the service: its HTTP routes (feeds, page, JSON API)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from infranet.calendar.feed import FeedCache
from infranet.calendar.http import CalendarHttp
from infranet.component import Component
from infranet.context import AppContext


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

    return Component("calendar", routes=web.routes(), stop=stop, status=status)
