"""Bounce mailbox benchmark (issue 13). Loopback only; about a minute.

    .venv/bin/python bench/bounces.py [--messages 10000] [--database-url URL]

1. A private Dovecot (tests/imap_server.py) and a SQLite database under bench/.work/
   (or --database-url, e.g. a PostgreSQL one) holding one sent issue: one subscriber and
   one delivery (with its Message-ID) per message.
2. `--messages` DSNs shaped like the test fixtures (tests/data/mail/: Postfix and Gmail
   hard bounces, Postfix delays, 5.7.1 policy refusals, ARF complaints), each with the
   VERP address of its own delivery, those that return the original with a 25 KB copy
   (--original-kb), written straight into the Maildir (as a delivery
   agent would) and indexed by Dovecot before anything is timed.
3. Floors, in the same run: a bare imaplib loop fetching the same messages the same way
   (UID FETCH of BODY.PEEK[] up to 256 KB, batches of `[bounces] batch_size`), without
   parsing, database work or moving; and the same loop parsing each message (`dsn.parse`),
   still without the database: what is left is the database work.
4. `process_mailbox()` in a child process (peak memory = its VmHWM), as the service's
   poller and `infranet newsletter bounces --once` run it: parse, match, count, record,
   move. Then checks that every message was handled and counted once.

Target (issue 13): at least 200 messages/s and at most 200 MB.
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
import imaplib
import json
import os
import resource
import secrets
import shutil
import subprocess
import time
from datetime import timedelta
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "bounces"
sys.path.insert(0, str(ROOT))

SECRET = b"bench-secret-key-not-for-production-0123"
FROM = "Sieć Organizacji <newsletter@example.org>"
# (fixture, share of the messages, expected outcome)
MIX = [("postfix_user_unknown.eml", 0.6, "hard"), ("gmail_no_such_user.eml", 0.15, "hard"),
       ("postfix_delayed.eml", 0.1, "delayed"), ("policy_5_7_1.eml", 0.1, "sender"),
       ("arf_complaint.eml", 0.05, "complaint")]


def settings_for(db_url: str, imap: dict[str, Any]) -> Any:
    from infranet.config import Settings

    return Settings(database={"url": db_url}, service={"data_dir": str(WORK / "data")},
                    smtp={"from_address": FROM}, bounces=imap,
                    newsletter={"max_hard_bounces": 1})


async def seed(db_url: str, imap: dict[str, Any], count: int) -> list[tuple[int, str, str, str]]:
    """Schema, subscribers, one issue and its sent deliveries: (id, email, VERP, Message-ID)."""
    from sqlalchemy import insert, select

    from infranet.context import AppContext
    from infranet.newsletter import verp
    from infranet.storage.models import Base, Delivery, NewsletterIssue, Subscriber

    ctx = AppContext.create(settings_for(db_url, imap), secret_key=SECRET)
    try:
        async with ctx.db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
        now = ctx.now()
        async with ctx.db.transaction() as session:
            await session.execute(insert(Subscriber), [
                {"email": f"reader{i:05d}@mail{i % 50}.example.net", "status": "confirmed",
                 "language": "pl", "districts": [], "categories": [], "confirmed_at": now}
                for i in range(count)])
            issue = NewsletterIssue(period_key="bench", period_start=now - timedelta(days=7),
                                    period_end=now, subject="Newsletter", content={})
            session.add(issue)
            await session.flush()
            subscribers = (await session.execute(select(Subscriber.id, Subscriber.email)
                                                 .order_by(Subscriber.id))).all()
            await session.execute(insert(Delivery), [
                {"issue_id": issue.id, "subscriber_id": sid, "email": email, "status": "sent",
                 "sent_at": now, "message_id": f"<{issue.id}.{k + 1}.{secrets.token_hex(8)}"
                                               "@example.org>"}
                for k, (sid, email) in enumerate(subscribers)])
            rows = (await session.execute(select(Delivery.id, Delivery.email, Delivery.message_id)
                                          .order_by(Delivery.id))).all()
        return [(did, email, verp.sender_for(ctx, did), mid) for did, email, mid in rows]
    finally:
        await ctx.db.dispose()


BODY_LINE = "Dzień dobry, oto wydarzenia w Twoim powiecie.\n"


def mail(name: str, original_kb: int = 0, **values: str) -> bytes:
    """A fixture of tests/data/mail with its %%PLACEHOLDERS%% filled, CRLF line ends; a
    returned original message (message/rfc822) grown to about `original_kb` KB, as a
    bounce that returns the whole newsletter copy is."""
    text = (ROOT / "tests" / "data" / "mail" / name).read_text(encoding="utf-8")
    if original_kb:
        line = "Warsztaty grantowe, ul. Kopernika 1, Olsztyn, 10:00-14:00, zapisy na stronie.\n"
        text = text.replace(BODY_LINE, BODY_LINE + line * (original_kb * 1024 // len(line)))
    for key, value in values.items():
        text = text.replace(f"%%{key}%%", value)
    return text.replace("\n", "\r\n").encode("utf-8")


def write_maildir(server: Any, deliveries: list[tuple[int, str, str, str]],
                  original_kb: int) -> dict[str, int]:
    """One DSN per delivery, straight into INBOX's Maildir new/ (as a delivery agent)."""
    new = server.maildir("INBOX") / "new"
    for sub in ("new", "cur", "tmp"):
        (server.maildir("INBOX") / sub).mkdir(parents=True, exist_ok=True)
    expected: dict[str, int] = {}
    bounds, total = [], 0.0
    for name, share, outcome in MIX:
        total += share
        bounds.append((total, name, outcome))
    stamp = int(time.time())
    for k, (did, email, sender, message_id) in enumerate(deliveries):
        position = (k + 0.5) / len(deliveries)
        name, outcome = next((n, o) for limit, n, o in bounds if position <= limit)
        data = mail(name, original_kb, VERP=sender, RCPT=email, MSGID=message_id,
                    RCPT_LOCAL=email.partition("@")[0], REPORT=f".{did}")
        (new / f"{stamp}.M{k}P{os.getpid()}.bench,S={len(data)}").write_bytes(data)
        expected[outcome] = expected.get(outcome, 0) + 1
    server.chown_home()
    return expected


