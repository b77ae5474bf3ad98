"""Insight benchmark: the /insight page and the yearly evaluation of a large network.

    .venv/bin/python bench/insight.py [--events 100000] [--support 10000] [--orgs 2000]
                                      [--engines sqlite,postgresql] [--rounds 30]

For each engine, with the calendar of `bench/calendar.py` (100,000 events) plus 2,000
organisations serving random powiaty or subregions with random services, 10,000 support
records, 2,000 referrals and 5,000 newsletter readers:
- server time p50/p99 of `/insight` rendered afresh every time (no page cache), beside the
  floor of the same app answering `/healthz` (one database round trip);
- the yearly evaluation (`infranet report yearly`) as PDF and as XLSX, each made in a child
  process that reports its time and its peak memory (RSS), beside the peak of the same
  child after its imports, before any work (the floor of the process itself).
Targets (issue 17): page <= 200 ms, report <= 10 s, peak memory <= 300 MB.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import date, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text  # noqa: E402

import bench.calendar as calendar_bench  # noqa: E402
from bench.scratch_db import bench_database  # noqa: E402
from bench.web import call, timings  # noqa: E402
from infranet.app import settle_heap  # noqa: E402
from infranet.component import Component  # noqa: E402
from infranet.context import AppContext  # noqa: E402
from infranet.http import create_app  # noqa: E402
from infranet.network.orgs import SERVICES  # noqa: E402
from infranet.region import fold  # noqa: E402
from infranet.storage.models import (  # noqa: E402
    District,
    Organisation,
    Referral,
    Subscriber,
    SupportRecord,
    organisation_districts,
)

NOW = calendar_bench.NOW
YEAR = NOW.year


async def populate_network(ctx: AppContext, orgs: int, support: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    async with ctx.db.read() as session:
        ids = {slug: id_ for slug, id_ in await session.execute(select(District.slug, District.id))}
    areas = [d.slug for d in ctx.region.districts if d.kind in ("powiat", "subregion")]
    powiaty = [d.slug for d in ctx.region.powiaty]
    async with ctx.db.transaction() as session:
        first = 1000
        await session.execute(insert(Organisation), [
            {"id": first + i, "name": f"Organizacja sieci {i}", "name_folded": f"organizacja sieci {i}",
             "type": rng.choice(["LGD", "COP", "OWES", "other"]), "status": "active",
             "services": rng.sample(SERVICES, rng.randint(1, 4)), "created_at": NOW, "updated_at": NOW}
            for i in range(orgs)])
        await session.execute(insert(organisation_districts), [
            {"organisation_id": first + i, "district_id": ids[slug]}
            for i in range(orgs) for slug in set(rng.sample(areas, rng.randint(1, 3)))])
        rows = []
        for _ in range(support):
            name = f"Klient {rng.randrange(support // 2)}"
            rows.append({"organisation_id": first + rng.randrange(orgs), "client_kind": "group",
                         "client_name": name, "client_key": fold(name),
                         "service": rng.choice(SERVICES), "district_id": ids[rng.choice(powiaty)],
                         "given_on": date(YEAR, 1, 1) + timedelta(days=rng.randrange(320)),
                         "source": "import", "created_at": NOW})
        for i in range(0, len(rows), 5000):
            await session.execute(insert(SupportRecord), rows[i:i + 5000])
        await session.execute(insert(Referral), [
            {"from_org_id": first + rng.randrange(orgs), "to_org_id": first + rng.randrange(orgs),
             "client_kind": "ngo", "client_key": f"klient {i}", "consent_at": NOW,
             "status": rng.choice(["pending", "accepted", "declined", "closed"]),
             "created_at": NOW - timedelta(days=rng.randrange(300)), "updated_at": NOW}
            for i in range(2000)])
        await session.execute(insert(Subscriber), [
            {"email": f"r{i}@example.org", "status": "confirmed", "language": "pl",
             "districts": rng.sample(powiaty, rng.randint(0, 2)), "categories": [],
             "confirmed_at": NOW - timedelta(days=rng.randrange(400)), "created_at": NOW,
             "updated_at": NOW}
            for i in range(5000)])
    async with ctx.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux keeps
    that across exec, so a child would report its parent's peak from before the exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report_child(url: str, data_dir: str, kind: str) -> None:
    """Child process: one yearly evaluation; prints JSON with seconds and peak RSS."""
    from infranet.insight.yearly import build_report, render_html, to_pdf, to_xlsx

    floor_mb = peak_rss_mb()

    async def run() -> tuple[float, int]:
        ctx = calendar_bench.context(url, Path(data_dir))
        ctx.clock = lambda: NOW
        t0 = time.perf_counter()
        async with ctx.db.read() as session:
            report = await build_report(session, ctx, YEAR, "pl")
        body = to_xlsx(report) if kind == "xlsx" else to_pdf(render_html(report))
        seconds = time.perf_counter() - t0
        await ctx.db.dispose()
        return seconds, len(body)

    seconds, size = asyncio.run(run())
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "bytes": size, "peak_mb": peak_mb, "floor_mb": floor_mb}))


async def report_in_child(url: str, data_dir: Path, kind: str) -> dict[str, float]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--report", url, str(data_dir), kind,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


async def run_engine(engine: str, events: int, support: int, orgs: int, rounds: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="infranet-bench-insight-"))
    async with bench_database(engine, "insight", data_dir) as url:
        await _measure(engine, url, data_dir, events, support, orgs, rounds)


async def _measure(engine: str, url: str, data_dir: Path, events: int, support: int,
                   orgs: int, rounds: int) -> None:
    ctx = calendar_bench.context(url, data_dir)
    ctx.clock = lambda: NOW
    t0 = time.perf_counter()
    await calendar_bench.populate(ctx, events)
    await populate_network(ctx, orgs, support)
    print(f"[{engine}] stored {events:,} events, {orgs:,} organisations, {support:,} support "
          f"records in {time.perf_counter() - t0:.1f} s", flush=True)
    settle_heap()
    from infranet.site import insight_page
    from infranet.site.pages import Site

    floor_app = create_app(ctx, [])
    floor = await timings(floor_app, ["/healthz"], rounds * 4)
    # Cold: the kept figures dropped before every request, so they are gathered each time
    # (what the first visitor after a change waits for); warm: the figures of the year
    # kept (insight/cache.py), each request another indicator.
    paths = [f"/insight?year={YEAR}&indicator={i}" for i in
             ("events", "organisations", "supported", "subscribers")]
    routes = insight_page.routes(Site(ctx))
    app = create_app(ctx, [Component("site", routes=routes)])
    kept = routes[0].endpoint.__self__.figures  # type: ignore[attr-defined]
    await call(app, paths[0])  # templates compiled once, as in the service
    cold_times = []
    for i in range(rounds):
        kept._kept.clear()
        t0 = time.perf_counter()
        status, _ = await call(app, paths[i % len(paths)])
        cold_times.append((time.perf_counter() - t0) * 1000)
        assert status == 200
    page = await timings(app, paths, rounds)
    status, _ = await call(app, f"/insight/map.png?year={YEAR}")
    assert status == 200
    cold = {"p50": statistics.median(cold_times), "p99": calendar_bench.pct(cold_times, 0.99)}
    for name, figures in (("cold (figures gathered)", cold), ("warm (figures kept)", page)):
        verdict = "meets" if figures["p99"] <= 200 else "MISSES"
        print(f"[{engine}] /insight {name}: server time p50 {figures['p50']:.0f} ms, p99 "
              f"{figures['p99']:.0f} ms (floor /healthz p50 {floor['p50']:.2f} ms): "
              f"{verdict} the 200 ms target", flush=True)
    await ctx.db.dispose()
    for kind in ("pdf", "xlsx"):
        figures = await report_in_child(url, data_dir, kind)
        verdict = "meets" if figures["seconds"] <= 10 and figures["peak_mb"] <= 300 else "MISSES"
        print(f"[{engine}] yearly report {kind.upper()}: {figures['seconds']:.1f} s, "
              f"{figures['bytes'] / 1e3:.0f} kB, peak RSS {figures['peak_mb']:.0f} MB (the same "
              f"process before any work: {figures['floor_mb']:.0f} MB): {verdict} 10 s / 300 MB",
              flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--report":
        report_child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--support", type=int, default=10_000)
    parser.add_argument("--orgs", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"insight benchmark: {args.events:,} events, {args.orgs:,} organisations, "
          f"{args.support:,} support records, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for engine in args.engines.split(","):
        asyncio.run(run_engine(engine.strip(), args.events, args.support, args.orgs, args.rounds))


if __name__ == "__main__":
    main()
