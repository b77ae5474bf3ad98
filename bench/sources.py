"""Following member calendars by URL: refresh rounds over 200 sources of 100 events each.

    .venv/bin/python bench/sources.py [--sources 200] [--events 100] [--engines sqlite,postgresql]

A uvicorn server in a child process on 127.0.0.1 serves every source's calendar with an
ETag (304 to a matching If-None-Match); `POST /bump?share=0.1` moves one event in that share
of the calendars. For each engine: the first round (every source new: fetched and
imported), a round when nothing changed (all 304), and a round after 10% changed (those
fetched and imported again, the rest 304) — each as `source_refresh.refresh_due` runs it in
the service, with `[sources] allow_private` on to reach the loopback server. PostgreSQL uses
a scratch database (created and dropped) on INFRANET_TEST_DATABASE_URL or
postgresql+asyncpg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import os
import sys

# bench/ holds a calendar.py: drop this folder from sys.path before anything imports the
# standard library's `calendar` (email, http.cookiejar and strptime do).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import hashlib  # noqa: E402
import multiprocessing  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from infranet.calendar.source_refresh import refresh_due  # noqa: E402
from infranet.calendar.sources import add_source  # noqa: E402
from infranet.config import Settings  # noqa: E402
from infranet.context import AppContext  # noqa: E402
from infranet.network.orgs import OrgInput, add_organisation  # noqa: E402
from infranet.storage.actors import Actor  # noqa: E402
from infranet.storage.districts import sync_region  # noqa: E402
from infranet.storage.models import Base, Event  # noqa: E402

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def calendar(source: int, events: int, version: int) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:-//bench {source}//PL"]
    for i in range(events):
        day = datetime(2027, 1, 4) + timedelta(days=(i * 3 + source) % 300)
        if i == 0:
            day += timedelta(days=version)  # the event a bump moves
        start = day.replace(hour=9 + i % 8)
        lines += ["BEGIN:VEVENT", f"UID:s{source}-e{i}@bench", f"SUMMARY:Wydarzenie {i} źródła {source}",
                  f"DTSTART;TZID=Europe/Warsaw:{start:%Y%m%dT%H%M%S}",
                  f"DTEND;TZID=Europe/Warsaw:{start + timedelta(hours=2):%Y%m%dT%H%M%S}",
                  "DTSTAMP:20261101T000000Z", "END:VEVENT"]
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


def serve(port: int, sources: int, events: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    versions = [0] * sources
    cache: dict[tuple[int, int], tuple[bytes, str]] = {}

    def body(n: int) -> tuple[bytes, str]:
        key = (n, versions[n])
        if key not in cache:
            data = calendar(n, events, versions[n])
            cache[key] = (data, '"' + hashlib.sha256(data).hexdigest()[:20] + '"')
        return cache[key]

    async def one(request: Request) -> Response:
        data, tag = body(int(request.path_params["n"]))
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"ETag": tag})
        return Response(data, media_type="text/calendar", headers={"ETag": tag})

    async def bump(request: Request) -> Response:
        count = round(sources * float(request.query_params.get("share", "0.1")))
        for n in range(count):
            versions[n * sources // count] += 1
        return Response(str(count))

    app = Starlette(routes=[Route("/cal/{n:int}.ics", one), Route("/bump", bump, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def scratch_pg(base: str, name: str, create: bool) -> str:
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        if create:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def run_engine(url: str, data_dir: Path, port: int, sources: int) -> None:
    import httpx

    settings = Settings(database={"url": url}, service={"data_dir": data_dir},
                        sources={"allow_private": True, "timeout_seconds": 30})
    ctx = AppContext.create(settings, secret_key=b"x" * 32)
    clock = [NOW]
    ctx.clock = lambda: clock[0]
    async with ctx.db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with ctx.db.transaction() as session:
        await sync_region(session, ctx.region)
        for n in range(sources):
            if n % 10 == 0:  # ten calendars per organisation
                org = await add_organisation(session, ctx, Actor.cli(), OrgInput(name=f"Bench {n // 10}"))
            await add_source(session, ctx, Actor.cli(), org.id, f"http://127.0.0.1:{port}/cal/{n}.ics")
    engine = make_url(url).get_backend_name()

    async def round_(label: str) -> None:
        began = time.perf_counter()
        outcomes = await refresh_due(ctx)
        took = time.perf_counter() - began
        states: dict[str, int] = {}
        for outcome in outcomes:
            states[outcome.state] = states.get(outcome.state, 0) + 1
        async with ctx.db.read() as session:
            stored = await session.scalar(select(func.count()).select_from(Event))
        print(f"{engine:<10} {label:<28} {took:7.2f} s  {states}  events stored: {stored}")
        for outcome in outcomes:
            if outcome.state == "failed":
                print(f"    source {outcome.source_id} failed: {outcome.error('en')}")
        clock[0] += timedelta(minutes=settings.sources.interval_minutes)

    await round_("first round (all new)")
    await round_("nothing changed (304s)")
    async with httpx.AsyncClient() as client:
        await client.post(f"http://127.0.0.1:{port}/bump?share=0.1")
    await round_("10% changed")
    await ctx.db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    pg_base = os.environ.get("INFRANET_TEST_DATABASE_URL",
                             "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    for engine in args.engines.split(","):
        port = free_port()
        child = multiprocessing.Process(target=serve, args=(port, args.sources, args.events), daemon=True)
        child.start()
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                if engine == "sqlite":
                    await run_engine(f"sqlite+aiosqlite:///{tmp}/bench.db", Path(tmp), port, args.sources)
                else:
                    url = await scratch_pg(pg_base, "infranet_bench_sources", create=True)
                    try:
                        await run_engine(url, Path(tmp), port, args.sources)
                    finally:
                        await scratch_pg(pg_base, "infranet_bench_sources", create=False)
        finally:
            child.terminate()
            child.join()


if __name__ == "__main__":
    asyncio.run(main())
