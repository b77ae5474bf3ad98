"""Bot benchmark: the real Application through the Bot API emulator, 100,000 events stored.

    .venv/bin/python bench/bot.py [--events 100000] [--engines sqlite,postgresql]
                                  [--checks 300] [--conversations 20] [--burst 300]

For each engine: handling latency p50/p99 of `/check <date> [district]` (sent one at a
time; latency = from the update being offered by getUpdates to the bot's reply reaching
the emulator), of every step of a full `/event` conversation (title, date and hours,
district (`--area`: a powiat, or region-wide as the worst case), category, audience,
three skips, confirm, keep the date despite conflicts),
and updates handled per second for a burst of `/check` from many users. `/help` is measured
twice: from 20 users taking turns, and from users each sending their first update (the
bot remembers who speaks for a while: bot/people.py; here it cannot). Beside it, the
floor: a minimal echo bot (PTB Application, one MessageHandler) on the same emulator,
measured the same way, once before and once after the bot (pooled), and two database
floors: the same echo bot reading one event by primary key, or writing one audit row in a
transaction, before it answers (the least a handler that reads, or saves, can do). All use
AIORateLimiter with Telegram's throughput quotas off (overall/group rates 0) and retries
on: the quotas would cap both at 30 messages/s and hide the handling cost being measured.
PostgreSQL uses a scratch database on INFRANET_TEST_DATABASE_URL or
postgresql+asyncpg://postgres@127.0.0.1:5432/test.

Targets (printed as within/over): typed and button steps and `/check` within 1.5x the read
floor's p99. Every /event step writes the form's state before it answers (durable state,
bot/application.py), so every step is also a saving step: within 1.5x the write floor's
p99. The confirm step, split by what it answers: when it finds conflicts, within 1.5x the
read floor's p99 plus the p99 of the work it must do before it answers (the conflict check
and the free-date search), measured alone in the same run in a process of its own; when it
saves, the write floor plus the conflict check alone (the save's own work is not measured
alone). On PostgreSQL, several instances:
a burst of `--burst` updates (`/check`) from 50 users posted in webhook mode, round-robin
with no sticky routing, to one instance and then to two (each in a process of its own, on
one database): updates/s of two at least 1.6x one, and every update answered exactly once;
beside it, where the CPU went during each burst (each bot process, the bench with the
emulator, the whole machine), which says whether a second instance had a core to use.
Each bot prints its database calls per kind of update and the time spent in statements.
"""

from __future__ import annotations

import os
import sys

# bench/ holds calendar.py: drop this folder from sys.path before anything imports the
# standard library's `calendar` (see PITFALLS).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable  # noqa: E402
from contextvars import ContextVar  # noqa: E402
from datetime import date, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import event, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import AIORateLimiter, ApplicationBuilder, MessageHandler, filters  # noqa: E402

from bench.public_paths import use_public_paths  # noqa: E402
from infranet.app import settle_heap  # noqa: E402
from infranet.bot.runtime import BotRuntime  # noqa: E402
from infranet.calendar.conflicts import find_conflicts  # noqa: E402
from infranet.calendar.event_input import LONG_SPAN, EventInput  # noqa: E402
from infranet.calendar.free_dates import suggest_dates  # noqa: E402
from infranet.config import Settings  # noqa: E402
from infranet.context import AppContext  # noqa: E402
from infranet.region import fold  # noqa: E402
from infranet.storage.districts import sync_region  # noqa: E402
from infranet.storage.models import AuditLog, Base, Event, Member, Organisation  # noqa: E402
from infranet.storage.types import utcnow  # noqa: E402
from tests.botapi import TOKEN, BotApi, Sent  # noqa: E402

use_public_paths()  # INFRANET_BENCH_PUBLIC: without the SQLite fast paths (see there)

CATEGORIES = ["training", "meeting", "consultation", "fair", "other", "conference"]
AUDIENCES = ["ngo", "residents", "youth", "seniors", "local-government"]
MEMBER_ID = 777_000
AREA = {"name": "powiat"}  # where the /event form puts its events (--area)
ORGS = 40
BOT_KINDS = ("infranet", "infranet-webhook", "echo", "echo-read", "echo-write")
WEBHOOK_SECRET = "bench-webhook-secret"  # noqa: S105  (a bench on loopback)
CHILDREN: dict[str, int] = {}  # a running webhook instance's URL: its process id
TYPED_STEPS = ("/event", "title", "date and hours")
CONFIRM_STEPS = ("confirm (conflicts found)", "confirm (saved)", "keep the date")


