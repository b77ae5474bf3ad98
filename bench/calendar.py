"""Calendar benchmark: conflict checks and ICS feeds with 100,000 stored events.

    .venv/bin/python bench/calendar.py [--events 100000] [--engines sqlite,postgresql] [--seconds 3]

For each engine: conflict-check latency p50/p99 through `find_conflicts` (indexed range
queries) beside the baseline of the same check done by scanning the whole table in
Python; cold build of a 10,000-event feed and its rebuild after one event changed; then,
against a uvicorn server in a child process on 127.0.0.1, cached feed throughput (200 with
ETag), 304 throughput, and gzip throughput, measured by a small keep-alive HTTP/1.1 client
for a bounded number of seconds. PostgreSQL uses a scratch database (created and dropped)
on INFRANET_TEST_DATABASE_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import os
import sys

# This file is named calendar.py: drop its folder from sys.path before anything imports the
# standard library's `calendar` (email, http.cookiejar and strptime do).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from bench.public_paths import use_public_paths  # noqa: E402
from bench.scratch_db import bench_database  # noqa: E402
from infranet.app import settle_heap  # noqa: E402
from infranet.calendar import recurrence, wallclock  # noqa: E402
from infranet.calendar.conflicts import find_conflicts, place_relation  # noqa: E402
from infranet.calendar.event_input import LONG_SPAN, EventInput  # noqa: E402
from infranet.calendar.event_search import event_words  # noqa: E402
from infranet.calendar.events import update_event  # noqa: E402
from infranet.calendar.feed import FeedCache  # noqa: E402
from infranet.calendar.feed_filter import FeedFilter  # noqa: E402
from infranet.config import Settings  # noqa: E402
from infranet.context import AppContext  # noqa: E402
from infranet.region import fold  # noqa: E402
from infranet.storage.actors import Actor  # noqa: E402
from infranet.storage.districts import sync_region  # noqa: E402
from infranet.storage.models import Base, Event, EventWord, Organisation  # noqa: E402

use_public_paths()  # INFRANET_BENCH_PUBLIC: without the SQLite fast paths (see there)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CATEGORIES = ["training", "meeting", "consultation", "fair", "other"]  # conference: exactly 10 %
AUDIENCES = ["ngo", "residents", "youth", "seniors", "local-government"]
FEED = FeedFilter(categories=("conference",))


def context(url: str, data_dir: Path) -> AppContext:
    settings = Settings(database={"url": url}, service={"data_dir": data_dir}, http={"port": 0})
    return AppContext.create(settings, secret_key=b"bench-secret-key")


async def populate(ctx: AppContext, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    engine = create_async_engine(ctx.db.url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    async with ctx.db.transaction() as s:
        ids = await sync_region(s, ctx.region)
        for i in range(40):
            s.add(Organisation(name=f"Organizacja {i}", name_folded=f"organizacja {i}", type="other",
                               contact_email=f"org{i}@example.org"))
    weights = [(d.slug, 20 if d.kind == "powiat" else 3 if d.kind == "subregion" else 2)
               for d in ctx.region.districts]
    slugs = [s for s, _ in weights]
    cum = [w for _, w in weights]
    tz = ctx.tz
    rows = []
    first = NOW - timedelta(days=80)
    span_minutes = 640 * 24 * 60
    for i in range(n):
        start = (first + timedelta(minutes=rng.randrange(span_minutes) // 30 * 30)).astimezone(tz)
        all_day = rng.random() < 0.05
        rule = None
        if all_day:
            day = start.date()
            starts_at = wallclock.local_midnight(day, tz)
            ends_at = wallclock.local_midnight(day + timedelta(days=rng.randint(1, 3)), tz)
        else:
            start = start.replace(hour=rng.randint(8, 18), minute=rng.choice([0, 30]))
            starts_at = start.astimezone(UTC)
            ends_at = starts_at + timedelta(minutes=30 * rng.randint(2, 12))
        last = ends_at
        if rng.random() < 0.02:
            rule = rng.choice(["FREQ=WEEKLY;COUNT=6", "FREQ=MONTHLY;COUNT=6", "FREQ=WEEKLY;COUNT=10"])
            last = recurrence.expand(rule, starts_at, ends_at, all_day, tz)[-1].end
        title = f"Wydarzenie {i}"
        changed = NOW - timedelta(seconds=rng.randrange(200 * 86400))  # posted over the past months
        rows.append({
            "uid": f"bench-{i}@infranet", "title": title, "title_folded": fold(title),
            "organisation_id": rng.randint(1, 40), "starts_at": starts_at, "ends_at": ends_at,
            "last_ends_at": last, "long_span": ends_at - starts_at > LONG_SPAN, "all_day": all_day,
            "rrule": rule,
            "district_id": ids[rng.choices(slugs, cum)[0]],
            "category": "conference" if i % 10 == 0 else rng.choice(CATEGORIES),
            "audiences": rng.sample(AUDIENCES, rng.randint(1, 2)), "status": "scheduled",
            "moderation": "published", "revision": 0, "source": "demo",
            "created_at": changed, "updated_at": changed, "location": f"ul. Przykładowa {i}",
            "description": "Opis wydarzenia, z przecinkami; średnikami i polskimi znakami: zażółć.",
        })
    async with ctx.db.transaction() as s:
        for i in range(0, n, 5000):
            await s.execute(insert(Event), rows[i:i + 5000])
        # The site's search index (calendar.event_search), as add_event writes it.
        ids = dict((await s.execute(select(Event.uid, Event.id))).tuples().all())
        words = [{"word": w, "event_id": ids[row["uid"]]} for row in rows
                 for w in event_words(SimpleNamespace(organiser_name=None, **row))]
        for i in range(0, len(words), 20000):
            await s.execute(insert(EventWord), words[i:i + 20000])
    if ctx.db.dialect == "postgresql":
        async with ctx.db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    else:
        async with ctx.db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()


def candidates(ctx: AppContext, count: int) -> list[EventInput]:
    rng = random.Random(11)
    powiaty = ctx.region.powiaty
    out = []
    for _ in range(count):
        day = (NOW + timedelta(days=rng.randint(1, 500))).astimezone(ctx.tz).date()
        start = datetime(day.year, day.month, day.day, rng.randint(8, 17), 0, tzinfo=ctx.tz)
        if start.astimezone(UTC).astimezone(ctx.tz).hour != start.hour:
            continue
        out.append(EventInput("Kandydat", start, start + timedelta(hours=2),
                              district=rng.choice(powiaty).slug, category=rng.choice(CATEGORIES),
                              audiences=[rng.choice(AUDIENCES)]))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench_conflicts(ctx: AppContext, count: int) -> dict[str, float]:
    cands = candidates(ctx, count + 50)
    times, found = [], 0
    for i, cand in enumerate(cands):
        t0 = time.perf_counter()
        async with ctx.db.read() as s:  # as /check, /api/conflicts and the CLI do
            report = await find_conflicts(s, ctx, cand)
        if i >= 50:  # warm-up
            times.append((time.perf_counter() - t0) * 1000)
            found += len(report.conflicts)
    # Baseline: the same overlap check by loading the whole table and scanning it in Python.
    scan_times = []
    for cand in cands[:5]:
        t0 = time.perf_counter()
        async with ctx.db.read() as s:
            rows = (await s.execute(select(Event.id, Event.starts_at, Event.ends_at, Event.rrule,
                                           Event.all_day, Event.district_id, Event.status))).all()
            slugs = {i: slug for slug, i in (await s.execute(text("SELECT slug, id FROM districts"))).all()}
        start = cand.start.astimezone(UTC)
        end = cand.end.astimezone(UTC)
        district = ctx.region.get(cand.district)  # a slug ("olsztyn" matches two names)
        hits = 0
        for row in rows:
            if row.status != "scheduled":
                continue
            other = ctx.region.by_slug.get(slugs[row.district_id])
            if other is None or place_relation(district, other) is None:
                continue
            for span in recurrence.expand(row.rrule, row.starts_at, row.ends_at, row.all_day, ctx.tz):
                if span.start < end and span.end > start:
                    hits += 1
                    break
        scan_times.append((time.perf_counter() - t0) * 1000)
    # For scale: one trivial round trip through the same driver and transaction handling.
    trips = []
    for _ in range(200):
        t0 = time.perf_counter()
        async with ctx.db.read() as s:
            await s.execute(text("SELECT 1"))
        trips.append((time.perf_counter() - t0) * 1000)
    return {"p50": statistics.median(times), "p99": pct(times, 0.99), "mean_conflicts": found / len(times),
            "scan_p50": statistics.median(scan_times), "trip_p50": statistics.median(trips),
            "trip_p99": pct(trips, 0.99)}


async def bench_feed(ctx: AppContext) -> dict[str, float]:
    cache = FeedCache(ctx, check_interval=0)
    t0 = time.perf_counter()
    feed = await cache.get(FEED)
    cold = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    await cache.get(FEED)
    warm = (time.perf_counter() - t0) * 1000
    # One event changed, then the feed asked for again: ten times, each a different event.
    rebuilds = []
    for i in range(10):
        async with ctx.db.transaction() as s:
            event = await s.scalar(select(Event).where(Event.category == "conference", Event.rrule.is_(None),
                                                       Event.starts_at > NOW).order_by(Event.id)
                                   .offset(i).limit(1))
            assert event is not None
            await update_event(s, ctx, Actor.cli(), event.id, EventInput(
                event.title + " (zmiana)", event.starts_at, event.ends_at, all_day=event.all_day,
                district=event.district.slug, category="conference", audiences=list(event.audiences),
                organisation_id=event.organisation_id))
        t0 = time.perf_counter()
        rebuilt = await cache.get(FEED)
        rebuilds.append((time.perf_counter() - t0) * 1000)
        assert rebuilt.etag != feed.etag and rebuilt.count == feed.count
        feed = rebuilt
    t0 = time.perf_counter()
    async with ctx.db.read() as s:
        from infranet.calendar.event_queries import events_version

        for _ in range(20):
            await events_version(s)
        t1 = time.perf_counter()
        await events_version(s, with_count=True)
        count_ms = (time.perf_counter() - t1) * 1000
    version_ms = (time.perf_counter() - t0 - count_ms / 1000) * 1000 / 20
    return {"events": feed.count, "bytes": len(feed.body), "cold": cold, "warm": warm,
            "rebuild_first": rebuilds[0], "rebuild": statistics.median(rebuilds),
            "rebuild_max": max(rebuilds),
            "version_check": version_ms, "count": count_ms}


# --- HTTP ---------------------------------------------------------------------------------


def serve(url: str, port: int, data_dir: str) -> None:
    """Child process: the calendar's HTTP routes under uvicorn on 127.0.0.1."""
    import logging

    import uvicorn

    from infranet.calendar.service import build
    from infranet.http import create_app

    ctx = context(url, Path(data_dir))
    ctx.clock = lambda: NOW
    app = create_app(ctx, [build(ctx)])
    logging.disable(logging.INFO)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def _client(port: int, path: str, headers: str, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode()
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            counts[0 if status in (200, 304) else 1] += 1
    finally:
        writer.close()


async def throughput(port: int, path: str, headers: str = "", seconds: float = 3.0,
                     connections: int = 8) -> tuple[float, int]:
    counts = [0, 0]
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(_client(port, path, headers, deadline, counts)
                                            for _ in range(connections))), timeout=seconds + 30)
    return counts[0] / (time.perf_counter() - t0), counts[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def bench_http(url: str, data_dir: Path, seconds: float) -> dict[str, tuple[float, int]]:
    port = free_port()
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", url, str(port),
                                                 str(data_dir))
    try:
        for _ in range(200):
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        small = "/calendar/elcki.ics?category=fair&audience=youth"
        big = "/calendar.ics?category=conference"
        results = {}
        for name, path in (("small", small), ("big", big)):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            raw = await reader.read()
            writer.close()
            head, _, body = raw.partition(b"\r\n\r\n")
            etag = next(line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                        if line.lower().startswith(b"etag:"))
            results[f"{name}_bytes"] = (float(len(body)), 0)
            results[f"{name}_200"] = await throughput(port, path, seconds=seconds)
            results[f"{name}_304"] = await throughput(port, path, f"If-None-Match: {etag}\r\n", seconds)
            results[f"{name}_gzip"] = await throughput(port, path, "Accept-Encoding: gzip\r\n", seconds)
        return results
    finally:
        child.terminate()
        await asyncio.wait_for(child.wait(), timeout=10)


