"""Deployment: the service as an operator runs it, in a container or behind a proxy.

The real `infranet` command runs in a subprocess (uvicorn on a loopback socket, SQLite in a
temporary directory); slow clients are real sockets. What the image itself does (build, user,
HEALTHCHECK, SIGTERM, volumes) is checked by scripts/container-check.sh (`make container-check`),
which needs root and a Docker daemon; here the configuration rules it relies on are checked in
Python.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infranet.app import warn_about_settings
from infranet.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
INFRANET = str(Path(sys.executable).parent / "infranet")
KEY = "k" * 48


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRANET_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(directory: Path, port: int, **sections: dict[str, object]) -> Path:
    """A config file like an operator's: SQLite and data under `directory`."""
    values: dict[str, dict[str, object]] = {
        "http": {"host": "0.0.0.0", "port": port},  # as in the container
        "database": {"url": f"sqlite+aiosqlite:///{directory}/infranet.db"},
        "service": {"data_dir": str(directory / "data")},
        "security": {"secret_key": KEY},
    }
    for name, more in sections.items():
        values.setdefault(name, {}).update(more)
    lines = []
    for name, section in values.items():
        lines.append(f"[{name}]")
        for key, value in section.items():
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            lines.append(f"{key} = {shown}".replace("'", '"'))
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class RunningService:
    process: subprocess.Popen[bytes]
    port: int
    config: Path
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")


def start_service(directory: Path, config: Path, port: int) -> RunningService:
    stderr = directory / "stderr.log"
    process = subprocess.Popen([INFRANET, "--config", str(config), "run"], cwd=directory,
                               env=clean_env(), stdout=subprocess.DEVNULL,
                               stderr=stderr.open("wb"))
    service = RunningService(process, port, config, stderr)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited: {service.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return service
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no /healthz within 60 s: {service.log()}")


def stop_service(service: RunningService) -> None:
    if service.process.poll() is None:
        service.process.terminate()
        try:
            service.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()


HEADER_TIMEOUT = 1.0
KEEP_ALIVE = 1
MAX_CONNECTIONS = 6


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    directory = tmp_path_factory.mktemp("service")
    port = free_port()
    config = write_config(directory, port, http={
        "public_base_url": "http://infranet.example.org",
        "header_timeout_s": HEADER_TIMEOUT, "max_header_bytes": 8192,
        "keep_alive_timeout_s": KEEP_ALIVE, "max_connections": MAX_CONNECTIONS})
    running = start_service(directory, config, port)
    yield running
    stop_service(running)


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    sock.settimeout(limit)
    start = time.monotonic()
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for {limit} s "
                             f"(received {data[:80]!r})") from None
    except ConnectionResetError:
        pass
    return data, time.monotonic() - start


# --- slow and hostile clients ------------------------------------------------------------------

def test_a_client_that_stalls_inside_its_headers_is_disconnected(service: RunningService) -> None:
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: infranet\r\nUser-Agent: slo")
        data, took = read_until_closed(sock, HEADER_TIMEOUT + 5)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert took < HEADER_TIMEOUT + 2


def test_a_client_that_connects_and_sends_nothing_is_disconnected(service: RunningService) -> None:
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        _, took = read_until_closed(sock, HEADER_TIMEOUT + 5)
    assert took < HEADER_TIMEOUT + 2


def test_trickling_a_header_byte_by_byte_does_not_extend_the_deadline(
        service: RunningService) -> None:
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < HEADER_TIMEOUT + 3:
            try:
                sock.sendall(b"a")
            except OSError:
                closed = True
                break
            time.sleep(0.1)
        assert closed or read_until_closed(sock, 1)[0].startswith(b"HTTP/1.1 408")
        assert time.monotonic() - start < HEADER_TIMEOUT + 3


def test_headers_beyond_the_limit_are_refused_with_431(service: RunningService) -> None:
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)
        data, _ = read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 431"), data[:100]


def test_an_idle_keep_alive_connection_is_closed(service: RunningService) -> None:
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data, took = read_until_closed(sock, KEEP_ALIVE + 5)
    assert data.startswith(b"HTTP/1.1 200")
    assert took < KEEP_ALIVE + 2


def test_normal_requests_with_a_body_still_work(service: RunningService) -> None:
    body = b"email=a%40example.org&" + b"x" * 30_000  # head and body arrive in one piece
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        data, _ = read_until_closed(sock, 5)
    assert not data.startswith((b"HTTP/1.1 431", b"HTTP/1.1 408")), data[:100]


def test_connections_beyond_the_cap_get_503(service: RunningService) -> None:
    idle = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", service.port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data, _ = read_until_closed(sock, 5)
        assert data.startswith(b"HTTP/1.1 503"), data[:100]
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)  # the server notices the closed connections
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, _ = read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 200"), data[:100]