def limiter() -> AIORateLimiter:
    return AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=3)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"  {name:<34} n={len(ms):<5} p50={pct(ms, 50):7.1f} ms  p99={pct(ms, 99):7.1f} ms  "
            f"mean={statistics.fmean(ms):7.1f} ms")


# --- data ------------------------------------------------------------------------------------


def make_context(url: str, data_dir: Path, base_url: str, webhook: bool = False) -> AppContext:
    telegram: dict[str, Any] = {"token": SecretStr(TOKEN), "base_url": base_url,
                                "commands_per_minute": 1_000_000}
    if webhook:
        telegram.update(mode="webhook", webhook_secret=SecretStr(WEBHOOK_SECRET))
    settings = Settings(database={"url": url}, service={"data_dir": data_dir}, http={"port": 0},
                        telegram=telegram)
    return AppContext.create(settings, secret_key=b"bench-secret-key")


async def populate(ctx: AppContext, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    engine = create_async_engine(ctx.db.url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    now = utcnow()
    async with ctx.db.transaction() as s:
        ids = await sync_region(s, ctx.region)
        for i in range(ORGS):
            s.add(Organisation(name=f"Organizacja {i}", name_folded=f"organizacja {i}", type="other",
                               contact_email=f"org{i}@example.org", trusted=True))
        s.add(Organisation(name="Fundacja Benchmark", name_folded="fundacja benchmark", type="other",
                           contact_email="bench@example.org", trusted=True))
        await s.flush()
        s.add(Member(telegram_id=MEMBER_ID, display_name="Bench", organisation_id=ORGS + 1,
                     status="approved", role="member", approved_at=now))
    slugs = [d.slug for d in ctx.region.districts]
    weights = [20 if d.kind == "powiat" else 3 for d in ctx.region.districts]
    first = now - timedelta(days=60)
    rows = []
    for i in range(n):
        start = first + timedelta(minutes=rng.randrange(700 * 24 * 2) * 30)
        start = start.replace(hour=rng.randint(7, 16), minute=rng.choice([0, 30]))
        end = start + timedelta(minutes=30 * rng.randint(2, 10))
        title = f"Wydarzenie {i}"
        rows.append({
            "uid": f"bench-{i}@infranet", "title": title, "title_folded": fold(title),
            "organisation_id": rng.randint(1, ORGS), "starts_at": start, "ends_at": end,
            "last_ends_at": end, "long_span": end - start > LONG_SPAN, "all_day": False, "rrule": None,
            "district_id": ids[rng.choices(slugs, weights)[0]], "category": rng.choice(CATEGORIES),
            "audiences": rng.sample(AUDIENCES, rng.randint(1, 2)), "status": "scheduled",
            "moderation": "published", "revision": 0, "source": "demo", "created_at": now,
            "updated_at": now, "location": f"ul. Przykładowa {i}"})
    async with ctx.db.transaction() as s:
        for i in range(0, n, 5000):
            await s.execute(insert(Event), rows[i:i + 5000])
    async with ctx.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


# --- measuring through the emulator ---------------------------------------------------------------


async def timed(api: BotApi, chat: int, send: Callable[[], object],
                until: Callable[[Sent], bool] | None = None, wait: float = 30.0) -> tuple[float, Sent]:
    """Latency from offering the update to the reply in `chat` that `until` accepts
    (a button step asks the next question, then turns the pressed message into the answer)."""
    start = time.perf_counter()
    send()
    while True:
        reply = await api.next_reply(chat, wait)
        if until is None or until(reply):
            return time.perf_counter() - start, reply


def has_button(label: str) -> Callable[[Sent], bool]:
    return lambda sent: any(label.lower() in text_.lower() for text_, _ in sent.buttons)


def says(*words: str) -> Callable[[Sent], bool]:
    return lambda sent: any(word in sent.text for word in words)


def check_text(rng: random.Random, ctx: AppContext) -> str:
    day = date.today() + timedelta(days=rng.randint(1, 500))
    text_ = f"/check {day.day}.{day.month}.{day.year}"
    if rng.random() < 0.5:
        text_ += " " + rng.choice(ctx.region.powiaty).name.removeprefix("powiat ")
    return text_


async def sequential(api: BotApi, count: int, make: Callable[[int], str], users: int = 20,
                     first_user: int = 100_000) -> list[float]:
    out = []
    for i in range(count):
        user = first_user + i % users
        latency, _ = await timed(api, user, lambda u=user, i=i: api.send_text(u, make(i)))
        out.append(latency)
    return out


async def burst(api: BotApi, count: int, make: Callable[[int], str], users: int = 50) -> float:
    """Offer `count` updates from `users` users at once; updates handled per second."""
    start = time.perf_counter()
    per_user: dict[int, int] = {}
    for i in range(count):
        user = 200_000 + i % users
        api.send_text(user, make(i))
        per_user[user] = per_user.get(user, 0) + 1
    await asyncio.gather(*(api.replies(u, n, 60) for u, n in per_user.items()))
    return count / (time.perf_counter() - start)


async def event_conversation(api: BotApi, rng: random.Random, steps: dict[str, list[float]]) -> float:
    """One full /event form; per-step latencies go into `steps`; returns the whole duration."""
    chat = MEMBER_ID
    await asyncio.sleep(0.05)
    api.drain(chat)
    began = time.perf_counter()

    async def step(name: str, send: Callable[[], object], until: Callable[[Sent], bool]) -> Sent:
        latency, reply = await timed(api, chat, send, until)
        steps.setdefault(name, []).append(latency)
        return reply

    def text_(value: str) -> Callable[[], object]:
        return lambda: api.send_text(chat, value)

    def press(message: Sent, label: str) -> Callable[[], object]:
        return lambda: api.press(chat, message, message.button(label))

    await step("/event", text_("/event"), says("Jak się nazywa"))
    await step("title", text_(f"Spotkanie robocze {rng.randint(1, 10**6)}"), says("Kiedy"))
    day = date.today() + timedelta(days=rng.randint(10, 400))
    hour = rng.randint(8, 15)
    district = await step("date and hours", text_(f"{day.day}.{day.month}.{day.year} {hour}-{hour + 2}"),
                          has_button("Całe woj"))
    if AREA["name"] == "region":
        category = await step("district", press(district, "Całe woj"), has_button("spotkanie"))
    else:  # a powiat: subregion first, then the powiat itself
        powiaty = await step("subregion", press(district, "olsztyński"), has_button("Olsztyn"))
        exact = next(data for label, data in powiaty.buttons if label == "olsztyński")
        category = await step("district", lambda: api.press(chat, powiaty, exact),
                              has_button("spotkanie"))
    audience = await step("category", press(category, "spotkanie"), has_button("Dalej"))
    place = await step("audience", press(audience, "Dalej"), has_button("Pomiń"))
    link = await step("place (skip)", press(place, "Pomiń"), has_button("Pomiń"))
    description = await step("link (skip)", press(link, "Pomiń"), has_button("Pomiń"))
    summary_ = await step("description (skip)", press(description, "Pomiń"), has_button("Potwierdź"))
    answer = await step("confirm", press(summary_, "Potwierdź"),
                        lambda m: has_button("Zostaw")(m) or says("Zapisane")(m))
    # Two kinds of confirm: conflicts found (the check, then the free-date search, then the
    # question), or none (the check, then the save).
    found = has_button("Zostaw")(answer)
    steps.setdefault("confirm (conflicts found)" if found else "confirm (saved)", []).append(
        steps["confirm"].pop())
    if not steps["confirm"]:
        del steps["confirm"]
    if found:
        await step("keep the date", press(answer, "Zostaw"), says("Zapisane"))
    return time.perf_counter() - began


async def bench_infranet(ctx: AppContext, api: BotApi, args: argparse.Namespace,
                         bot: Callable[[str], Any]) -> dict[str, Any]:
    rng = random.Random(3)
    async with bot("infranet"):
        # Warm-up, as the echo bot gets one: /check, and two /event forms, whose first run
        # compiles the conflict and suggestion statements (once per process).
        await sequential(api, 20, lambda i: check_text(rng, ctx))
        for _ in range(2):
            await event_conversation(api, rng, {})
        helps = await sequential(api, args.checks, lambda i: "/help")
        # Each from a user never seen before: nothing remembered about who speaks.
        firsts = await sequential(api, args.checks, lambda i: "/help", users=args.checks,
                                  first_user=300_000)
        checks = await sequential(api, args.checks, lambda i: check_text(rng, ctx))
        steps: dict[str, list[float]] = {}
        mark = len(api.calls)
        whole = [await event_conversation(api, rng, steps) for _ in range(args.conversations)]
        await asyncio.sleep(0.2)  # a callback's answer may follow its reply
        methods = collections.Counter(method for method, _ in api.calls[mark:])
        per_step = sum(len(v) for v in steps.values())
        print("  Bot API calls per /event step: " + ", ".join(
            f"{m} {n / per_step:.2f}" for m, n in methods.most_common() if m != "getUpdates"))
        rate = await burst(api, args.burst, lambda i: check_text(rng, ctx))
    return {"checks": checks, "helps": helps, "firsts": firsts, "steps": steps, "whole": whole,
            "rate": rate}


async def bench_echo(api: BotApi, args: argparse.Namespace, bot: Callable[[str], Any],
                     kind: str = "echo") -> dict[str, Any]:
    async with bot(kind):
        await sequential(api, 20, lambda i: f"echo {i}")
        latencies = await sequential(api, args.checks, lambda i: f"echo {i}")
        rate = await burst(api, args.burst, lambda i: f"echo {i}")
    return {"latencies": latencies, "rate": rate}


async def webhook_burst(api: BotApi, urls: list[str], count: int, make: Callable[[int], str],
                        first_user: int, users: int = 50) -> tuple[float, int]:
    """Post `count` updates from `users` users to the instances at `urls`, round-robin (a
    load balancer without sticky routing: a user's updates go to either). Returns updates
    answered per second (once every update has its answer: one never answered fails the
    bench) and how many answers came beyond one per update (an update handled twice)."""
    per_user: dict[int, int] = {}
    updates = []
    for i in range(count):
        user = first_user + i % users
        update = api.message_update(user, make(i))
        update["update_id"] = 10_000_000 + first_user + i
        updates.append(update)
        per_user[user] = per_user.get(user, 0) + 1
    limit = asyncio.Semaphore(32)
    async with httpx.AsyncClient(timeout=30) as client:
        async def post(i: int, update: dict[str, Any]) -> None:
            async with limit:
                answer = await client.post(urls[i % len(urls)], json=update,
                                           headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})
                answer.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(post(i, u) for i, u in enumerate(updates)),
                             *(api.replies(u, n, 60) for u, n in per_user.items()))
        elapsed = time.perf_counter() - start
    await asyncio.sleep(1.0)  # anything handled twice would answer again meanwhile
    extra = sum(len(api.drain(u)) for u in per_user)
    return count / elapsed, extra


