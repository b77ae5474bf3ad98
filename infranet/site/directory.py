"""(being written)"""

from __future__ import annotations

from starlette.routing import BaseRoute

from infranet.site.pages import Site


def routes(site: Site) -> list[BaseRoute]:
    return []
