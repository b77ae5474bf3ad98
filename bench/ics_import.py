"""Import benchmark: a 20,000-event calendar file imported as an organisation's source (SQLite).

    .venv/bin/python bench/ics_import.py [--events 20000]

A third of the events are weekly series with an EXDATE, half of those with a moved date
(RECURRENCE-ID). Three imports: the first, the same file again, and a copy where 10% moved.
For each: the total time, the time to read and check the file (no transaction), the longest
hold of SQLite's write lock (`ics_file.import_file` writes in transactions of ~0.3 s), and the
latency of a small write made every 100 ms by another process meanwhile (what the running
service's writes wait). The README gives the figures.
"""

from __future__ import annotations

import os
import sys

# bench/ holds a calendar.py: drop this folder from sys.path before anything imports the
# standard library's `calendar`.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from infranet.calendar.ics_file import import_file  # noqa: E402
from infranet.config import Settings  # noqa: E402
from infranet.context import AppContext  # noqa: E402
from infranet.network.orgs import OrgInput, add_organisation  # noqa: E402
from infranet.storage.actors import Actor  # noqa: E402
from infranet.storage.districts import sync_region  # noqa: E402
from infranet.storage.models import Base  # noqa: E402

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PLACES = ["Ełk", "Kętrzyn", "Giżycko", "Olecko", "Pisz", "Gołdap"]


def calendar(events: int, moved: bool = False) -> bytes:
    rnd = random.Random(7)
    out = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//PL", "X-WR-TIMEZONE:Europe/Warsaw"]
    for i in range(events):
        start = datetime(2027, 1, 4, 8) + timedelta(days=rnd.randrange(600), hours=rnd.randrange(10))
        bumped = moved and i % 10 == 0
        start += timedelta(hours=1 if bumped else 0)
        out += ["BEGIN:VEVENT", f"UID:ev-{i}@bench", "DTSTAMP:20261101T000000Z",
                f"DTSTART;TZID=Europe/Warsaw:{start:%Y%m%dT%H%M%S}",
                f"DTEND;TZID=Europe/Warsaw:{start + timedelta(hours=2):%Y%m%dT%H%M%S}",
                f"SUMMARY:Wydarzenie {i}", f"LOCATION:Sala\\, {PLACES[i % 6]}", f"SEQUENCE:{int(bumped)}"]
        if i % 3 == 0:
            out += ["RRULE:FREQ=WEEKLY;COUNT=6",
                    f"EXDATE;TZID=Europe/Warsaw:{start + timedelta(weeks=2):%Y%m%dT%H%M%S}"]
        out.append("END:VEVENT")
        if i % 6 == 0:
            occurrence = start + timedelta(weeks=1)
            day = occurrence + timedelta(days=1)
            out += ["BEGIN:VEVENT", f"UID:ev-{i}@bench", "DTSTAMP:20261101T000000Z",
                    f"RECURRENCE-ID;TZID=Europe/Warsaw:{occurrence:%Y%m%dT%H%M%S}",
                    f"DTSTART;TZID=Europe/Warsaw:{day:%Y%m%dT%H%M%S}",
                    f"DTEND;TZID=Europe/Warsaw:{day + timedelta(hours=2):%Y%m%dT%H%M%S}",
                    f"SUMMARY:Wydarzenie {i} (przeniesione)", "END:VEVENT"]
    out.append("END:VCALENDAR")
    return ("\r\n".join(out) + "\r\n").encode()


# Another process: a small write every 100 ms, each one's latency appended to the log.
SERVICE_WRITES = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
with open(sys.argv[2], "w") as log:
    while True:
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE organisations SET name = name WHERE id = 1")
        connection.execute("COMMIT")
        log.write(f"{time.perf_counter() - started:.4f}\\n")
        log.flush()
        time.sleep(0.1)
"""


async def main(events: int) -> None:
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await engine.dispose()
    settings = Settings(database={"url": url}, service={"data_dir": folder / "data"}, http={"port": 0})
    ctx = AppContext.create(settings, secret_key="bench" * 8)
    ctx.clock = lambda: NOW
    async with ctx.db.transaction() as session:
        await sync_region(session, ctx.region)
        org = await add_organisation(session, ctx, Actor.cli(), OrgInput(name="COP"))
    for label, data in (("first import", calendar(events)), ("the same again", calendar(events)),
                        ("10% moved", calendar(events, moved=True))):
        log = folder / "latency.txt"
        writer = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVICE_WRITES,
                                                      str(folder / "bench.db"), str(log))
        started = time.perf_counter()
        done = await import_file(ctx, Actor.cli(), Path("bench.ics"), data, organisation_id=org.id)
        total = time.perf_counter() - started
        writer.terminate()
        await writer.wait()
        waits = sorted(float(x) for x in log.read_text().split()) or [0.0]
        print(f"{label}: {done.report.summary()}\n  total {total:.1f} s, reading and checking "
              f"{done.prepare_seconds:.1f} s, longest write-lock hold {done.lock_seconds:.2f} s; "
              f"another process's writes ({len(waits)}): p50 {waits[len(waits) // 2] * 1000:.0f} ms, "
              f"p99 {waits[int(len(waits) * 0.99)] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms", flush=True)
    await ctx.db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().events))