async def bench_instances(ctx: AppContext, api: BotApi, args: argparse.Namespace,
                          bot: Callable[[str], Any]) -> dict[str, Any]:
    """One webhook instance, then two on the same database, each in a process of its own."""
    rng = random.Random(5)

    def make(_i: int) -> str:
        return check_text(rng, ctx)

    out: dict[str, Any] = {}
    for n, first_user in ((1, 400_000), (2, 500_000)):
        async with contextlib.AsyncExitStack() as stack:
            urls = [await stack.enter_async_context(bot("infranet-webhook")) for _ in range(n)]
            await webhook_burst(api, urls, 50, make, first_user + 90_000)  # warm-up
            before = cpu_now([CHILDREN[url] for url in urls])
            out[n] = await webhook_burst(api, urls, args.burst, make, first_user)
            out[n] = (*out[n], cpu_since(before))
    return out


def cpu_now(pids: list[int]) -> dict[str, Any]:
    """CPU seconds so far: each bot process, this one (the bench and the emulator), and
    the machine's (every process, every core), with the wall clock."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = cpu[3] + cpu[4]
    return {"bots": [of(pid) for pid in pids], "bench": time.process_time(),
            "busy": (sum(cpu) - idle) / tick, "wall": time.perf_counter(), "pids": pids}


def cpu_since(before: dict[str, Any]) -> str:
    """Where the CPU went since `before`, in cores (1.00 = one core busy all along)."""
    now = cpu_now(before["pids"])
    wall = now["wall"] - before["wall"]
    bots = [(b - a) / wall for a, b in zip(before["bots"], now["bots"], strict=True)]
    return (f"bot processes {' + '.join(f'{c:.2f}' for c in bots)} cores, bench and emulator "
            f"{(now['bench'] - before['bench']) / wall:.2f}, whole machine "
            f"{(now['busy'] - before['busy']) / wall:.2f} of {os.cpu_count()}")


# --- the bots, each in a process of its own ------------------------------------------------------


@contextlib.asynccontextmanager
async def bot_process(kind: str, *, url: str, data_dir: Path, api: BotApi) -> AsyncIterator[str]:
    """Run one bot (`serve_bot`) in a child process while the block runs. Telegram is
    another machine: in this process the emulator and the bench would take the CPU, and
    the interpreter's lock, from the bot being measured."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", kind, "--url", url, "--data-dir", str(data_dir),
        "--base-url", api.base_url, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 120)
        if not line.startswith(b"ready"):
            raise RuntimeError(f"the {kind} bot did not start (exit code {await child.wait()})")
        address = line.decode().removeprefix("ready").strip()  # a webhook instance's URL
        CHILDREN[address] = child.pid
        yield address
    finally:
        child.stdin.close()  # the child stops its bot when its stdin closes
        try:
            await asyncio.wait_for(child.wait(), 30)
        except TimeoutError:
            child.kill()


