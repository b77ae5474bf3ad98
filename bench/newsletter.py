"""Newsletter sending benchmark (issue 5). Loopback only; a few minutes at most.

    .venv/bin/python bench/newsletter.py [--subscribers 10000] [--connections 10] [--rounds 3]

1. 10,000 confirmed subscribers with different district/category preferences and a
   typical issue (events across the region, trainings, new members, a note) in a
   SQLite database under bench/.work/.
2. Personalised sending through `[smtp] concurrency` = 10 connections to postfix's
   `smtp-sink` (taken from the Debian package with `apt-get download postfix` and
   `dpkg -x`, nothing installed), measured in a child process (peak memory = its
   max RSS) that builds the issue and runs `send_pending()`, as `infranet newsletter
   send` does.
3. Floors in the same run: a bare aiosmtplib loop sending one prebuilt message over
   the same 10 connections (the library's limit), and `smtp-source -s 10` (the sink's).
   Steps 1-3 repeat for `--rounds` rounds on a fresh database, the personalised run and
   the bare floor in alternating order; the summary gives medians and the spread, since
   one run on a shared machine can be off by a third either way.
4. `smtp-sink -w 1` (the sink waits 1 s before answering DATA): throughput for 5, 10
   and 20 connections, which should grow with the pool (pool-bound, not CPU-bound).

If smtp-sink cannot be obtained, an aiosmtpd sink runs in a separate process instead
(and the output says so).
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# bench/calendar.py would shadow the standard library's calendar (and break `email`):
# never import from this script's own directory.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import glob
import itertools
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import time
from datetime import timedelta
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# --- the sink ----------------------------------------------------------------------------


def postfix_tools() -> tuple[Path, Path, dict[str, str]] | None:
    """smtp-sink and smtp-source from the postfix .deb, unpacked under bench/.work."""
    root = WORK / "postfix"
    sink, source = root / "usr/sbin/smtp-sink", root / "usr/sbin/smtp-source"
    if not sink.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        try:
            if not glob.glob(str(WORK / "postfix_*.deb")):
                subprocess.run(["apt-get", "download", "postfix"], cwd=WORK, check=True,
                               capture_output=True, timeout=120)
            deb = sorted(glob.glob(str(WORK / "postfix_*.deb")))[-1]
            subprocess.run(["dpkg", "-x", deb, str(root)], check=True, capture_output=True)
        except (OSError, subprocess.SubprocessError, IndexError) as exc:
            print(f"# could not get postfix's smtp-sink ({exc}); falling back to aiosmtpd")
            return None
    env = dict(os.environ, LD_LIBRARY_PATH=str(root / "usr/lib/postfix"))
    return sink, source, env


class Sink:
    def __init__(self, tools: tuple[Path, Path, dict[str, str]] | None, delay: float = 0) -> None:
        self.port = free_port()
        self.tools = tools
        if tools is not None:
            sink, _, env = tools
            args = [str(sink), "-u", "nobody"]
            if delay:
                args += ["-w", str(int(delay))]
            args += [f"127.0.0.1:{self.port}", "1024"]
            self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            self.kind = "postfix smtp-sink" + (f" -w {int(delay)}" if delay else "")
        else:
            code = ("import asyncio, sys\n"
                    "from aiosmtpd.controller import Controller\n"
                    "class H:\n"
                    "    async def handle_DATA(self, s, sess, env):\n"
                    f"        await asyncio.sleep({delay})\n"
                    "        return '250 OK'\n"
                    f"c = Controller(H(), hostname='127.0.0.1', port={self.port})\n"
                    "c.start()\nimport time\ntime.sleep(3600)\n")
            self.proc = subprocess.Popen([sys.executable, "-c", code])
            self.kind = "aiosmtpd sink in a separate process" + (f" (delay {delay}s)" if delay else "")
        wait_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


# --- data --------------------------------------------------------------------------------


def settings_for(db_url: str, port: int, connections: int) -> Any:
    from infranet.config import Settings

    return Settings(
        database={"url": db_url}, service={"data_dir": str(WORK / "data")},
        http={"public_base_url": "https://newsletter.example.org"},
        smtp={"host": "127.0.0.1", "port": port, "tls": "none", "concurrency": connections,
              "from_address": "Sieć Organizacji Pozarządowych <newsletter@example.org>",
              "reply_to": "sekretariat@example.org", "timeout_s": 30},
        newsletter={"title": "Newsletter sieci organizacji infrastrukturalnych"})


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def prepare(db_url: str, subscribers: int, seed: int = 5) -> None:
    """A fresh database with the schema, the region, a typical issue's content and
    `subscribers` confirmed subscribers with varied preferences."""
    from sqlalchemy import insert

    from infranet.calendar.event_input import EventInput
    from infranet.calendar.events import add_event
    from infranet.context import AppContext
    from infranet.network.orgs import OrgInput, add_organisation
    from infranet.newsletter.issues import add_note
    from infranet.storage.actors import Actor
    from infranet.storage.districts import district_ids, sync_region
    from infranet.storage.models import Base, Subscriber, Training

    if db_url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(db_url.split(":///", 1)[1] + suffix).unlink(missing_ok=True)  # noqa: ASYNC240
    rng = random.Random(seed)
    ctx = AppContext.create(settings_for(db_url, 25, 1), secret_key=b"bench-secret")
    async with ctx.db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    powiaty = [d.slug for d in ctx.region.powiaty]
    subregions = [d.slug for d in ctx.region.subregions]
    categories = ["training", "conference", "meeting", "consultation", "fair", "other"]
    actor = Actor.cli()
    async with ctx.db.transaction() as session:
        await sync_region(session, ctx.region)
        orgs = []
        for i in range(6):
            orgs.append(await add_organisation(session, ctx, actor, OrgInput(
                name=f"Stowarzyszenie Wspierania Inicjatyw nr {i} (bench)", type="COP",
                districts=[rng.choice(powiaty)], website=f"https://org{i}.example.org")))
        tz = ctx.tz
        base = ctx.now().astimezone(tz).replace(hour=10, minute=0, second=0, microsecond=0)
        for i in range(30):
            start = base + timedelta(days=1 + i % 13, hours=rng.choice([0, 2, 4, 7]))
            district = "region" if i % 7 == 0 else rng.choice(powiaty + subregions[:1])
            await add_event(session, ctx, actor, EventInput(
                title=f"Spotkanie nr {i}: współpraca organizacji i samorządu",
                start=start, end=start + timedelta(hours=3), district=district,
                category=categories[i % len(categories)], organisation_id=orgs[i % 6].id,
                location="Centrum Organizacji Pozarządowych, ul. Długa 1",
                url=f"https://events.example.org/{i}",
                registration_url=f"https://events.example.org/{i}/zapisy"))
        ids = await district_ids(session)
        for i in range(6):
            session.add(Training(title=f"Szkolenie z pozyskiwania funduszy, edycja {i}",
                                 organisation_id=orgs[i].id, district_id=ids[rng.choice(powiaty)],
                                 deadline=ctx.now().date() + timedelta(days=3 + i),
                                 target_group="członkowie i wolontariusze organizacji",
                                 places=20, apply_url=f"https://training.example.org/{i}"))
        await add_note(session, ctx, actor, "Zapraszamy do zgłaszania wydarzeń do wspólnego "
                       "kalendarza sieci. Do zobaczenia na konferencji regionalnej!")
        rows = []
        for i in range(subscribers):
            roll = rng.random()
            if roll < 0.35:
                districts: list[str] = []
            elif roll < 0.8:
                districts = rng.sample(powiaty, rng.choice([1, 1, 2, 3]))
            else:
                districts = [rng.choice(subregions)]
            cats = rng.sample(categories, 2) if rng.random() < 0.25 else []
            rows.append({"email": f"user{i:05d}@example{i % 50}.org", "status": "confirmed",
                         "language": "en" if i % 10 == 0 else "pl", "districts": districts,
                         "categories": cats, "consent_source": "import", "token_version": 0,
                         "hard_bounces": 0, "consent_at": ctx.now(), "confirmed_at": ctx.now(),
                         "created_at": ctx.now(), "updated_at": ctx.now()})
        for chunk in range(0, len(rows), 2000):
            await session.execute(insert(Subscriber), rows[chunk:chunk + 2000])
    await ctx.db.dispose()


# --- child processes ----------------------------------------------------------------------


def child_personalised(db_url: str, port: int, connections: int) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        from infranet.context import AppContext
        from infranet.newsletter.issues import build_issue, send_pending
        from infranet.storage.actors import Actor

        ctx = AppContext.create(settings_for(db_url, port, connections), secret_key=b"bench-secret")
        started = time.perf_counter()
        async with ctx.db.transaction() as session:
            built = await build_issue(session, ctx, Actor.cli(), period_key="bench")
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        # What `infranet newsletter send` runs after building (the service's send loop
        # does the same): recover crash leftovers, then a Sender over every pending delivery.
        report = await send_pending(ctx)
        send_s = time.perf_counter() - started
        await ctx.db.dispose()
        return {"recipients": built.recipients, "build_s": build_s, "send_s": send_s,
                "sent": report.sent, "failed": report.failed, "unknown": report.unknown}

    result = asyncio.run(run())
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def sample_message(db_url: str) -> bytes:
    """One typical personalised message of the benchmark's issue, as bytes."""
    async def run() -> bytes:
        from infranet.context import AppContext
        from infranet.newsletter.compose import Composer, SubscriberRef
        from infranet.newsletter.issues import gather_content

        ctx = AppContext.create(settings_for(db_url, 25, 1), secret_key=b"bench-secret")
        async with ctx.db.transaction() as session:
            content = await gather_content(session, ctx, ctx.now())
        # As the sender builds it for a server with 8BITMIME (smtp-sink has it).
        envelope = Composer(ctx).build(1, content, SubscriberRef(1, "user00001@example1.org", 0,
                                                                 "pl", ("olsztynski",)),
                                       eightbit=True)
        await ctx.db.dispose()
        assert envelope is not None
        return envelope.data

    return asyncio.run(run())


