"""Event-loop stall benchmark: /healthz latency while eight clients page /api/events over 400 days.

    .venv/bin/python bench/api_stall.py [--events 20000] [--clients 8] [--seconds 20]
                                        [--engines sqlite,postgresql]

For each engine: stores `--events` events (bench/calendar.py's `populate`: 640 days, every
district, 2 % series), starts the calendar's routes and /healthz under uvicorn in a process of
its own (bench/calendar.py `--serve`), then measures /healthz latency from one more
connection, one request every 20 ms:

- floor: with no other load;
- under load: while `--clients` keep-alive connections ask for
  `/api/events?start=<today>&end=<today + 399 days>` (400 whole days) (a full page of 2,000 occurrences out of
  about 13,000) as fast as they are answered.

/healthz reads the database too (a ping), so its latency is the time the event loop and the
connection pool keep it waiting. Target under load: p99 at most 100 ms (before the API paged
and yielded: 4.2 s). Also printed: /api/events latency and pages per second.
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
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import importlib.util  # noqa: E402

import httpx  # noqa: E402


def _load(name: str) -> ModuleType:
    """A sibling bench file as a module (bench/ itself stays off sys.path: see above)."""
    path = Path(__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_feed_memory = _load("feed_memory")
calendar_bench = _feed_memory.calendar_bench
scratch_database = _feed_memory.scratch_database
start_server = _feed_memory.start_server
stop_server = _feed_memory.stop_server
wait_for = _feed_memory.wait_for

PROBE_EVERY = 0.02


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(values: list[float]) -> str:
    return (f"p50 {statistics.median(values):.1f} ms, p99 {pct(values, 0.99):.1f} ms, "
            f"max {max(values):.1f} ms ({len(values)} requests)")


async def probe(port: int, seconds: float) -> list[float]:
    """/healthz every PROBE_EVERY seconds on a connection of its own; latencies in ms."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        await http.get("/healthz")
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await http.get("/healthz")
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            await asyncio.sleep(max(0.0, PROBE_EVERY - (time.perf_counter() - started)))
    return latencies


async def load(port: int, path: str, stop: asyncio.Event, latencies: list[float], sizes: list[int]) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
        while not stop.is_set():
            started = time.perf_counter()
            response = await http.get(path, headers={"Accept-Encoding": "identity"})
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text[:200]
            sizes.append(len(response.content))


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
            await ctx.db.dispose()
            print(f"[{engine}] stored {args.events:,} events in {time.perf_counter() - started:.1f} s",
                  flush=True)
            port = bc.free_port()
            child = start_server(url, data_dir, port)
            await wait_for(port, child)
            today = bc.NOW.astimezone(ctx.tz).date()
            path = f"/api/events?start={today}&end={today + timedelta(days=399)}"  # 400 days, the last whole
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                first = (await http.get(path)).json()  # warm: imports, statements, expansions
                assert "events" in first, first
            print(f"[{engine}] {path}: {len(first['events']):,} of {first['count']:,} occurrences "
                  f"on the first page", flush=True)
            floor = await probe(port, args.seconds / 2)
            stop = asyncio.Event()
            api: list[float] = []
            sizes: list[int] = []
            loaders = [asyncio.create_task(load(port, path, stop, api, sizes)) for _ in range(args.clients)]
            await asyncio.sleep(1)  # every client has a request in flight
            loaded = await probe(port, args.seconds)
            stop.set()
            await asyncio.gather(*loaders)
            print(f"[{engine}] /healthz, no load (floor): {describe(floor)}")
            print(f"[{engine}] /healthz, {args.clients} clients on /api/events: {describe(loaded)} "
                  f"(target p99 <= 100 ms)")
            print(f"[{engine}] /api/events (400 days, {statistics.median(sizes) / 1e6:.1f} MB): "
                  f"{describe(api)}; {len(api) / (args.seconds + 1):.1f} pages/s", flush=True)
        finally:
            if child is not None:
                stop_server(child)
            await drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="of /healthz probing under load")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    bc = calendar_bench()
    print(f"API stall benchmark: {args.events:,} events, {args.clients} clients, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for engine in args.engines.split(","):
        asyncio.run(run_engine(engine.strip(), args, bc))


if __name__ == "__main__":
    main()
