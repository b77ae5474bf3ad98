"""The schema built by the migrations is the schema of the models, on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from infranet.storage.database import Database
from infranet.storage.migrate import head_revision, migrate
from infranet.storage.models import Base
from tests.conftest import create_pg_database, drop_pg_database, pg_admin_url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if not pg_admin_url():
        pytest.skip("PostgreSQL tests need INFRANET_TEST_DATABASE_URL")
    url = create_pg_database("infranet_migr")
    yield url
    drop_pg_database(url)


async def test_migrations_build_the_models_schema_from_zero(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        assert await migrate(db) is True
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(
                    c, opts={"compare_type": True}), Base.metadata))
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert diff == [], f"models and migrations differ; run 'make migration': {diff}"
        assert set(Base.metadata.tables) <= tables
    finally:
        await db.dispose()


async def test_second_migrate_is_a_no_op(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        await migrate(db)
        assert await migrate(db) is False
        async with db.engine.connect() as conn:
            current = await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision())
        assert current == head_revision()
    finally:
        await db.dispose()
