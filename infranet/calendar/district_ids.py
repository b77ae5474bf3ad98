"""Districts as the database numbers them: slug -> `districts.id`, and the ids an area covers.

Events store a district id; the region (`infranet.region`) knows districts by slug. Both
the commands (storing an event) and the queries (filtering by area) need the mapping, so
it lives here once, cached per database (the rows change only when the region is synced).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.region import District as RegionDistrict
from infranet.storage.models import District

_district_cache: weakref.WeakKeyDictionary[object, dict[str, int]] = weakref.WeakKeyDictionary()


async def district_id_map(session: AsyncSession, ctx: AppContext) -> dict[str, int]:
    """slug -> districts.id, read once per Database (rows change only when the region is synced)."""
    cached = _district_cache.get(ctx.db)
    if cached is None or any(d.slug not in cached for d in ctx.region.districts):
        rows = await session.execute(select(District.slug, District.id))
        cached = {slug: id_ for slug, id_ in rows.all()}
        _district_cache[ctx.db] = cached
    return cached


async def area_district_ids(session: AsyncSession, ctx: AppContext,
                            areas: Iterable[RegionDistrict]) -> list[int]:
    """Ids of the districts whose events concern `areas`: each area, its parents and children."""
    ids = await district_id_map(session, ctx)
    wanted: dict[str, None] = {}
    for area in areas:
        for district in (area, *area.ancestors, *area.descendants):
            wanted[district.slug] = None
    return [ids[slug] for slug in wanted if slug in ids]
