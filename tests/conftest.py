"""Shared fixtures. Every storage-backed test runs on SQLite and on PostgreSQL.

The PostgreSQL half needs INFRANET_TEST_DATABASE_URL (an asyncpg URL to a
server where the user may create databases); it is skipped without it. Each
test run creates its own database, named for the run, and drops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from infranet import i18n
from infranet.config import Settings
from infranet.context import AppContext
from infranet.storage.districts import sync_region
from infranet.storage.models import Base
from tests.bot_fixtures import bot, bot_settings, botapi  # noqa: F401  (bot e2e fixtures)
from tests.browser_support import browser  # noqa: F401  (Chromium for the site)

# A message rendered without one of its parameters fails the test that rendered it.
i18n.strict(True)

PG_ENV = "INFRANET_TEST_DATABASE_URL"
ENGINES = ["sqlite", "postgresql"]
TEST_SECRET = b"test-secret-key-not-for-production"


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run set-up work on a loop of its own, also when called from inside a test's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


async def _pg_exec(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def create_pg_database(prefix: str = "infranet_test") -> str:
    """Create an empty database for this run; return its URL."""
    admin = pg_admin_url()
    assert admin is not None
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    run_async(_pg_exec(admin, f'CREATE DATABASE "{name}"'))
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    admin = pg_admin_url()
    assert admin is not None
    name = make_url(url).database
    run_async(_pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of this run with the schema built from the models."""
    if not pg_admin_url():
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by .ci/run)")
    url = create_pg_database()

    run_async(_create_all(url))
    yield url
    drop_pg_database(url)


@pytest.fixture(params=ENGINES)
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database without any schema (for migrations and whole-service tests)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'infranet.db'}"
        return
    if not pg_admin_url():
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by .ci/run)")
    url = create_pg_database("infranet_fresh")
    yield url
    drop_pg_database(url)


async def _truncate_all(url: str) -> None:
    engine = create_async_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


async def _create_all(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty schema on the engine of this parameter."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        run_async(_create_all(url))
        return url
    url = request.getfixturevalue("pg_url")
    run_async(_truncate_all(url))
    return url


def make_settings(db_url: str, data_dir: Path, **sections: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {"database": {"url": db_url}, "service": {"data_dir": data_dir},
                              "http": {"port": 0}}
    for name, section in sections.items():
        values.setdefault(name, {}).update(section)
    return Settings(**values)


async def make_context(db_url: str, data_dir: Path, **sections: dict[str, Any]) -> AppContext:
    ctx = AppContext.create(make_settings(db_url, data_dir, **sections), secret_key=TEST_SECRET)
    async with ctx.db.transaction() as session:
        await sync_region(session, ctx.region)
    return ctx


@pytest.fixture
async def ctx(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    """A ready context (region loaded) on each engine; disposed after the test."""
    context = await make_context(db_url, tmp_path / "data")
    yield context
    await context.db.dispose()