# --- health check and start-up warnings -------------------------------------------------------

def test_healthcheck_asks_the_configured_port(service: RunningService, tmp_path: Path) -> None:
    done = subprocess.run([INFRANET, "--config", str(service.config), "healthcheck"],
                          env=clean_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"healthy: http://127.0.0.1:{service.port}/healthz answered 200"

    elsewhere = write_config(tmp_path, free_port())  # nothing listens there
    done = subprocess.run([INFRANET, "--config", str(elsewhere), "healthcheck"],
                          env=clean_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("unhealthy: http://127.0.0.1:")


def test_a_plain_http_public_url_is_warned_about_once(service: RunningService) -> None:
    lines = [line for line in service.log().splitlines() if "public_base_url" in line]
    assert len(lines) == 1, service.log()
    assert "WARNING" in lines[0] and "http://infranet.example.org" in lines[0]
    assert "https" in lines[0]


@pytest.mark.parametrize(("url", "warned"), [
    ("https://infranet.example.org", False),
    ("http://127.0.0.1:8080", False),
    ("http://localhost:8080", False),
    ("http://[::1]:8080", False),
    ("http://infranet.example.org", True),
    ("http://10.0.0.5:8080", True),
])
def test_which_public_urls_are_warned_about(
        url: str, warned: bool, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        warn_about_settings(Settings(http={"public_base_url": url}))
    assert (len(caplog.records) == 1) is warned


def test_healthcheck_fails_once_the_service_stopped(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    running = start_service(tmp_path, config, port)
    stop_service(running)
    assert running.process.returncode == 0, running.log()
    done = subprocess.run([INFRANET, "--config", str(config), "healthcheck"],
                          env=clean_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "unhealthy" in done.stderr


# --- the data directory -----------------------------------------------------------------------

READ_ONLY_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'


def test_a_data_directory_it_cannot_write_is_one_line_and_a_failure(tmp_path: Path) -> None:
    """As the image's user meets a bind mount owned by root, or a read-only volume. Root writes
    through file modes, so as root the directory is made a read-only mount (in a mount
    namespace of the command's own)."""
    data = tmp_path / "data"
    data.mkdir(mode=0o555)
    config = write_config(tmp_path, free_port(), service={"data_dir": str(data)})
    command = [INFRANET, "--config", str(config), "run"]
    if os.geteuid() == 0:
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("as root, this needs `unshare -m` to make a read-only mount")
        command = ["unshare", "-m", "sh", "-c", READ_ONLY_MOUNT, "sh", str(data), *command]
    done = subprocess.run(command, cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"infranet: the data directory {data} is not writable by this "
                               f"process (uid {os.geteuid()})")
    assert "chown" in lines[0] and "[service] data_dir" in lines[0]


# --- configuration precedence: defaults file < config file < environment -------------------------

@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("INFRANET_") and name != "INFRANET_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


IMAGE_DEFAULTS = ROOT / "deploy" / "container-defaults.toml"
MOUNTED = ('[database]\nurl = "postgresql+asyncpg://infranet:pw@db.example.org/infranet"\n'
           '[http]\nport = 9000\n')


def test_a_mounted_config_file_wins_over_the_image_defaults(
        bare_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`docker run -v ./config.toml:/config/config.toml` runs on what the file says; what the file
    leaves out comes from the image's defaults file, not from the built-in ones."""
    mounted = tmp_path / "config.toml"
    mounted.write_text(MOUNTED, encoding="utf-8")
    monkeypatch.setenv("INFRANET_DEFAULTS", str(IMAGE_DEFAULTS))
    monkeypatch.setenv("INFRANET_CONFIG", str(mounted))
    loaded = load_settings()
    settings = loaded.settings
    assert settings.database.url.startswith("postgresql+asyncpg://infranet:pw@db.example.org/")
    assert settings.http.port == 9000
    assert settings.http.host == "0.0.0.0"  # from the image's defaults
    assert settings.service.data_dir == Path("/data")
    assert (loaded.source, loaded.defaults_source) == (mounted, IMAGE_DEFAULTS)
    assert loaded.env_overrides == ()


def test_without_a_config_file_the_image_defaults_apply(
        bare_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFRANET_DEFAULTS", str(IMAGE_DEFAULTS))
    monkeypatch.setenv("INFRANET_CONFIG", str(ROOT / "deploy" / "config.toml"))
    settings = load_settings().settings
    assert settings.database.url == "sqlite+aiosqlite:////data/infranet.db"
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 8080)


def test_every_environment_override_of_a_file_value_is_named(
        bare_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mounted = tmp_path / "config.toml"
    mounted.write_text(MOUNTED, encoding="utf-8")
    monkeypatch.setenv("INFRANET_DEFAULTS", str(IMAGE_DEFAULTS))
    monkeypatch.setenv("INFRANET_DATABASE__URL", "sqlite+aiosqlite:////data/secret-name.db")
    monkeypatch.setenv("INFRANET_SERVICE__DATA_DIR", "/elsewhere")  # a value of the defaults file
    monkeypatch.setenv("INFRANET_TELEGRAM__TOKEN", "123:abc")  # in no file: not an override
    loaded = load_settings(mounted)
    assert loaded.settings.database.url.endswith("secret-name.db")  # the environment still wins
    messages = [o.message() for o in loaded.env_overrides]
    assert messages == [
        f"config key database.url: $INFRANET_DATABASE__URL overrides the value in {mounted}",
        f"config key service.data_dir: $INFRANET_SERVICE__DATA_DIR overrides the value in "
        f"{IMAGE_DEFAULTS}",
    ]


def test_overrides_are_logged_at_start_without_their_values(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    other = f"sqlite+aiosqlite:///{tmp_path}/other-db-name.db"
    done = subprocess.run([INFRANET, "--config", str(config), "org", "list"], cwd=tmp_path,
                          env=clean_env(INFRANET_DATABASE__URL=other, INFRANET_HTTP__PORT="1"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "overrides the value" in line]
    assert len(lines) == 2, done.stderr
    assert all(" WARNING " in line for line in lines)  # values of the operator's own file
    assert "database.url: $INFRANET_DATABASE__URL" in lines[0]
    assert "http.port: $INFRANET_HTTP__PORT" in lines[1]
    assert "other-db-name" not in done.stderr
    assert (tmp_path / "other-db-name.db").exists()

    shown = subprocess.run([INFRANET, "--config", str(config), "check-config"], cwd=tmp_path,
                           env=clean_env(INFRANET_HTTP__PORT="1"), capture_output=True, text=True,
                           timeout=60)
    assert f"# config key http.port: $INFRANET_HTTP__PORT overrides the value in {config}" \
        in shown.stdout.splitlines()


# --- the image's recipe -----------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_image_bakes_in_no_setting_that_would_override_a_mounted_file() -> None:
    baked = [m.group(1) for word, rest in dockerfile_instructions() if word == "ENV"
             for m in re.finditer(r"(INFRANET_\w+)=", rest)]
    assert set(baked) <= {"INFRANET_DEFAULTS", "INFRANET_CONFIG"}, baked
    assert tomllib.loads(IMAGE_DEFAULTS.read_text(encoding="utf-8"))["http"]["host"] == "0.0.0.0"


def test_the_image_runs_the_cli_as_a_numeric_user_with_a_config_aware_healthcheck() -> None:
    instructions = dockerfile_instructions()
    last = {word: rest for word, rest in instructions}
    assert last["ENTRYPOINT"] == '["infranet"]'
    assert last["CMD"] == '["run"]'
    assert last["USER"] == "10001:10001"
    assert last["HEALTHCHECK"].endswith('CMD ["infranet", "healthcheck"]')


def test_the_image_installs_dependencies_before_the_code() -> None:
    """A code change must not reinstall dependencies: in the final stage the locked install
    comes before anything of the project's code arrives."""
    instructions = dockerfile_instructions()
    final = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    steps = instructions[final:]
    deps = next(i for i, (w, rest) in enumerate(steps) if w == "RUN" and "requirements.lock" in rest)
    code = next(i for i, (w, rest) in enumerate(steps)
                if w == "COPY" and ("infranet" in rest.split()[0] or "/dist" in rest))
    assert deps < code
    assert not any(w == "COPY" and rest.split()[0] in ("infranet", ".") for w, rest in steps)


# --- the lock file ------------------------------------------------------------------------------

def locked_versions() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, pinned = line.partition("==")
            assert sep, f"requirements.lock: {line!r} is not an exact pin (name==version)"
            pins[canonicalize_name(name)] = pinned
    return pins


def test_the_lock_file_pins_every_declared_dependency_within_its_bounds() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    pins = locked_versions()
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run 'make lock'"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {requirement.name}=={pins[name]}, outside {requirement}")


def test_the_installed_versions_are_the_locked_ones() -> None:
    """`make test` (and so CI) installs with the lock file as constraints."""
    from importlib.metadata import PackageNotFoundError, version

    wrong = []
    for name, pinned in locked_versions().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if installed != pinned:
            wrong.append(f"{name} {installed} (locked {pinned})")
    assert not wrong, "installed versions differ from requirements.lock: " + ", ".join(wrong)
