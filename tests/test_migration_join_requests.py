"""0006: requests waiting when it runs become join request rows, so they can still be decided
after the upgrade (the buttons sent before it named members and now answer "expired")."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import JSON, Boolean, Connection, Integer, String, column, insert, select, table

from infranet.storage.database import Database
from infranet.storage.migrate import alembic_config
from infranet.storage.models import MembershipRequest
from infranet.storage.types import UTCDateTime

NOW = datetime(2026, 12, 1, tzinfo=UTC)
_ORGS = table("organisations", column("id", Integer), column("name", String),
              column("name_folded", String), column("type", String), column("status", String),
              column("trusted", Boolean), column("services", JSON),
              column("created_at", UTCDateTime()), column("updated_at", UTCDateTime()))
_MEMBERS = table("members", column("id", Integer), column("telegram_id", Integer),
                 column("display_name", String), column("organisation_id", Integer),
                 column("role", String), column("status", String),
                 column("created_at", UTCDateTime()), column("updated_at", UTCDateTime()))


def _upgrade_to(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def test_waiting_members_become_requests(fresh_db_url: str) -> None:
    db = Database(fresh_db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: _upgrade_to(c, "0005"))
            await conn.execute(insert(_ORGS), [
                {"id": 1, "name": "Fundacja Stara", "name_folded": "fundacja stara", "type": "COP",
                 "status": "active", "trusted": False, "services": [], "created_at": NOW,
                 "updated_at": NOW},
                {"id": 2, "name": "Fundacja Nowa", "name_folded": "fundacja nowa", "type": "COP",
                 "status": "pending", "trusted": False, "services": [], "created_at": NOW,
                 "updated_at": NOW}])
            await conn.execute(insert(_MEMBERS), [
                {"id": 1, "telegram_id": 11, "display_name": "Czeka", "organisation_id": 1,
                 "role": "member", "status": "pending", "created_at": NOW, "updated_at": NOW},
                {"id": 2, "telegram_id": 12, "display_name": "Proponuje", "organisation_id": 2,
                 "role": "member", "status": "pending", "created_at": NOW, "updated_at": NOW},
                {"id": 3, "telegram_id": 13, "display_name": "Jest", "organisation_id": 1,
                 "role": "member", "status": "approved", "created_at": NOW, "updated_at": NOW}])
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: _upgrade_to(c, "0006"))
        async with db.engine.connect() as conn:
            rows = (await conn.execute(select(
                MembershipRequest.member_id, MembershipRequest.organisation_id,
                MembershipRequest.new_organisation, MembershipRequest.status,
                MembershipRequest.created_at).order_by(MembershipRequest.member_id))).all()
        assert [tuple(r) for r in rows] == [(1, 1, False, "pending", NOW), (2, 2, True, "pending", NOW)]
    finally:
        await db.dispose()
