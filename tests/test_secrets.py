"""The signing key: refused when weak, shared by every instance on one database, adopted from
the file earlier versions kept; and no password of a URL in check-config's output or the log."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from infranet.app import Service, StartupError, prepare_database
from infranet.bot.runtime import webhook_secret
from infranet.context import AppContext
from infranet.logs import setup_logging
from infranet.newsletter import tokens
from infranet.newsletter.subscribers import subscribe
from infranet.security import KEY_FILE, sign
from infranet.storage.database import Database
from infranet.storage.models import ServiceSecret, Subscriber
from tests.conftest import (
    TEST_SECRET,
    create_pg_database,
    drop_pg_database,
    make_settings,
    pg_admin_url,
    run_async,
)
from tests.test_service import free_port, infranet, service_env

STRONG = b"an-operator-made-key-of-40-bytes-or-more!"


async def seed_subscriber(db_url: str, data_dir: Path, email: str = "ala@example.org") -> int:
    """A migrated database with one confirmed subscriber (set up with a key of its own)."""
    os.makedirs(data_dir, exist_ok=True)
    ctx = AppContext.create(make_settings(db_url, data_dir), secret_key=TEST_SECRET)
    try:
        await prepare_database(ctx)
        async with ctx.db.transaction() as session:
            result = await subscribe(session, ctx, email, source="import", consented=True)
        return result.subscriber_id
    finally:
        await ctx.db.dispose()


async def subscriber(db_url: str, subscriber_id: int) -> Subscriber:
    db = Database(db_url)
    try:
        async with db.read() as session:
            row = await session.get(Subscriber, subscriber_id)
            assert row is not None
            return row
    finally:
        await db.dispose()


async def started_context(db_url: str, data_dir: Path, **sections: dict[str, object]) -> AppContext:
    """A context as `infranet run` makes one: no key given, start-up loads it."""
    ctx = AppContext.create(make_settings(db_url, data_dir, **sections))
    await prepare_database(ctx)
    return ctx


def test_an_empty_key_file_stops_the_start_and_a_forged_unsubscribe_with_it(
        tmp_path: Path, fresh_db_url: str) -> None:
    """The attack: an empty data/secret_key became an empty HMAC key, so anyone could compute
    the one-click unsubscribe token of any subscriber. Now the service does not start."""
    data = tmp_path / "data"
    sid = run_async(seed_subscriber(fresh_db_url, data))
    row = run_async(subscriber(fresh_db_url, sid))
    (data / KEY_FILE).write_bytes(b"")
    forged = tokens.make_token(AppContext.create(make_settings(fresh_db_url, data), secret_key=b""),
                               "unsubscribe", row)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "infranet", "run"], cwd=tmp_path,
                               env=service_env(tmp_path, fresh_db_url, INFRANET_HTTP__PORT=str(port)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:  # still running: try the forged one-click unsubscribe, as an attacker would
                httpx.post(f"http://127.0.0.1:{port}/newsletter/unsubscribe?s={sid}&t={forged}",
                           content="List-Unsubscribe=One-Click", timeout=5,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert run_async(subscriber(fresh_db_url, sid)).status == "confirmed", \
            "a token made with an empty key unsubscribed somebody"
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 1
        [line] = [line for line in stderr.splitlines() if line.startswith("infranet:")]
        assert str(data / KEY_FILE) in line and "is empty" in line and "at least 32" in line
        assert "secrets.token_urlsafe" in line  # how to make a good one
        assert "Traceback" not in stderr
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=10)


@pytest.mark.parametrize("where", ["config", "file"])
async def test_a_short_key_is_refused_at_start_with_one_line(
        tmp_path: Path, fresh_db_url: str, where: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    security = {"secret_key": "changeme"} if where == "config" else {}
    if where == "file":
        (data / KEY_FILE).write_text("changeme\n")
    ctx = AppContext.create(make_settings(fresh_db_url, data, security=security))
    try:
        with pytest.raises(StartupError) as refused:
            await prepare_database(ctx)
        message = str(refused.value)
        assert "\n" not in message and "only 8 bytes long" in message and "at least 32" in message
        assert ("[security] secret_key" if where == "config" else str(data / KEY_FILE)) in message
        assert "changeme" not in message
    finally:
        await ctx.db.dispose()


async def test_instances_on_one_database_start_together_and_share_one_key(
        tmp_path: Path, fresh_db_url: str) -> None:
    """Four first starts at once, each with a data directory of its own (as on four hosts):
    one key between them, and so one derived webhook secret. PostgreSQL only: one SQLite file
    serves one process, so four SQLite starts at once are not a deployment (and contend for
    its single writer during migration)."""
    if fresh_db_url.startswith("sqlite"):
        pytest.skip("several instances need PostgreSQL")
    settings = [make_settings(fresh_db_url, tmp_path / f"host{n}", telegram={"mode": "webhook"})
                for n in range(4)]
    contexts = [AppContext.create(s) for s in settings]
    try:
        await asyncio.gather(*(prepare_database(ctx) for ctx in contexts))
        keys = {ctx.secret_key for ctx in contexts}
        assert len(keys) == 1 and len(keys.pop()) >= 32
        assert len({webhook_secret(ctx) for ctx in contexts}) == 1
        async with contexts[0].db.read() as session:
            assert await session.scalar(select(func.count()).select_from(ServiceSecret)) == 1
        restarted = await started_context(fresh_db_url, tmp_path / "host9")
        assert restarted.secret_key == contexts[0].secret_key
        await restarted.db.dispose()
        configured = await started_context(fresh_db_url, tmp_path / "host9",
                                           security={"secret_key": STRONG.decode()})
        assert configured.secret_key == STRONG  # a configured key wins
        await configured.db.dispose()
    finally:
        for ctx in contexts:
            await ctx.db.dispose()


async def test_the_key_file_of_an_earlier_version_is_adopted_so_sent_links_still_work(
        tmp_path: Path, fresh_db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    old_key = b"Zq3-key-generated-by-an-earlier-version-of-infranet-0123456789"
    sid = await seed_subscriber(fresh_db_url, tmp_path / "data")
    row = await subscriber(fresh_db_url, sid)
    (tmp_path / "data" / KEY_FILE).write_bytes(old_key + b"\n")
    sent_link = sign(old_key, "newsletter.unsubscribe", f"{row.id}:{row.email}:{row.token_version}")

    first = await started_context(fresh_db_url, tmp_path / "data")
    other = await started_context(fresh_db_url, tmp_path / "other-host")  # no file there
    try:
        assert first.secret_key == old_key and other.secret_key == old_key
        assert tokens.check_token(other, "unsubscribe", row, sent_link)
        # A file that disagrees with the database is named in the log; the database wins.
        (tmp_path / "other-host").mkdir(exist_ok=True)
        (tmp_path / "other-host" / KEY_FILE).write_bytes(STRONG)
        with caplog.at_level(logging.WARNING, logger="infranet.security"):
            again = await started_context(fresh_db_url, tmp_path / "other-host")
        assert again.secret_key == old_key
        assert any("differs from the secret key kept in the database" in r.getMessage()
                   for r in caplog.records)
        await again.db.dispose()
    finally:
        await first.db.dispose()
        await other.db.dispose()


@pytest.fixture
def pg_only_url() -> Iterator[str]:
    """Several service instances share one database only on PostgreSQL (SQLite serves one)."""
    if not pg_admin_url():
        pytest.skip("needs INFRANET_TEST_DATABASE_URL")
    url = create_pg_database("infranet_two")
    yield url
    drop_pg_database(url)


async def test_a_link_made_by_one_instance_works_on_the_other(tmp_path: Path, pg_only_url: str) -> None:
    """Two services (real HTTP) on one PostgreSQL database, neither configured with a key:
    the unsubscribe and preferences links one of them mails are accepted by the other."""
    sid = await seed_subscriber(pg_only_url, tmp_path / "seed")
    # As `infranet run` (app.run_service) starts: prepare (migrate, load the key), then build.
    contexts = [await started_context(pg_only_url, tmp_path / name) for name in ("a", "b")]
    services = [Service(ctx) for ctx in contexts]
    tasks = [asyncio.create_task(service.run(prepared=True)) for service in services]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.started.wait() for s in services)), 30)
        a, b = services
        row = await subscriber(pg_only_url, sid)
        port_b = b.server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}", timeout=10) as client:
            prefs = urlsplit(tokens.link(a.ctx, "preferences", row))
            shown = await client.get(f"{prefs.path}?{prefs.query}")
            assert shown.status_code == 200 and "ala@example.org" in shown.text
            unsub = urlsplit(tokens.link(a.ctx, "unsubscribe", row))
            done = await client.post(f"{unsub.path}?{unsub.query}", content="List-Unsubscribe=One-Click",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert done.status_code == 200
        assert (await subscriber(pg_only_url, sid)).status == "unsubscribed"
    finally:
        for service in services:
            service.stopping.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)


def test_check_config_masks_the_password_of_every_url(tmp_path: Path) -> None:
    env = service_env(tmp_path, "postgresql+asyncpg://infranet:db-pass-71@db.internal:5432/infranet",
                      INFRANET_TELEGRAM__BASE_URL="https://relay:tg-pass-72@botapi.internal/bot")
    shown = infranet(tmp_path, env, "check-config")
    assert shown.returncode == 0, shown.stderr
    printed = json.loads(shown.stdout.split("\n", 1)[1])
    assert printed["database"]["url"] == "postgresql+asyncpg://infranet:***@db.internal:5432/infranet"
    assert printed["telegram"]["base_url"] == "https://relay:***@botapi.internal/bot"
    # A URL refused by validation is quoted in the error, masked too.
    env["INFRANET_DATABASE__URL"] = "postgres://infranet:db-pass-73@db.internal/infranet"
    refused = infranet(tmp_path, env, "check-config")
    assert refused.returncode == 2 and "postgres://infranet:***@db.internal" in refused.stderr
    for output in (shown, refused):
        assert "pass-7" not in output.stdout + output.stderr


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_lines_never_show_the_password_of_a_url(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    """Passwords the settings do not know as secrets (a URL in a driver's message, a relay's
    URL in an exception) are masked as well as the configured ones."""
    setup_logging(make_settings("sqlite+aiosqlite:///x.db", tmp_path))
    log = logging.getLogger("infranet.test")
    log.warning("cannot connect to %s", "postgresql+asyncpg://infranet:log-pass-81@db/infranet")
    try:
        raise ConnectionError("smtp://mailer:log-pass-82@mail.internal:587 refused the login")
    except ConnectionError:
        log.exception("sending failed")
    err = capsys.readouterr().err
    assert "cannot connect to postgresql+asyncpg://infranet:***@db/infranet" in err
    assert "smtp://mailer:***@mail.internal:587 refused the login" in err and "Traceback" in err
    assert "log-pass" not in err
