"""The database a benchmark fills and measures: a SQLite file in its data directory, or a
scratch PostgreSQL database made on INFRANET_TEST_DATABASE_URL's server (default
postgresql+asyncpg://postgres@127.0.0.1:5432/test) and dropped afterwards, even when the
benchmark fails."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def bench_database(engine: str, label: str, data_dir: Path) -> AsyncIterator[str]:
    """The URL of an empty database on `engine` ("sqlite" or "postgresql")."""
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
        return
    admin = os.environ.get("INFRANET_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
    name = f"infranet_bench_{label}_{os.getpid()}"
    await _admin(admin, f'DROP DATABASE IF EXISTS "{name}"')
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
