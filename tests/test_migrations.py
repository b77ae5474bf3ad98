"""The schema built by the migrations is the schema of the models, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Boolean, Connection, Integer, String, column, insert, inspect, select, table

from infranet.storage.database import Database
from infranet.storage.migrate import alembic_config, head_revision, migrate
from infranet.storage.models import Base, Event
from infranet.storage.types import UTCDateTime


async def test_migrations_build_the_models_schema_from_zero(fresh_db_url: str) -> None:
    db = Database(fresh_db_url)
    try:
        assert await migrate(db) is True
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(
                    c, opts={"compare_type": True}), Base.metadata))
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert diff == [], f"models and migrations differ; run 'make migration MESSAGE=...': {diff}"
        assert set(Base.metadata.tables) <= tables
    finally:
        await db.dispose()


async def test_second_migrate_is_a_no_op(fresh_db_url: str) -> None:
    db = Database(fresh_db_url)
    try:
        await migrate(db)
        assert await migrate(db) is False
        async with db.engine.connect() as conn:
            current = await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision())
        assert current == head_revision()
    finally:
        await db.dispose()


async def test_events_stored_before_0004_are_flagged_long_or_not(fresh_db_url: str) -> None:
    """0004 flags the events already stored by the rule new ones are saved with, so that the
    checks that look back a day for most events still find the longer ones."""
    db = Database(fresh_db_url)
    day = datetime(2027, 10, 31, tzinfo=UTC)
    events = {  # title: (starts_at, ends_at, flagged)
        "two hours": (day, day + timedelta(hours=2), False),
        "the 25-hour day of the DST change": (day - timedelta(hours=1), day + timedelta(hours=24), False),
        "overnight, 26 hours": (day, day + timedelta(hours=26), True),
        "a month": (day, day + timedelta(days=31), True),
    }
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: _upgrade_to(c, "0003"))
            await conn.execute(insert(_DISTRICTS).values(id=1, slug="region", name="Region", kind="region",
                                                         code="28"))
            now = datetime(2026, 11, 24, tzinfo=UTC)
            await conn.execute(insert(_EVENTS), [
                {"uid": f"u{i}", "title": title, "title_folded": title, "starts_at": start, "ends_at": end,
                 "last_ends_at": end, "all_day": False, "district_id": 1, "category": "other",
                 "audiences": [], "status": "scheduled", "moderation": "published", "revision": 0,
                 "source": "cli", "created_at": now, "updated_at": now}
                for i, (title, (start, end, _flag)) in enumerate(events.items())])
        assert await migrate(db) is True
        async with db.engine.connect() as conn:
            flags = dict((await conn.execute(select(Event.title, Event.long_span))).all())
        assert flags == {title: flag for title, (_s, _e, flag) in events.items()}
    finally:
        await db.dispose()


def _upgrade_to(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


_DISTRICTS = table("districts", column("id", Integer), column("slug", String), column("name", String),
                   column("kind", String), column("code", String))
_EVENTS = table("events", *(column(name, Integer) for name in ("district_id", "revision")),
                *(column(name, UTCDateTime()) for name in ("starts_at", "ends_at", "last_ends_at",
                                                           "created_at", "updated_at")),
                *(column(name, String) for name in ("uid", "title", "title_folded", "category", "status",
                                                    "moderation", "source")),
                column("all_day", Boolean), column("audiences", JSON))