async def read_one(ctx: AppContext) -> None:
    """One event's title by primary key, in a read session: the least a handler that reads
    can do (one statement, one row)."""
    async with ctx.db.read() as session:
        await session.scalar(select(Event.title).where(Event.id == random.randint(1, 1000)))


def form_candidates(ctx: AppContext, count: int, seed: int = 13) -> list[EventInput]:
    """Events like those the bench's /event forms propose: the same days, hours, district
    (`--area`), category, organisation and no audience ticked."""
    rng = random.Random(seed)
    if AREA["name"] == "region":
        district = ctx.region.root.slug
    else:
        district = next(d.slug for d in ctx.region.powiaty if d.name.endswith("olsztyński"))
    out = []
    for _ in range(count):
        day = date.today() + timedelta(days=rng.randint(10, 400))
        hour = rng.randint(8, 15)
        start = datetime(day.year, day.month, day.day, hour, tzinfo=ctx.tz)
        out.append(EventInput("Spotkanie robocze", start, start + timedelta(hours=2),
                              district=district, category="meeting", audiences=[],
                              organisation_id=ORGS + 1))
    return out


async def confirm_work(ctx: AppContext, count: int) -> dict[str, list[float]]:
    """The work the confirm step must do before it answers, alone, in one read session (as
    the handler): the conflict check and, when it finds conflicts, the free-date search
    ("found"); the conflict check of candidates without conflicts ("clear", which the
    handler follows with the save)."""
    out: dict[str, list[float]] = {"found": [], "clear": []}
    for i, candidate in enumerate(form_candidates(ctx, count + 20)):
        started = time.perf_counter()
        async with ctx.db.read() as session:
            report = await find_conflicts(session, ctx, candidate)
            if not report.clear:
                await suggest_dates(session, ctx, candidate, n=3)
        if i >= 20:  # warm-up: the statements compiled, as the bot's warm-up forms do
            out["clear" if report.clear else "found"].append(time.perf_counter() - started)
    return out