def child_bare(port: int, connections: int, total: int, message_file: str) -> dict[str, Any]:
    import aiosmtplib

    data = Path(message_file).read_bytes()

    async def run() -> float:
        per = total // connections

        async def one(i: int) -> None:
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False,
                                   local_hostname="bench")
            await smtp.connect()
            for n in range(per):
                await smtp.sendmail("newsletter@example.org", [f"u{i}-{n}@example.org"], data,
                                    mail_options=["BODY=8BITMIME"])
            await smtp.quit()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    return {"sent": total // connections * connections, "send_s": elapsed}


def in_child(mode: str, *args: Any) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, *map(str, args)],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- main ----------------------------------------------------------------------------------


def one_round(n: int, db: str, subscribers: int, sink: Sink,
              tools: tuple[Path, Path, dict[str, str]] | None, conns: int) -> dict[str, Any]:
    """A fresh database, then the personalised send and the floors, back to back.

    The machine may be shared: the order of the personalised run and the bare
    aiosmtplib floor alternates between rounds, so a drift in background load
    favours neither, and each round's ratio compares runs seconds apart.
    """
    started = time.perf_counter()
    asyncio.run(prepare(db, subscribers))
    prepare_s = time.perf_counter() - started
    message = sample_message(db)
    message_file = WORK / "sample.eml"
    message_file.write_bytes(message)
    print(f"round {n + 1}: database prepared in {prepare_s:.1f} s; typical message {len(message)} "
          f"bytes (8-bit parts; the floors send this one)")
    result: dict[str, Any] = {}

    def personalised() -> None:
        personal = in_child("personalised", db, sink.port, conns)
        rate = personal["sent"] / personal["send_s"]
        result.update(rate=rate, maxrss_mb=personal["maxrss_mb"],
                      complete=personal["sent"] == personal["recipients"] == subscribers)
        print(f"  personalised: {personal['sent']} of {personal['recipients']} recipients sent in "
              f"{personal['send_s']:.2f} s = {rate:,.0f} msg/s (issue built in "
              f"{personal['build_s']:.2f} s; failed {personal['failed']}, unknown "
              f"{personal['unknown']}); peak memory {personal['maxrss_mb']:.0f} MB")

    def bare() -> None:
        floor = in_child("bare", sink.port, conns, subscribers, message_file)
        result["bare"] = floor["sent"] / floor["send_s"]
        print(f"  floor, bare aiosmtplib ({conns} connections, one prebuilt message): "
              f"{floor['sent']} in {floor['send_s']:.2f} s = {result['bare']:,.0f} msg/s")

    for step in (personalised, bare) if n % 2 == 0 else (bare, personalised):
        step()
    if tools is not None:
        _, source, env = tools
        t0 = time.perf_counter()
        subprocess.run([str(source), "-s", str(conns), "-m", str(subscribers),
                        "-l", str(len(message)), f"127.0.0.1:{sink.port}"], env=env, check=True,
                       capture_output=True)
        result["source"] = subscribers / (time.perf_counter() - t0)
        print(f"  floor, smtp-source -s {conns} ({len(message)}-byte messages): "
              f"{result['source']:,.0f} msg/s")
    result["ratio"] = result["rate"] / result["bare"]
    print(f"  personalised / bare aiosmtplib = {result['ratio']:.0%}")
    return result


