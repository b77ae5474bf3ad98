"""The service process and the CLI, as an operator uses them: real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from infranet.config import Settings
from infranet.context import AppContext
from infranet.http import create_app
from tests.conftest import TEST_SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(tmp_path: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRANET_")}
    env.update({"INFRANET_DATABASE__URL": db_url, "INFRANET_SERVICE__DATA_DIR": str(tmp_path / "data"),
                "INFRANET_CONFIG": "", **extra})
    return env


def infranet(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infranet", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def wait_healthy(url: str, process: subprocess.Popen[str], within: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"service exited early: {process.communicate()[1]}")
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url} within {within}s")


def test_run_answers_healthz_and_stops_on_sigterm(tmp_path: Path, fresh_db_url: str) -> None:
    port = free_port()
    env = service_env(tmp_path, fresh_db_url, INFRANET_HTTP__PORT=str(port))
    process = subprocess.Popen([sys.executable, "-m", "infranet", "run"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        response = wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
        assert time.monotonic() - started < 30
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["parts"]["database"]["ok"] is True
        assert body["parts"]["bot"]["enabled"] is False
        assert "INFRANET_TELEGRAM__TOKEN" in body["parts"]["bot"]["hint"]
        assert {"calendar", "newsletter"} <= set(body["parts"])

        stop_started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        assert time.monotonic() - stop_started < 5, "the service must stop within 5 s"
        assert process.returncode == 0, stderr
        assert "no config file found" in stderr
        assert "Traceback" not in stderr
    finally:
        if process.poll() is None:
            process.kill()


def test_second_instance_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'infranet.db'}"
    first = subprocess.Popen([sys.executable, "-m", "infranet", "run"], cwd=tmp_path,
                             env=service_env(tmp_path, db, INFRANET_HTTP__PORT=str(free_port())),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "data" / "infranet.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        port = free_port()
        second = infranet(tmp_path, service_env(tmp_path, db, INFRANET_HTTP__PORT=str(port)), "run")
        assert second.returncode == 1
        assert "another infranet process already uses" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=10)


def test_unreachable_database_at_start_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    result = infranet(tmp_path, service_env(
        tmp_path, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"), "run")
    assert result.returncode == 1
    assert "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_names_a_typo_and_masks_secrets(tmp_path: Path) -> None:
    env = service_env(tmp_path, "sqlite+aiosqlite:///x.db", INFRANET_TELEGRAM__TOKEN="1:tok-secret")
    (tmp_path / "config.toml").write_text('[newsletter]\nhorizon_dayz = 7\n', encoding="utf-8")
    bad = infranet(tmp_path, env, "check-config")
    assert bad.returncode == 2
    assert "newsletter.horizon_dayz" in bad.stderr and "config.toml" in bad.stderr
    (tmp_path / "config.toml").write_text('[newsletter]\nhorizon_days = 7\n', encoding="utf-8")
    good = infranet(tmp_path, env, "check-config")
    assert good.returncode == 0, good.stderr
    printed = json.loads(good.stdout.split("\n", 1)[1])
    assert printed["newsletter"]["horizon_days"] == 7
    assert printed["telegram"]["token"] == "***"
    assert "tok-secret" not in good.stdout + good.stderr


def test_migrate_demo_seed_and_org_commands(tmp_path: Path, fresh_db_url: str) -> None:
    env = service_env(tmp_path, fresh_db_url)
    first = infranet(tmp_path, env, "migrate")
    assert first.returncode == 0 and "migrated to" in first.stdout, first.stderr
    again = infranet(tmp_path, env, "migrate")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    seeded = infranet(tmp_path, env, "demo", "seed")
    assert seeded.returncode == 0, seeded.stderr
    listed = infranet(tmp_path, env, "org", "list", "--json")
    orgs = json.loads(listed.stdout)
    assert len(orgs) >= 4 and any(o["type"] == "OWES" for o in orgs)
    added = infranet(tmp_path, env, "org", "add", "LGD Barcja", "--type", "LGD",
                     "--district", "gizycki", "--email", "biuro@lgd.example.org")
    assert added.returncode == 0, added.stderr
    typo = infranet(tmp_path, env, "org", "add", "X", "--district", "gizyck")
    assert typo.returncode == 1 and "did you mean: giżycki" in typo.stderr
    admin = infranet(tmp_path, env, "member", "add-admin", "123456")
    assert admin.returncode == 0 and "123456" in admin.stdout


def test_help_everywhere(tmp_path: Path) -> None:
    env = service_env(tmp_path, "sqlite+aiosqlite:///x.db")
    for args in (["--help"], ["run", "--help"], ["org", "add", "--help"], ["demo", "--help"],
                 ["member", "add-admin", "--help"]):
        result = infranet(tmp_path, env, *args)
        assert result.returncode == 0 and "usage: infranet" in result.stdout


async def test_healthz_is_503_when_the_database_is_down(tmp_path: Path) -> None:
    settings = Settings(database={"url": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x"},
                        service={"data_dir": tmp_path})
    ctx = AppContext.create(settings, secret_key=TEST_SECRET)
    try:
        transport = httpx.ASGITransport(app=create_app(ctx, []))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["parts"]["database"]["ok"] is False
    finally:
        await ctx.db.dispose()


def test_form_limit_counts_the_forwarded_client_only_behind_a_trusted_proxy(
        tmp_path: Path, fresh_db_url: str) -> None:
    """Behind a reverse proxy on a trusted address, each forwarded client has its own
    sign-up budget; from an untrusted address, X-Forwarded-For changes nothing."""
    cases = (('["127.0.0.1", "::1"]', [200, 200, 429, 200]), ("[]", [200, 200, 429, 429]))
    for case, (trusted, expected) in enumerate(cases):
        port = free_port()
        env = service_env(tmp_path / f"case{case}", fresh_db_url,
                          INFRANET_HTTP__PORT=str(port), INFRANET_HTTP__TRUSTED_PROXIES=trusted,
                          INFRANET_NEWSLETTER__FORM_BURST="2", INFRANET_NEWSLETTER__FORM_PER_MINUTE="1")
        process = subprocess.Popen([sys.executable, "-m", "infranet", "run"], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
            statuses = []
            for n, client in enumerate(("198.51.100.7", "198.51.100.7", "198.51.100.7", "203.0.113.9")):
                answer = httpx.post(f"http://127.0.0.1:{port}/newsletter/subscribe", timeout=10,
                                    headers={"X-Forwarded-For": client},
                                    data={"email": f"osoba{n}.{port}@example.org", "consent": "yes"})
                statuses.append(answer.status_code)
            assert statuses == expected, (trusted, statuses)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=10)