async def measure_confirm_work(url: str, data_dir: Path, base_url: str, count: int) -> None:
    """In the child process: print the latencies of `confirm_work` as one JSON line."""
    ctx = make_context(url, data_dir, base_url)
    settle_heap()
    print(json.dumps(await confirm_work(ctx, count)), flush=True)
    await ctx.db.dispose()


async def confirm_work_process(url: str, data_dir: Path, base_url: str,
                               count: int) -> dict[str, list[float]]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--confirm-work", str(count), "--url", url, "--data-dir",
        str(data_dir), "--base-url", base_url, "--area", AREA["name"],
        stdout=asyncio.subprocess.PIPE)
    output, _ = await asyncio.wait_for(child.communicate(), 300)
    return dict(json.loads(output.decode().strip().splitlines()[-1]))


async def write_one(ctx: AppContext) -> None:
    """One audit row in a write transaction: the least a handler that saves can do."""
    async with ctx.db.transaction() as session:
        await session.execute(insert(AuditLog), {"actor": "bench", "action": "bench", "entity": "bench",
                                                 "at": utcnow(), "details": {}})


def echo_application(base_url: str, before: Callable[[], Awaitable[None]] | None) -> Any:
    """The floor: an echo bot; with `before`, one that does that first (the database floors)."""
    async def echo(update: Update, _context: Any) -> None:
        assert update.effective_message is not None
        if before is not None:
            await before()
        await update.effective_message.reply_text(update.effective_message.text or "-")

    application = ApplicationBuilder().token(TOKEN).base_url(base_url).rate_limiter(limiter()).build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    return application


