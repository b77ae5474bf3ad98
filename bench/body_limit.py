"""Body-limit benchmark: what one huge chunked POST costs the server's memory.

    .venv/bin/python bench/body_limit.py [--gigabytes 1] [--repeat 3]

Starts the service (`python -m infranet run`, SQLite in a scratch directory, the bot off)
in its own process, so its memory is measured apart from the client's, and POSTs to
`/newsletter/subscribe`:

- floor: one small valid sign-up form (what any POST costs);
- huge: one chunked POST of `--gigabytes` GB of form data, in fields just under 1 MiB
  (no Content-Length, so only a cap counted while the body streams in can stop it).
  "client sent" is how much of it the client got to send before the server answered and
  closed the connection.

For each, the server's RSS growth is its peak resident set while the request ran (VmHWM,
reset before each request through /proc/PID/clear_refs) minus its resident set just
before. A warm-up request first makes the lazy imports and template compilations that any
first request makes. Target for the huge POST: at most 10 MB. Linux only.
"""

from __future__ import annotations

import os
import sys

# bench/ holds calendar.py: drop this folder from sys.path before anything imports the
# standard library's `calendar` (http.cookiejar, under httpx, does; as bench/bot.py explains).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402

MB = 1024 * 1024
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Make VmHWM start again from the current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def start_service(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRANET_")}
    env.update({"INFRANET_CONFIG": "", "INFRANET_HTTP__PORT": str(port),
                "INFRANET_SERVICE__DATA_DIR": str(workdir / "data"),
                "INFRANET_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'data' / 'infranet.db'}",
                "INFRANET_NEWSLETTER__FORM_PER_MINUTE": "0"})
    process = subprocess.Popen([sys.executable, "-m", "infranet", "run"], cwd=workdir, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the service did not answer /healthz within 60 s")


class Chunked:
    """A chunked form body of `total` bytes: fields just under 1 MiB each, the most a form
    parser keeps per field (Starlette refuses one larger field outright, but keeps up to
    1,000 fields), so without a cap on the body the server holds all of it. Counts what
    the client got to send."""

    FIELD = 1024 * 1024 - 64

    def __init__(self, total: int) -> None:
        self.total, self.sent = total, 0

    def __iter__(self) -> Iterator[bytes]:
        block = b"a" * (64 * 1024)
        yield b"consent=yes&email=x%40example.org"
        while self.sent < self.total:
            yield b"&districts="
            left = self.FIELD
            while left > 0 and self.sent < self.total:
                piece = block[:min(left, len(block))]
                yield piece
                left -= len(piece)
                self.sent += len(piece)


def measure(pid: int, send: object) -> tuple[float, float, str]:
    """(RSS growth MB, seconds, outcome) of one request made by `send()`."""
    time.sleep(0.3)  # let the previous request's garbage go
    before = status_kb(pid, "VmRSS")
    reset_peak(pid)
    started = time.perf_counter()
    try:
        response = send()  # type: ignore[operator]
        outcome = f"{response.status_code}"
    except httpx.HTTPError as exc:
        outcome = f"{type(exc).__name__}"
    elapsed = time.perf_counter() - started
    time.sleep(0.2)
    return (status_kb(pid, "VmHWM") - before) / 1024, elapsed, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    total = int(args.gigabytes * 1024 * MB)
    with tempfile.TemporaryDirectory(prefix="infranet-bench-body-") as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}/newsletter/subscribe"
        process = start_service(Path(tmp), port)
        try:
            n = [0]

            def small() -> httpx.Response:
                n[0] += 1
                return httpx.post(url, data={"email": f"osoba{n[0]}@example.org", "consent": "yes"},
                                  timeout=60)

            small()  # warm-up
            print(f"server pid {process.pid}, RSS after start and warm-up "
                  f"{status_kb(process.pid, 'VmRSS') / 1024:.1f} MB")
            print(f"{'request':<34} {'RSS growth':>11} {'time':>8}  answer  client sent")
            for _ in range(args.repeat):
                growth, elapsed, outcome = measure(process.pid, small)
                label = "floor: one small valid POST"
                print(f"{label:<34} {growth:>8.2f} MB {elapsed:>6.2f} s  {outcome:<6}")
                body = Chunked(total)
                growth, elapsed, outcome = measure(
                    process.pid, lambda body=body: httpx.post(url, content=iter(body), timeout=600,
                                                              headers=FORM))
                label = f"one {args.gigabytes:g} GB chunked POST"
                print(f"{label:<34} {growth:>8.2f} MB {elapsed:>6.2f} s  {outcome:<6}  "
                      f"{body.sent / MB:.1f} MB of {total / MB:.0f} MB")
            print(f"server RSS at the end {status_kb(process.pid, 'VmRSS') / 1024:.1f} MB "
                  f"(target: huge POST growth <= 10 MB)")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)


if __name__ == "__main__":
    main()
