"""Async engine and session factory for SQLite (embedded) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from infranet.storage.sqlite_driver import one_trip_dbapi

log = logging.getLogger(__name__)
SQLITE_BUSY_TIMEOUT_MS = 5000
# Pages are read through a memory map of the file: a page is a memory access instead of a
# read() call, and the pages are the OS cache's, shared by every connection of the pool,
# not a private cache in each. About a quarter off an indexed range query of the calendar.
SQLITE_MMAP_BYTES = 256 * 1024 * 1024
READ_ONLY = "infranet_read_only"  # execution option: a SQLite session that only reads


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> AsyncEngine:
    """Create the engine; for SQLite also the parent directory and the pragmas we rely on."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            private_file(Path(database))
        # The one seam of the one-trip driver (sqlite_driver.py, with the gain it was measured at).
        engine = create_async_engine(url, echo=echo, module=one_trip_dbapi())
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_size=pool_size, pool_pre_ping=True)


def private_dir(path: Path) -> None:
    """Create the directory if missing, readable by this user only (0700): it holds the
    subscribers' addresses and the members' data. An existing one is left as it is."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        return
    path.chmod(0o700)  # mkdir's mode passes through the umask; say exactly what we mean


def private_file(path: Path) -> None:
    """Create an empty SQLite database file with mode 0600 before SQLite opens it.

    SQLite gives the -wal and -shm files (and any rollback journal) the mode of the database
    file, so creating the database private makes all of them private; an empty file is a valid
    empty database. Doing it here, rather than with a umask around the first connect, touches
    no process-wide state while other threads may be creating files. An existing database
    readable by others is kept as it is, with a warning that says how to close it."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("the database %s can be read by other users of this machine (mode %03o): "
                        "run 'chmod 600 %s*' to keep the subscribers' and members' data private",
                        path, mode, path)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL lets readers run beside the single writer; BEGIN IMMEDIATE avoids
    "database is locked" when a read transaction later writes (see PITFALLS)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Reads run without BEGIN: each statement reads the latest committed state on its
        # own (WAL), never waits for the writer and never holds a snapshot open. That saves
        # a round trip to the driver's thread on every check, listing and feed.
        if not connection.get_execution_options().get(READ_ONLY, False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
