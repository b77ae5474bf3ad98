"""Feed memory benchmark: the server's peak RSS while 1,000 different feed filter sets are asked for.

    .venv/bin/python bench/feed_memory.py [--events 20000] [--feeds 1000] [--engines sqlite,postgresql]
                                          [--cache-mb 64] [--clients 4]

For each engine: stores `--events` events (bench/calendar.py's `populate`: 640 days, every
district, 2 % series), starts the calendar's routes under uvicorn in a process of its own
(bench/calendar.py `--serve`, so the server's memory is measured apart from the client's), and
asks it for `--feeds` different feeds: one or two areas (powiaty and subregions), none to two
categories, none or one audience, half of them gzipped, from `--clients` keep-alive
connections. RSS is read from /proc/PID/status: the floor is the RSS after start and one
feed (the whole calendar); the peak is VmHWM after the run. Target: peak at most 300 MB
(before the cache was bounded in bytes: 4.8 GB after 276 area pairs). The cache's own count
of what it holds, its builds and evictions come from /healthz. Linux only.
"""

from __future__ import annotations

import os
import sys

# bench/ holds calendar.py: drop this folder from sys.path before anything imports the
# standard library's `calendar` (http.cookiejar, under httpx, does; see bench/bot.py).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import importlib.util  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from infranet.calendar.event_input import AUDIENCES, CATEGORIES  # noqa: E402
from infranet.region import Region  # noqa: E402

CALENDAR_BENCH = Path(__file__).resolve().parent / "calendar.py"
MB = 1024 * 1024


def calendar_bench() -> ModuleType:
    """bench/calendar.py, loaded under another name (its own is the standard library's)."""
    spec = importlib.util.spec_from_file_location("bench_calendar", CALENDAR_BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def status_kb(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak resident) of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


async def scratch_database(engine: str, data_dir: Path) -> tuple[str, Callable[[], Awaitable[None]]]:
    """A database for one run and how to drop it: a SQLite file, or a PostgreSQL database on
    INFRANET_TEST_DATABASE_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test)."""
    if engine == "sqlite":
        async def nothing() -> None:
            return None

        return f"sqlite+aiosqlite:///{data_dir / 'bench.db'}", nothing
    admin = os.environ.get("INFRANET_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    name = f"infranet_bench_{uuid.uuid4().hex[:8]}"
    eng = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with eng.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await eng.dispose()

    async def drop() -> None:
        eng = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with eng.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await eng.dispose()

    return make_url(admin).set(database=name).render_as_string(hide_password=False), drop


def start_server(url: str, data_dir: Path, port: int,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The calendar's routes under uvicorn, in a process of its own (bench/calendar.py --serve)."""
    return subprocess.Popen([sys.executable, str(CALENDAR_BENCH), "--serve", url, str(port), str(data_dir)],
                            env={**os.environ, **(env or {})})


async def wait_for(port: int, child: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if child.poll() is not None:
            raise RuntimeError(f"the server exited with {child.returncode}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


def stop_server(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def filter_sets(region: Region, count: int, seed: int = 5) -> list[str]:
    """`count` different query strings: one or two areas, categories, maybe an audience."""
    rng = random.Random(seed)
    areas = [d.slug for d in region.districts if d.kind in ("powiat", "subregion")]
    found: dict[str, None] = {}
    while len(found) < count:
        pairs = [("area", a) for a in rng.sample(areas, rng.randint(1, 2))]
        pairs += [("category", c) for c in rng.sample(CATEGORIES, rng.randint(0, 2))]
        pairs += [("audience", a) for a in rng.sample(AUDIENCES, rng.randint(0, 1))]
        found[urlencode(pairs)] = None
    return list(found)


async def calendar_status(http: httpx.AsyncClient) -> dict[str, Any]:
    return (await http.get("/healthz")).json()["parts"]["calendar"]


async def run_engine(engine: str, args: argparse.Namespace, bc: ModuleType) -> None:
    with tempfile.TemporaryDirectory(prefix="infranet-bench-") as tmp:
        data_dir = Path(tmp)
        url, drop = await scratch_database(engine, data_dir)
        child = None
        try:
            ctx = bc.context(url, data_dir)
            ctx.clock = lambda: bc.NOW
            started = time.perf_counter()
            await bc.populate(ctx, args.events)
            region = ctx.region
            await ctx.db.dispose()
            print(f"[{engine}] stored {args.events:,} events in {time.perf_counter() - started:.1f} s",
                  flush=True)
            port = bc.free_port()
            budget = {"INFRANET_CALENDAR__FEED_CACHE_MB": str(args.cache_mb)}
            child = start_server(url, data_dir, port, budget)
            await wait_for(port, child)
            limits = httpx.Limits(max_connections=args.clients)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300,
                                         limits=limits) as http:
                await http.get("/healthz")
                at_start = status_kb(child.pid, "VmRSS")
                whole = await http.get("/calendar.ics", headers={"Accept-Encoding": "identity"})
                assert whole.status_code == 200
                floor = status_kb(child.pid, "VmRSS")
                print(f"[{engine}] floor: RSS {at_start / 1024:.0f} MB after start, {floor / 1024:.0f} MB "
                      f"after one feed (the whole calendar: {whole.content.count(b'BEGIN:VEVENT'):,} "
                      f"events, {len(whole.content) / MB:.1f} MB)", flush=True)
                queries = filter_sets(region, args.feeds)
                todo = list(enumerate(queries))
                sizes: list[int] = []
                sampled = [floor]

                async def worker() -> None:
                    while todo:
                        n, query = todo.pop()
                        encoding = "gzip" if n % 2 else "identity"
                        response = await http.get(f"/calendar.ics?{query}",
                                                  headers={"Accept-Encoding": encoding})
                        assert response.status_code == 200, (query, response.status_code)
                        sizes.append(len(response.content))

                async def sampler() -> None:
                    while True:
                        sampled.append(status_kb(child.pid, "VmRSS"))
                        await asyncio.sleep(0.2)

                watch = asyncio.create_task(sampler())
                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(args.clients)))
                elapsed = time.perf_counter() - started
                watch.cancel()
                peak = status_kb(child.pid, "VmHWM")
                final = status_kb(child.pid, "VmRSS")
                state = await calendar_status(http)
            sizes.sort()
            print(f"[{engine}] {len(queries):,} different filter sets in {elapsed:.0f} s "
                  f"({len(queries) / elapsed:.0f} feeds/s; feed sizes median "
                  f"{sizes[len(sizes) // 2] / 1e3:.0f} kB, "
                  f"max {sizes[-1] / MB:.1f} MB)")
            print(f"[{engine}] server RSS: peak {peak / 1024:.0f} MB (VmHWM; target <= 300 MB), "
                  f"highest sampled {max(sampled) / 1024:.0f} MB, at the end {final / 1024:.0f} MB; "
                  f"floor {floor / 1024:.0f} MB")
            print(f"[{engine}] feed cache ({args.cache_mb} MiB budget): holds "
                  f"{state['feed_cache_bytes'] / MB:.1f} MiB in {state['feed_cache_feeds']} feeds; "
                  f"{state['feed_builds']:,} builds, {state['feed_cache_evictions']:,} evictions", flush=True)
        finally:
            if child is not None:
                stop_server(child)
            await drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--cache-mb", type=int, default=64, help="[calendar] feed_cache_mb of the server")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    bc = calendar_bench()
    print(f"feed memory benchmark: {args.events:,} events, {args.feeds:,} filter sets, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for engine in args.engines.split(","):
        asyncio.run(run_engine(engine.strip(), args, bc))


if __name__ == "__main__":
    main()
