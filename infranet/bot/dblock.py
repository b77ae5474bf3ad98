"""One queue for the bot's database transactions on SQLite.

SQLite has a single writer and every transaction here begins IMMEDIATE, so
concurrent bot work (the update being handled, the persistence writer, the
moderation job) would otherwise wait in SQLite's busy handler, which polls and
is not fair: under a steady stream of updates a background writer can starve
until the busy timeout fails it. An asyncio.Lock queues them fairly instead.
PostgreSQL needs none of this.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.storage.database import Database

_locks: dict[tuple[int, int], asyncio.Lock] = {}


def _lock_for(db: Database) -> asyncio.Lock | None:
    if not db.is_sqlite:
        return None
    key = (id(db), id(asyncio.get_running_loop()))
    lock = _locks.get(key)
    if lock is None:
        if len(_locks) > 64:  # old loops (tests) leave theirs behind
            _locks.clear()
        lock = _locks[key] = asyncio.Lock()
    return lock


@asynccontextmanager
async def db_transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """`db.transaction()`, queued behind the bot's other SQLite transactions."""
    lock = _lock_for(db)
    if lock is None:
        async with db.transaction() as session:
            yield session
        return
    async with lock, db.transaction() as session:
        yield session
