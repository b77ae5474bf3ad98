"""The network's secretariat is made at set-up (`prepare_database`): one organisation, kept
through restarts and renamed with the configuration, owning the admins who have none."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from infranet.app import prepare_database
from infranet.context import AppContext
from infranet.network.members import add_admin, get_member
from infranet.storage.actors import Actor
from infranet.storage.models import Organisation, OrgStatus
from tests.conftest import TEST_SECRET, make_settings


async def test_prepare_database_makes_the_secretariat_once(fresh_db_url: str, tmp_path: Path) -> None:
    ctx = _context(fresh_db_url, tmp_path, "Sekretariat sieci")
    try:
        await prepare_database(ctx)
        await prepare_database(ctx)  # a restart: no second row
        async with ctx.db.transaction() as session:
            org = await session.scalar(select(Organisation).where(Organisation.type == "federation"))
            assert org is not None and org.name == "Sekretariat sieci"
            assert org.status == OrgStatus.ACTIVE and org.trusted
            owner = await get_member(session, 4242)
            assert owner is not None and owner.organisation_id == org.id
            # An admin added later (the CLI's member add-admin) speaks for it at once.
            later = await add_admin(session, Actor.cli(), 4343)
            assert later.organisation_id == org.id
    finally:
        await ctx.db.dispose()
    renamed = _context(fresh_db_url, tmp_path, "Biuro Sieci")
    try:
        await prepare_database(renamed)
        async with renamed.db.transaction() as session:
            names = (await session.scalars(select(Organisation.name))).all()
            assert list(names) == ["Biuro Sieci"]
            assert await session.scalar(select(func.count()).select_from(Organisation)) == 1
    finally:
        await renamed.db.dispose()


def _context(url: str, tmp_path: Path, name: str) -> AppContext:
    """A service's context on a database without schema yet: prepare_database migrates it."""
    settings = make_settings(url, tmp_path / "data", telegram={"admin_ids": [4242]},
                             network={"secretariat_name": name})
    return AppContext.create(settings, secret_key=TEST_SECRET)