def index_mailbox(server: Any) -> float:
    """Let Dovecot index the new files (untimed for both measurements)."""
    start = time.perf_counter()
    conn = server.connect()
    conn.select("INBOX", readonly=True)
    conn.uid("SEARCH", "ALL")
    conn.logout()
    return time.perf_counter() - start


def floor(server: Any, batch: int, parse: bool = False) -> tuple[int, float]:
    """The same UID SEARCH and batched partial FETCHes, nothing else (`parse`: and each
    message read by `dsn.parse`, still without the database or moving)."""
    from infranet.newsletter import dsn
    from infranet.newsletter.imap import FETCH_LIMIT

    start = time.perf_counter()
    conn = imaplib.IMAP4("127.0.0.1", server.port)
    conn.login(server.user, server.password)
    conn.select("INBOX", readonly=True)
    uids = sorted(int(u) for u in conn.uid("SEARCH", "UNDELETED")[1][0].split())
    fetched = 0
    for i in range(0, len(uids), batch):
        chunk = ",".join(str(u) for u in uids[i:i + batch])
        data = conn.uid("FETCH", chunk, f"(UID BODY.PEEK[]<0.{FETCH_LIMIT}>)")[1]
        messages = [item[1] for item in data if isinstance(item, tuple)]
        if parse:
            for message in messages:
                dsn.parse(message)
        fetched += len(messages)
    conn.logout()
    return fetched, time.perf_counter() - start


CHILD = """
import asyncio, json, sys, time
sys.path[:] = [p for p in sys.path if not p.endswith("/bench")]
sys.path.insert(0, {root!r})
from infranet.context import AppContext
from infranet.newsletter.bounces import process_mailbox
from bench.bounces import SECRET, settings_for

args = json.loads(sys.argv[1])

async def main():
    ctx = AppContext.create(settings_for(args["db_url"], args["imap"]), secret_key=SECRET)
    start = time.perf_counter()
    run = await process_mailbox(ctx)
    seconds = time.perf_counter() - start
    await ctx.db.dispose()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so it would report
    # the parent's size; the high-water mark belongs to this program's own memory map.
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({{"seconds": seconds, "run": run.__dict__, "max_rss_kb": int(hwm.split()[1])}}))

asyncio.run(main())
"""


