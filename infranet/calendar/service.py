"""The calendar as a component of the service: its HTTP routes (feeds, page, JSON API)."""

from __future__ import annotations

from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from infranet.calendar.feed import FeedCache
from infranet.calendar.http import CalendarHttp
from infranet.component import Component
from infranet.context import AppContext


def build(ctx: AppContext, scheduler: AsyncIOScheduler) -> Component:
    cache = FeedCache(ctx)
    web = CalendarHttp(ctx, cache)

    def status() -> dict[str, Any]:
        return {"ok": True, "feed_builds": cache.builds, "feed_cache_bytes": cache.size,
                "feed_cache_feeds": cache.feeds, "feed_cache_evictions": cache.evictions}

    return Component("calendar", routes=web.routes(), status=status)
