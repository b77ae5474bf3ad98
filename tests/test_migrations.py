"""The schema built by the migrations is the schema of the models, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from infranet.storage.database import Database
from infranet.storage.migrate import head_revision, migrate
from infranet.storage.models import Base


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