async def serve_bot(kind: str, url: str, data_dir: Path, base_url: str) -> None:
    """In the child process: start the bot, say "ready", run until stdin closes."""
    ctx = make_context(url, data_dir, base_url, webhook=kind == "infranet-webhook")
    address = ""
    if kind == "infranet":
        runtime = BotRuntime(ctx, rate_limiter=limiter())
        await runtime.start()
        stop = runtime.stop
    elif kind == "infranet-webhook":
        runtime = BotRuntime(ctx, rate_limiter=limiter())
        await runtime.start()
        server = uvicorn.Server(uvicorn.Config(Starlette(routes=runtime.routes), host="127.0.0.1",
                                               port=0, lifespan="off", log_config=None,
                                               access_log=False))
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110  (uvicorn offers no event for this)
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        address = f" http://127.0.0.1:{port}{ctx.settings.telegram.webhook_path}"

        async def stop() -> None:
            server.should_exit = True
            await serving
            await runtime.stop()
    else:
        work = {"echo": None, "echo-read": read_one, "echo-write": write_one}[kind]
        application = echo_application(base_url, None if work is None else functools.partial(work, ctx))
        await application.initialize()
        assert application.updater is not None
        await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
        await application.start()

        async def stop() -> None:
            assert application.updater is not None
            await application.updater.stop()
            await application.stop()
            await application.shutdown()

    trips = count_trips(ctx, runtime.application if kind.startswith("infranet") else application)
    settle_heap()  # as `infranet run` does once everything has started
    print(f"ready{address}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await stop()
    if trips is not None:
        print_trips(kind, trips)
    await ctx.db.dispose()


def count_trips(ctx: AppContext, application: Any) -> dict[str, list[collections.Counter[str]]]:
    """Database calls per update, by kind of update: statements, BEGINs, COMMITs and
    ROLLBACKs, savepoints (each a round trip to PostgreSQL; on SQLite a call into
    aiosqlite's thread). What an update costs beyond the floors is mostly these. Not counted,
    for the bot and the floors alike: the pool's check of the connection it lends
    (pool_pre_ping), one round trip on an autocommit connection and three (BEGIN, ping,
    ROLLBACK) on any other."""
    per_kind: dict[str, list[collections.Counter[str]]] = {}
    current: ContextVar[collections.Counter[str] | None] = ContextVar("bench_trips", default=None)

    def note(what: str) -> Callable[..., None]:
        def listener(*_args: Any, **_kwargs: Any) -> None:
            counter = current.get()
            if counter is not None:
                counter[what] += 1
        return listener

    started: ContextVar[float] = ContextVar("bench_statement_started", default=0.0)

    def before(*_args: Any, **_kwargs: Any) -> None:
        started.set(time.perf_counter())

    def after(*_args: Any, **_kwargs: Any) -> None:
        counter = current.get()
        if counter is not None:  # microseconds waiting for statements (the driver's trips)
            counter["db_us"] += round((time.perf_counter() - started.get()) * 1e6)

    # The service's engine, and on PostgreSQL the bot state's own autocommit pool
    # (persistence.ChatStore), where BEGIN and COMMIT are no round trips: only its
    # statements count.
    store = getattr(getattr(application, "chat_store", None), "_engine", None)
    engines = [(ctx.db.engine.sync_engine, True)]
    engines += [(store.sync_engine, False)] if store is not None else []
    for engine, transactional in engines:
        kinds = (("before_cursor_execute", "statements"), ("begin", "begin"),
                 ("commit", "commit"), ("rollback", "rollback"),
                 ("savepoint", "savepoint"), ("release_savepoint", "release"))
        for name, what in kinds if transactional else kinds[:1]:
            event.listen(engine, name, note(what))
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
    process = application.process_update

    async def counted(update: object) -> None:
        kind = "?"
        if isinstance(update, Update):
            if update.callback_query is not None:
                kind = "button"
            elif update.effective_message is not None and update.effective_message.text:
                word = update.effective_message.text.split()[0]
                kind = word if word.startswith("/") else "typed text"
        counter: collections.Counter[str] = collections.Counter()
        token = current.set(counter)
        try:
            await process(update)
        finally:
            current.reset(token)
            per_kind.setdefault(kind, []).append(counter)

    application.process_update = counted
    return per_kind


def print_trips(kind: str, per_kind: dict[str, list[collections.Counter[str]]]) -> None:
    print(f"  database calls per update ({kind}, median over updates):", file=sys.stderr)
    for name, counters in sorted(per_kind.items()):
        keys = ("statements", "begin", "commit", "rollback", "savepoint", "release")
        figures = ", ".join(f"{key} {statistics.median(c[key] for c in counters):g}" for key in keys)
        figures += f"; in statements {statistics.median(c['db_us'] for c in counters) / 1000:.2f} ms"
        print(f"    {name:<12} ({len(counters)} updates): {figures}", file=sys.stderr, flush=True)


async def scratch_pg() -> tuple[str, Callable[[], Awaitable[None]]]:
    admin = os.environ.get("INFRANET_TEST_DATABASE_URL",
                           "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    name = f"infranet_bench_bot_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()

    async def drop() -> None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    return make_url(admin).set(database=name).render_as_string(hide_password=False), drop


async def run_engine(engine: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        drop = None
        if engine == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        else:
            url, drop = await scratch_pg()
        try:
            async with BotApi() as api:
                ctx = make_context(url, Path(tmp) / "data", api.base_url)
                started = time.perf_counter()
                await populate(ctx, args.events)
                print(f"\n[{engine}] {args.events:,} events stored in "
                      f"{time.perf_counter() - started:.1f} s")
                # The floor before and after the bot, pooled: neither order alone is fair
                # (after, it runs in a heap and an emulator grown by the bot's run; before, in
                # fresher ones than the bot gets).
                await ctx.db.dispose()  # the bots have their own, in their processes
                bot = functools.partial(bot_process, url=url, data_dir=Path(tmp) / "data", api=api)
                before = await bench_echo(api, args, bot)
                ours = await bench_infranet(ctx, api, args, bot)
                after = await bench_echo(api, args, bot)
                read = await bench_echo(api, args, bot, "echo-read")
                write = await bench_echo(api, args, bot, "echo-write")
                work = await confirm_work_process(url, Path(tmp) / "data", api.base_url,
                                                  args.checks)
                instances = await bench_instances(ctx, api, args, bot) if engine != "sqlite" else None
                floor = {"latencies": before["latencies"] + after["latencies"],
                         "rate": (before["rate"] + after["rate"]) / 2}
        finally:
            if drop is not None:
                await drop()
    every_step = [v for values in ours["steps"].values() for v in values]
    print(summary("echo bot (floor)", floor["latencies"]))
    print(summary("echo after reading one row", read["latencies"]))
    print(summary("echo after writing one row", write["latencies"]))
    print(summary("/help (handler framework only)", ours["helps"]))
    print(summary("/help, each user's first update", ours["firsts"]))
    print(summary("/check", ours["checks"]))
    print(summary("/event, every step", every_step))
    for name, values in ours["steps"].items():
        print(summary(f"  /event step: {name}", values))
    print(summary(f"/event, whole conversation ({AREA['name']})", ours["whole"]))
    print(f"  throughput (burst of {args.burst} from 50 users): echo {floor['rate']:.0f} updates/s, "
          f"/check {ours['rate']:.0f} updates/s")
    echo_p99 = pct(floor["latencies"], 99)
    for name, values in (("echo after a read", read["latencies"]),
                         ("echo after a write", write["latencies"]),
                         ("/help", ours["helps"]), ("/help first", ours["firsts"]),
                         ("/check", ours["checks"]), ("/event step", every_step)):
        ratio = pct(values, 99) / echo_p99
        print(f"  p99 {name} / p99 echo = {ratio:.2f}  ({'within' if ratio <= 2 else 'over'} 2x)")
    typed = [v for name, values in ours["steps"].items() if name in TYPED_STEPS for v in values]
    buttons = [v for name, values in ours["steps"].items()
               if name not in TYPED_STEPS and name not in CONFIRM_STEPS for v in values]
    read_p99, write_p99 = pct(read["latencies"], 99), pct(write["latencies"], 99)
    print(f"  against the database floors (p99 read {read_p99 * 1000:.1f} ms, "
          f"write {write_p99 * 1000:.1f} ms):")
    for name, values, floor_p99, floor_name in (
            ("/check", ours["checks"], read_p99, "read"),
            ("typed /event steps", typed, read_p99, "read"),
            ("button /event steps", buttons, read_p99, "read"),
            ("typed /event steps (saving)", typed, write_p99, "write"),
            ("button /event steps (saving)", buttons, write_p99, "write")):
        ratio = pct(values, 99) / floor_p99
        print(f"    p99 {name:<30} {pct(values, 99) * 1000:7.1f} ms = {ratio:.2f}x the {floor_name} "
              f"floor  ({'within' if ratio <= 1.5 else 'over'} 1.5x)")
    for name, kind, floor_p99, floor_name, what in (
            ("confirm (conflicts found)", "found", read_p99, "read",
             "conflict check + free-date search"),
            ("confirm (saved)", "clear", write_p99, "write", "conflict check (then the save)")):
        confirms, alone = ours["steps"].get(name, []), work.get(kind, [])
        if not confirms or not alone:
            continue
        reference = floor_p99 + pct(alone, 99)
        ratio = pct(confirms, 99) / reference
        print(f"    {what} alone: p50 {pct(alone, 50) * 1000:.1f} ms, "
              f"p99 {pct(alone, 99) * 1000:.1f} ms (n={len(alone)})")
        print(f"    p99 {name:<30} {pct(confirms, 99) * 1000:7.1f} ms = {ratio:.2f}x the "
              f"{floor_name} floor + that work ({reference * 1000:.1f} ms)  "
              f"({'within' if ratio <= 1.5 else 'over'} 1.5x; n={len(confirms)})")
    if instances is not None:
        one, two = instances[1], instances[2]
        print(f"  webhook burst of {args.burst} /check from 50 users, round-robin: one instance "
              f"{one[0]:.0f} updates/s, two instances {two[0]:.0f} updates/s = {two[0] / one[0]:.2f}x "
              f"({'at least' if two[0] >= 1.6 * one[0] else 'under'} 1.6x); answered twice: "
              f"{one[1]} and {two[1]} (none lost: the burst waits for every update's answer)")
        print(f"    CPU during the burst, one instance: {one[2]}")
        print(f"    CPU during the burst, two instances: {two[2]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--checks", type=int, default=300)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--area", choices=("powiat", "region"), default="powiat",
                        help="events of the /event form: in powiat olsztyński, or region-wide "
                             "(overlapping every stored event: the worst case)")
    parser.add_argument("--serve", choices=BOT_KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--confirm-work", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    AREA["name"] = args.area
    logging.basicConfig(level=logging.WARNING)
    if args.serve:
        asyncio.run(serve_bot(args.serve, args.url, args.data_dir, args.base_url))
        return
    if args.confirm_work:
        asyncio.run(measure_confirm_work(args.url, args.data_dir, args.base_url, args.confirm_work))
        return
    for engine in args.engines.split(","):
        asyncio.run(run_engine(engine.strip(), args))


if __name__ == "__main__":
    main()
