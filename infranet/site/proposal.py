"""(being written)"""

from __future__ import annotations

from starlette.routing import BaseRoute

from infranet.component import Job
from infranet.site.pages import Site


def routes(site: Site) -> list[BaseRoute]:
    return []


def jobs(site: Site) -> list[Job]:
    return []
