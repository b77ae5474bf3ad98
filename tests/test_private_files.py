"""What the service keeps on disk is its own: the SQLite database (with its -wal and -shm files)
and the directory it creates are private, and one SQLite file serves one instance however its
path is spelled."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from infranet.app import Service, StartupError, prepare_database
from infranet.context import AppContext
from tests.conftest import TEST_SECRET, make_settings, run_async


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask of most shells and service managers (022), under which files are made
    readable by everyone unless created otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def test_the_sqlite_database_and_its_directory_are_created_private(
        tmp_path: Path, usual_umask: None) -> None:
    data = tmp_path / "data"
    ctx = AppContext.create(make_settings(f"sqlite+aiosqlite:///{data / 'infranet.db'}", data),
                            secret_key=TEST_SECRET)
    try:
        await prepare_database(ctx)  # migrations and the region: the files are written to
        async with ctx.db.transaction():  # an open connection keeps -wal and -shm in place
            files = {p.name: mode(p) for p in data.iterdir()}
    finally:
        await ctx.db.dispose()
    assert {"infranet.db", "infranet.db-wal", "infranet.db-shm"} <= set(files), files
    assert files == dict.fromkeys(files, 0o600)
    assert mode(data) == 0o700


async def serve(service: Service) -> asyncio.Task[None]:
    task = asyncio.create_task(service.run())
    started = asyncio.create_task(service.started.wait())
    await asyncio.wait({task, started}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    if task.done():
        task.result()  # raises what stopped it
    assert service.started.is_set()
    return task


@pytest.mark.parametrize("linked", ["data directory", "database file"])
async def test_one_sqlite_file_reached_through_a_symlink_cannot_serve_two_instances(
        tmp_path: Path, linked: str) -> None:
    real = tmp_path / "data"
    if linked == "data directory":
        (tmp_path / "link").symlink_to(real, target_is_directory=True)
        other = tmp_path / "link" / "infranet.db"
    else:
        real.mkdir()
        (real / "infranet.db").touch(mode=0o600)
        (tmp_path / "elsewhere").mkdir()
        other = tmp_path / "elsewhere" / "infranet.db"
        other.symlink_to(real / "infranet.db")
    first = Service(AppContext.create(make_settings(f"sqlite+aiosqlite:///{real / 'infranet.db'}", real),
                                      secret_key=TEST_SECRET))
    task = await serve(first)
    try:
        second = Service(AppContext.create(make_settings(f"sqlite+aiosqlite:///{other}", other.parent),
                                           secret_key=TEST_SECRET))
        with pytest.raises(StartupError, match="another infranet process already uses"):
            second_task = await serve(second)
            second.stopping.set()  # it started: stop it, and the check above fails
            await asyncio.wait_for(second_task, 15)
        await second.ctx.db.dispose()
    finally:
        first.stopping.set()
        await asyncio.wait_for(task, 15)


def test_a_database_others_can_read_is_named_at_start(
        tmp_path: Path, usual_umask: None, caplog: pytest.LogCaptureFixture) -> None:
    """An existing deployment's file is not changed behind the operator's back (backups may
    read it), but the start says it is readable by others and how to close it."""
    database = tmp_path / "infranet.db"
    database.touch(mode=0o644)
    with caplog.at_level(logging.WARNING, logger="infranet.storage.engine"):
        ctx = AppContext.create(make_settings(f"sqlite+aiosqlite:///{database}", tmp_path),
                                secret_key=TEST_SECRET)
    run_async(ctx.db.dispose())
    [warning] = [r.getMessage() for r in caplog.records if "can be read by other users" in r.getMessage()]
    assert f"chmod 600 {database}*" in warning and "mode 644" in warning
    assert mode(database) == 0o644