def process(db_url: str, imap: dict[str, Any]) -> dict[str, Any]:
    payload = json.dumps({"db_url": db_url, "imap": imap})
    done = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), payload],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"processing failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


async def check(db_url: str, imap: dict[str, Any]) -> dict[str, int]:
    from sqlalchemy import func, select

    from infranet.context import AppContext
    from infranet.storage.models import BounceReport, Subscriber

    ctx = AppContext.create(settings_for(db_url, imap), secret_key=SECRET)
    try:
        async with ctx.db.transaction() as session:
            by_status = dict((await session.execute(select(Subscriber.status, func.count())
                                                    .group_by(Subscriber.status))).all())
            bounces = await session.scalar(select(func.sum(Subscriber.hard_bounces)))
            reports = await session.scalar(select(func.count()).select_from(BounceReport))
        return {**by_status, "hard_bounces": int(bounces or 0), "reports": int(reports or 0)}
    finally:
        await ctx.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--database-url", help="default: SQLite under bench/.work/bounces")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--original-kb", type=int, default=25,
                        help="size of the returned newsletter copy in bounces that return it "
                             "(default 25, a one-district reader's copy)")
    args = parser.parse_args()

    from tests.imap_server import ImapServer

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    db_url = args.database_url or f"sqlite+aiosqlite:///{WORK / 'bench.db'}"
    with ImapServer() as server:
        imap = server.settings(batch_size=args.batch_size)
        t0 = time.perf_counter()
        deliveries = asyncio.run(seed(db_url, imap, args.messages))
        expected = write_maildir(server, deliveries, args.original_kb)
        size = sum(p.stat().st_size for p in (server.maildir("INBOX") / "new").iterdir())
        print(f"setup: {args.messages} subscribers and sent deliveries, {args.messages} DSNs "
              f"({size / 1e6:.1f} MB) written to the Maildir in {time.perf_counter() - t0:.1f} s; "
              f"Dovecot indexed them in {index_mailbox(server):.1f} s")
        print(f"mix: {', '.join(f'{n} {c}' for n, c in expected.items())}")
        print(f"database: {db_url.split('://')[0]}, batch size {args.batch_size}")

        fetched, floor_s = floor(server, args.batch_size)
        print(f"floor (bare imaplib UID FETCH, same batches): {fetched} messages in "
              f"{floor_s:.2f} s = {fetched / floor_s:,.0f} messages/s")
        parsed, parse_s = floor(server, args.batch_size, parse=True)
        print(f"fetch and parse only (dsn.parse, no database): {parsed} messages in "
              f"{parse_s:.2f} s = {parsed / parse_s:,.0f} messages/s")

        own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result = process(db_url, imap)
        run, seconds = result["run"], result["seconds"]
        rate = run["read"] / seconds
        print(f"process_mailbox: {run['read']} messages in {seconds:.2f} s = {rate:,.0f} "
              f"messages/s ({rate / (fetched / floor_s):.0%} of the floor); peak memory "
              f"{result['max_rss_kb'] / 1024:.0f} MB (VmHWM of the child process; the benchmark "
              f"itself {own_rss:.0f} MB)")
        print("outcomes: " + ", ".join(f"{k} {v}" for k, v in run.items() if v))
        left, processed = server.count("INBOX"), server.count("Processed")
        stored = asyncio.run(check(db_url, imap))
        print(f"afterwards: INBOX {left}, Processed {processed}; subscribers {stored}")
        ok = (run["read"] == args.messages and left == 0 and processed == args.messages
              and stored["hard_bounces"] == expected.get("hard", 0)
              and run["complaint"] == expected.get("complaint", 0))
        print(f"target >= 200 messages/s and <= 200 MB: "
              f"{'met' if rate >= 200 and result['max_rss_kb'] / 1024 <= 200 else 'NOT met'}; "
              f"every message handled and counted once: {'yes' if ok else 'NO'}")
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