# --- main -----------------------------------------------------------------------------------


async def run_engine(engine: str, n: int, checks: int, seconds: float) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="infranet-bench-"))
    async with bench_database(engine, "calendar", data_dir) as url:
        await _measure(engine, url, data_dir, n, checks, seconds)


async def _measure(engine: str, url: str, data_dir: Path, n: int, checks: int,
                   seconds: float) -> None:
    ctx = context(url, data_dir)
    ctx.clock = lambda: NOW
    t0 = time.perf_counter()
    await populate(ctx, n)
    print(f"[{engine}] stored {n:,} events in {time.perf_counter() - t0:.1f} s", flush=True)
    settle_heap()  # as `infranet run` does once it has started
    c = await bench_conflicts(ctx, checks)
    print(f"[{engine}] conflict check ({checks} candidates, indexed): p50 {c['p50']:.2f} ms, "
          f"p99 {c['p99']:.2f} ms (avg {c['mean_conflicts']:.1f} conflicts found)")
    print(f"[{engine}] baseline full-table scan in Python: {c['scan_p50']:.0f} ms per check "
          f"({c['scan_p50'] / c['p50']:.0f}x slower); an empty read transaction with SELECT 1 takes "
          f"p50 {c['trip_p50']:.2f} ms, p99 {c['trip_p99']:.2f} ms")
    f = await bench_feed(ctx)
    print(f"[{engine}] feed of {f['events']:,} events ({f['bytes'] / 1e6:.1f} MB): cold build "
          f"{f['cold']:.0f} ms, unchanged {f['warm']:.2f} ms, rebuild after one change "
          f"{f['rebuild']:.0f} ms (median of 10; first {f['rebuild_first']:.0f}, max "
          f"{f['rebuild_max']:.0f}); version check {f['version_check']:.2f} ms (row count, every "
          f"5 min: {f['count']:.1f} ms)")
    await ctx.db.dispose()
    h = await bench_http(url, data_dir, seconds)
    for name in ("small", "big"):
        print(f"[{engine}] HTTP {name} feed ({h[name + '_bytes'][0] / 1e3:.0f} kB): "
              f"200 {h[name + '_200'][0]:.0f} req/s, 304 {h[name + '_304'][0]:.0f} req/s, "
              f"gzip {h[name + '_gzip'][0]:.0f} req/s"
              + (" (errors!)" if h[name + '_200'][1] + h[name + '_304'][1] else ""), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per HTTP throughput run")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"calendar benchmark: {args.events:,} events, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    for engine in args.engines.split(","):
        asyncio.run(run_engine(engine.strip(), args.events, args.checks, args.seconds))


if __name__ == "__main__":
    main()
