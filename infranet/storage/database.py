"""One object per process that owns the engine: sessions, transactions, health."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import CursorResult, Result, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from infranet.storage.engine import READ_ONLY, create_engine, create_sessionmaker, is_sqlite


def rows_changed(result: Result[Any]) -> int:
    """How many rows an INSERT, UPDATE or DELETE changed. `AsyncSession.execute` is typed
    as returning a `Result`, but for these statements it is a `CursorResult`, which counts."""
    return result.rowcount if isinstance(result, CursorResult) else 0


class Database:
    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url, echo=echo, pool_size=pool_size)
        self.sessionmaker = create_sessionmaker(self.engine)
        self._sqlite_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())
        self._read_options = {READ_ONLY: True} if self.is_sqlite else {"postgresql_readonly": True}

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back
        on any exception, so a failed operation leaves nothing half-written.

        On SQLite every transaction begins IMMEDIATE (one writer at a time), so the
        process queues its own transactions here, fairly and in order. Left to
        SQLite's busy handler, which polls and is not fair, a background writer (bot
        persistence, a scheduled job) can starve behind a stream of requests until
        its busy timeout fails it.
        """
        async with self._sqlite_queue(), self.sessionmaker() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for work that only reads: conflict checks, listings, feeds.

        On SQLite it neither waits in the write queue nor takes the write lock, so a check
        never queues behind a slow write: each statement reads the latest committed state
        (WAL lets readers run beside the writer; no BEGIN, so no snapshot is held between
        statements). On PostgreSQL the transaction is READ ONLY, so a write slipped in by
        mistake fails loudly instead of passing unnoticed.
        """
        async with self.sessionmaker() as session, session.begin():
            await session.connection(execution_options=self._read_options)
            yield session

    def _sqlite_queue(self) -> asyncio.Lock | contextlib.nullcontext[None]:
        if not self.is_sqlite:
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        queue = self._sqlite_queues.get(loop)
        if queue is None:
            queue = self._sqlite_queues[loop] = asyncio.Lock()
        return queue

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