def summarise(rounds: list[dict[str, Any]]) -> None:
    """Medians over the rounds (with the spread), and the targets checked on them."""
    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def spread(key: str, fmt: str) -> str:
        values = [r[key] for r in rounds]
        return f"{format(min(values), fmt)}-{format(max(values), fmt)}" if len(values) > 1 else "one round"

    rate, ratio = median("rate"), median("ratio")
    memory = max(r["maxrss_mb"] for r in rounds)
    print(f"median of {len(rounds)} round(s): personalised {rate:,.0f} msg/s "
          f"({spread('rate', ',.0f')}), bare aiosmtplib {median('bare'):,.0f} msg/s "
          f"({spread('bare', ',.0f')})"
          + (f", smtp-source {median('source'):,.0f} msg/s ({spread('source', ',.0f')})"
             if all("source" in r for r in rounds) else ", smtp-source: not available (no postfix tools)"))
    print(f"personalised / bare aiosmtplib = {ratio:.0%} (rounds: {spread('ratio', '.0%')}; target >= 70%); "
          f"target >= 1,000 msg/s: {'met' if rate >= 1000 else 'NOT met'}; peak memory {memory:.0f} MB, "
          f"target <= 200 MB: {'met' if memory <= 200 else 'NOT met'}; every recipient sent: "
          f"{'yes' if all(r['complete'] for r in rounds) else 'NO'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3,
                        help="personalised and bare runs, alternating, each on a fresh database "
                             "(the summary gives medians and the spread)")
    parser.add_argument("--database", metavar="URL",
                        help="postgresql+asyncpg://... database to use (its tables are dropped and "
                             "recreated!); default: a SQLite file under bench/.work")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        if mode == "personalised":
            print(json.dumps(child_personalised(rest[0], int(rest[1]), int(rest[2]))))
        elif mode == "bare":
            print(json.dumps(child_bare(int(rest[0]), int(rest[1]), int(rest[2]), rest[3])))
        return 0

    WORK.mkdir(parents=True, exist_ok=True)
    tools = postfix_tools()
    db = args.database or sqlite_url(WORK / "newsletter-bench.db")
    engine = "PostgreSQL" if db.startswith("postgresql") else "SQLite"
    conns = args.connections
    print(f"# {args.subscribers} subscribers, {conns} connections, {engine}, loopback, "
          f"{args.rounds} round(s)")
    sink = Sink(tools)
    print(f"sink: {sink.kind}")
    rounds: list[dict[str, Any]] = []
    try:
        for n in range(args.rounds):
            rounds.append(one_round(n, db, args.subscribers, sink, tools, conns))
    finally:
        sink.stop()
    summarise(rounds)

    slow = Sink(tools, delay=1)
    print(f"sink: {slow.kind}")
    try:
        small = args.database or sqlite_url(WORK / "newsletter-bench-small.db")
        rates = []
        for n in (5, 10, 20):
            asyncio.run(prepare(small, n * 4))
            result = in_child("personalised", small, slow.port, n)
            rates.append(result["sent"] / result["send_s"])
            print(f"  {n:>2} connections: {result['sent']} messages in {result['send_s']:.2f} s = "
                  f"{rates[-1]:.1f} msg/s")
        grows = all(b > a * 1.5 for a, b in itertools.pairwise(rates))
        print(f"throughput grows with connections (pool-bound): {'met' if grows else 'NOT met'}")
    finally:
        slow.stop()
    shutil.rmtree(WORK / "data", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
