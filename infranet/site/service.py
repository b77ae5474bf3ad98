"""The public site as a component of the service: the routes of each kind of page, made
around one `Site`, and the proposal form's job that tells proposers the outcome."""

from __future__ import annotations

from infranet.component import Component
from infranet.context import AppContext
from infranet.site import directory, embed, event_list, event_page, proposal, syndication
from infranet.site.pages import Site


def build(ctx: AppContext) -> Component:
    site = Site(ctx)
    # Order matters only where paths overlap: `/events/new` and `/events.rss` before
    # `/events/{ref}`.
    routes = [*proposal.routes(site), *syndication.routes(site), *event_list.routes(site),
              *event_page.routes(site), *directory.routes(site), *embed.routes(site)]
    return Component("site", routes=routes, jobs=proposal.jobs(site))
