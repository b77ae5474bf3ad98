"""Transactions: writes all or nothing, reads beside a writer, on both engines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from infranet.context import AppContext
from infranet.storage.models import Organisation
from tests.conftest import make_context


def _org(name: str) -> Organisation:
    return Organisation(name=name, name_folded=name.lower(), type="other")


async def _count(ctx: AppContext) -> int:
    async with ctx.db.read() as s:
        return await s.scalar(select(func.count()).select_from(Organisation)) or 0


async def test_a_failed_write_leaves_nothing(ctx: AppContext) -> None:
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as s:
            s.add(_org("Half"))
            await s.flush()
            raise RuntimeError("boom")
    assert await _count(ctx) == 0


async def test_a_read_does_not_wait_for_a_running_write(ctx: AppContext) -> None:
    """A conflict check or a feed must not queue behind a slow write transaction; it sees
    the last committed state, not the writer's uncommitted rows."""
    async with ctx.db.transaction() as s:
        s.add(_org("Committed"))
    writing = asyncio.Event()
    release = asyncio.Event()

    async def slow_writer() -> None:
        async with ctx.db.transaction() as s:
            s.add(_org("Uncommitted"))
            await s.flush()
            writing.set()
            await release.wait()

    writer = asyncio.create_task(slow_writer())
    await writing.wait()
    try:
        assert await asyncio.wait_for(_count(ctx), timeout=2) == 1
    finally:
        release.set()
        await writer
    assert await _count(ctx) == 2


async def test_a_write_inside_a_read_fails_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """Read sessions are READ ONLY on PostgreSQL (SQLite has no such mode), so a write slipped
    into one fails in the PostgreSQL half of every test that takes that path."""
    ctx = await make_context(pg_url, tmp_path)
    try:
        before = await _count(ctx)
        with pytest.raises(DBAPIError, match="read-only"):
            async with ctx.db.read() as s:
                s.add(_org("Sneaky"))
                await s.flush()
        assert await _count(ctx) == before
    finally:
        await ctx.db.dispose()
