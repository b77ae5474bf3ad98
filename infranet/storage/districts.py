"""Keep the districts table in step with the region file."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.region import Region
from infranet.storage.models import District


async def sync_region(session: AsyncSession, region: Region) -> dict[str, int]:
    """Insert or update one row per district (by slug); return slug -> id.

    Rows of districts no longer in the file are kept: events may point at them.
    """
    existing = {d.slug: d for d in (await session.scalars(select(District))).all()}
    for district in region.districts:  # parents come before their children
        row = existing.get(district.slug)
        parent_id = existing[district.parent.slug].id if district.parent else None
        if row is None:
            row = District(slug=district.slug)
            session.add(row)
            existing[district.slug] = row
        row.name, row.kind, row.code, row.parent_id = (
            district.name, district.kind, district.code, parent_id)
        await session.flush()
    return {slug: row.id for slug, row in existing.items()}


async def district_ids(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(District.slug, District.id))
    return {slug: id_ for slug, id_ in rows}


