"""Public site benchmark: pages with 100,000 stored events.

    .venv/bin/python bench/web.py [--events 100000] [--engines sqlite,postgresql] [--seconds 3]

For each engine, with the calendar of `bench/calendar.py` (100,000 events over 640 days,
2 % of them series):
- server time p50/p99 of the event list, a filtered list, a search, a month view and an
  event page, rendered afresh every time (the page cache left out), beside the floor of
  the same stack: the same app answering `/healthz` (one database round trip, no page);
- then, against a uvicorn server in a child process on 127.0.0.1 (as `infranet run`
  serves), cached requests per second of the list and of an event page, beside a constant
  page through the same server and middleware (the floor of the HTTP stack itself).
Targets (issue 16): p99 <= 20 ms on SQLite; >= 1,000 cached requests/s.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder comes first on sys.path, and its calendar.py would be taken
# for the standard library's `calendar` (which email and strptime import): drop it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

import bench.calendar as calendar_bench  # noqa: E402  (its populate, HTTP client, context)
from bench.scratch_db import bench_database  # noqa: E402
from infranet.app import settle_heap  # noqa: E402
from infranet.calendar.event_links import event_path  # noqa: E402
from infranet.component import Component  # noqa: E402
from infranet.context import AppContext  # noqa: E402
from infranet.http import create_app  # noqa: E402
from infranet.storage.models import Event  # noqa: E402

NOW = calendar_bench.NOW


def uncached_app(ctx: AppContext) -> Starlette:
    """The site's routes without the page cache, behind the service's middleware."""
    from infranet.site import directory, embed, event_list, event_page, syndication
    from infranet.site.pages import Site

    site = Site(ctx)
    routes = [*syndication.routes(site), *event_list.routes(site), *event_page.routes(site),
              *directory.routes(site), *embed.routes(site)]
    return create_app(ctx, [Component("site", routes=routes)])


async def call(app: Starlette, path: str) -> tuple[int, bytes]:
    """One GET through the ASGI app, as uvicorn would make it, without a socket."""
    raw_path, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(),
             "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"accept-language", b"pl")],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


async def timings(app: Starlette, paths: list[str], rounds: int) -> dict[str, float]:
    for path in paths[:5]:  # warm-up: templates compiled, statements prepared
        status, body = await call(app, path)
        assert status == 200, (path, status, body[:300])
    times = []
    for i in range(rounds):
        path = paths[i % len(paths)]
        t0 = time.perf_counter()
        status, body = await call(app, path)
        times.append((time.perf_counter() - t0) * 1000)
        assert status == 200, (path, status, body[:300])
    return {"p50": statistics.median(times), "p99": calendar_bench.pct(times, 0.99),
            "bytes": float(len(body))}


async def page_paths(ctx: AppContext) -> dict[str, list[str]]:
    """Paths a visitor would ask for, varied so that no database cache favours one."""
    async with ctx.db.read() as session:
        rows = (await session.execute(
            select(Event.id, Event.title).where(Event.starts_at > NOW)
            .order_by(Event.id).limit(200))).all()
    powiaty = [p.slug for p in ctx.region.powiaty]
    months = [f"{2026 + (11 + i) // 12}-{(11 + i) % 12 + 1:02d}" for i in range(12)]
    return {
        "list": ["/events"],
        "filtered list": [f"/events?area={p}&category=training" for p in powiaty],
        "search": [f"/events?q=wydarzenie+{n}" for n in range(40_000, 40_200, 7)]
        + ["/events?q=przykladowa", "/events?q=ZAŻÓŁĆ"],
        "month view": [f"/events?view=month&month={m}" for m in months],
        "event page": [event_path(row.id, row.title) for row in rows],
    }


def serve(url: str, port: int, data_dir: str) -> None:
    """Child process: the whole site (with its page cache) and a constant page under uvicorn."""
    import uvicorn
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from infranet.calendar.service import build as build_calendar
    from infranet.site.service import build as build_site

    ctx = calendar_bench.context(url, Path(data_dir))
    ctx.clock = lambda: NOW

    async def constant(_request: Any) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>floor</title><p>floor</p>")

    floor = Component("floor", routes=[Route("/floor", constant)])
    app = create_app(ctx, [build_calendar(ctx), build_site(ctx), floor])
    logging.disable(logging.INFO)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def bench_http(url: str, data_dir: Path, seconds: float, page: str) -> dict[str, tuple[float, int]]:
    port = calendar_bench.free_port()
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", url,
                                                 str(port), str(data_dir))
    try:
        for _ in range(300):
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        results = {}
        for name, path in (("floor", "/floor"), ("list", "/events"), ("event page", page)):
            await calendar_bench.throughput(port, path, seconds=0.5)  # fills the cache
            results[name] = await calendar_bench.throughput(port, path, seconds=seconds)
        return results
    finally:
        child.terminate()
        await asyncio.wait_for(child.wait(), timeout=10)


async def run_engine(engine: str, n: int, rounds: int, seconds: float) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="infranet-bench-web-"))
    async with bench_database(engine, "web", data_dir) as url:
        await _measure(engine, url, data_dir, n, rounds, seconds)


async def _measure(engine: str, url: str, data_dir: Path, n: int, rounds: int,
                   seconds: float) -> None:
    ctx = calendar_bench.context(url, data_dir)
    ctx.clock = lambda: NOW
    t0 = time.perf_counter()
    await calendar_bench.populate(ctx, n)  # with the search's words, as saves write them
    print(f"[{engine}] stored {n:,} events in {time.perf_counter() - t0:.1f} s", flush=True)
    settle_heap()
    app = uncached_app(ctx)
    floor = await timings(app, ["/healthz"], rounds)
    print(f"[{engine}] floor, /healthz through the same app (one database round trip): "
          f"p50 {floor['p50']:.2f} ms, p99 {floor['p99']:.2f} ms")
    paths = await page_paths(ctx)
    worst = 0.0
    for name, some in paths.items():
        figures = await timings(app, some, rounds)
        worst = max(worst, figures["p99"])
        print(f"[{engine}] {name:<13} server time p50 {figures['p50']:6.2f} ms, p99 "
              f"{figures['p99']:6.2f} ms ({figures['bytes'] / 1e3:.0f} kB)", flush=True)
    verdict = "meets" if worst <= 20 else "MISSES"
    print(f"[{engine}] worst p99 {worst:.2f} ms: {verdict} the 20 ms target")
    await ctx.db.dispose()
    http = await bench_http(url, data_dir, seconds, paths["event page"][0])
    for name, (rate, errors) in http.items():
        print(f"[{engine}] HTTP {name:<10} {rate:7.0f} req/s"
              + (f" ({errors} errors!)" if errors else ""), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=500, help="requests timed per page kind")
    parser.add_argument("--seconds", type=float, default=3.0, help="per HTTP throughput run")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"site benchmark: {args.events:,} events, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    for engine in args.engines.split(","):
        asyncio.run(run_engine(engine.strip(), args.events, args.rounds, args.seconds))


if __name__ == "__main__":
    main()
