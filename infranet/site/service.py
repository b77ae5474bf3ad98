"""The public site as a component of the service: the routes of each kind of page, made
around one `Site`, the page cache in front of the pages every visitor reads alike, and the
proposal form's jobs (telling proposers the outcome, forgetting them afterwards)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from infranet.component import Component
from infranet.context import AppContext
from infranet.site import (
    directory,
    embed,
    event_list,
    event_page,
    insight_page,
    proposal,
    proposal_outcomes,
    syndication,
)
from infranet.site.page_cache import PageCache
from infranet.site.pages import Site


def build(ctx: AppContext) -> Component:
    site = Site(ctx)
    cache = PageCache(ctx.changes)
    # The same for every visitor: cached. The proposal form carries a per-visitor token.
    shared = [*syndication.routes(site), *event_list.routes(site), *event_page.routes(site),
              *directory.routes(site), *embed.routes(site), *insight_page.routes(site)]
    # `/events/new` comes before `/events/{ref}`, which would otherwise take it.
    routes = [*proposal.routes(site), *_cached(shared, cache, site.language)]

    def status() -> dict[str, Any]:
        return {"ok": True, "page_cache_hits": cache.hits, "page_cache_misses": cache.misses,
                "page_cache_bytes": cache.size}

    return Component("site", routes=routes, status=status, jobs=proposal_outcomes.jobs(site))


def _cached(routes: Iterable[BaseRoute], cache: PageCache,
            language: Callable[[Request], str]) -> list[BaseRoute]:
    wrapped: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route) and route.methods and "GET" in route.methods \
                and inspect.isroutine(route.endpoint):
            route = Route(route.path, cache.wrap(route.endpoint, language),
                          methods=list(route.methods), name=route.name)
        wrapped.append(route)
    return wrapped
