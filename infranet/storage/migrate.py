"""Apply the Alembic migrations shipped inside the package."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from infranet.storage.database import Database

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant will do: it only has to be the same in every instance.
PG_MIGRATION_LOCK = 0x1AF2A7E7


def alembic_config(url: str = "sqlite://") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> tuple[str | None, str | None]:
    if connection.dialect.name == "postgresql":
        # Two instances starting together must not both migrate.
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
    before = MigrationContext.configure(connection).get_current_revision()
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
    return before, MigrationContext.configure(connection).get_current_revision()


async def migrate(db: Database) -> bool:
    """Bring the schema to head; return True when anything was applied."""
    async with db.engine.begin() as conn:
        before, after = await conn.run_sync(_upgrade)
    if before == after:
        log.info("database schema is up to date (revision %s)", after)
        return False
    log.info("database schema migrated from %s to %s", before or "empty", after)
    return True


async def pending(db: Database) -> bool:
    async with db.engine.connect() as conn:
        current = await conn.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision())
    return current != head_revision()
