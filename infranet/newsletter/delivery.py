"""Exactly-once, resumable delivery of built issues.

Every issue has one `Delivery` row per recipient, written with the issue. A
sender process runs `[smtp] concurrency` workers, each owning one SMTP
connection reused for many messages. For each message a worker

1. claims one pending delivery, setting it to `sending` (PostgreSQL:
   `SELECT ... FOR UPDATE SKIP LOCKED` then `UPDATE`; SQLite: one `UPDATE ...
   RETURNING` inside its single writer's `BEGIN IMMEDIATE`), committed before
   anything is said to the server about it,
2. waits for the rate limit (`[smtp] max_rate`) and sends it,
3. records `sent` after the server's 250.

Status changes of all workers go through one writer task that commits them in
groups (group commit, gathered for up to GROUP_COMMIT_WINDOW_S): a transaction
per status change would cost more than the SMTP conversation itself. Without a
rate limit each worker claims its next delivery while the current one is being
sent, which keeps the commit off the critical path. On SQLite a whole batch
runs in one call on a private sqlite3 connection (see sqlite_writer).

A crash leaves at most two deliveries per connection in `sending` (the one being
sent and, without a rate limit, the one claimed ahead). Which one may have reached
the server is durable: before a worker says MAIL for a delivery it waits for the
commit of that row's `handed_at`, which rides in the same transaction as the claim
of the next delivery (so it costs no transaction of its own, only a wait that
overlaps composing the message). `recover_interrupted()` therefore puts rows
without `handed_at` (certainly never offered) back to `pending`, and turns only the
others into `unknown`: admins are told, with a button that resends exactly those
(`resend(..., "unknown")`). 4xx answers and lost connections go back to `pending`
with exponential backoff, and slow down sending to that recipient domain only.

5xx answers mark the delivery `failed`. `replies.classify()` tells whose fault it
is: the recipient's (unknown address: a hard bounce, three disable the subscriber)
or the sender's (policy, DMARC, authentication, spam: nobody is disabled). When more
than `[newsletter] pause_failure_share` x `pause_sample` of the first `pause_sample`
outcomes of an issue are 5xx refusals, the issue is `paused` (durable, once per issue,
the first instance to see it wins the UPDATE and alerts the admins); nothing more is
claimed for it until an admin resumes it.

While the server refuses connections, `SmtpHealth` (kept by the service across
sender runs) says so for /healthz; admins are told once per outage and once when it
ends, across instances: `alerts.outage_changed()` flips one row, and only the
instance whose UPDATE flipped it sends the alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.i18n import t
from infranet.newsletter import alerts, outbound
from infranet.newsletter.compose import Composer
from infranet.newsletter.replies import ReplyKind, classify
from infranet.newsletter.sqlite_writer import SqliteBatchWriter
from infranet.newsletter.subscribers import record_hard_bounce
from infranet.storage.database import rows_changed
from infranet.storage.models import (
    Delivery,
    DeliveryStatus,
    IssueStatus,
    NewsletterIssue,
    Subscriber,
    SubscriberStatus,
)

log = logging.getLogger(__name__)

HOST = socket.gethostname()
_LIVE_WORKERS: set[str] = set()
# A claim older than this, from another host, is taken as a crash leftover.
LEASE = timedelta(minutes=15)
# How long the writer waits for more status changes before committing a batch (unless
# every worker already waits for a claim). With ten connections 2 ms gathers several
# messages per transaction and cuts the hops to the database thread by half or more;
# longer windows make workers wait for their next claim. A 250 is recorded at most this
# much later, which only widens the (already tiny) window in which a crash turns a
# delivered message into `unknown`; nothing is ever sent before its claim is committed.
GROUP_COMMIT_WINDOW_S = 0.002


def new_worker_id() -> str:
    return f"{HOST[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_leftover(claimed_by: str | None, claimed_at: datetime | None, now: datetime) -> bool:
    """Was this `sending` row left by a sender that no longer runs?"""
    if not claimed_by:
        return True
    parts = claimed_by.split(":")
    if len(parts) >= 3:
        host, pid_text = ":".join(parts[:-2]), parts[-2]
        if host == HOST[:40] and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                return claimed_by not in _LIVE_WORKERS
            return not _pid_alive(pid)
    return claimed_at is None or claimed_at < now - LEASE


async def recover_interrupted(session: AsyncSession, ctx: AppContext) -> list[tuple[int, int]]:
    """Settle deliveries left in `sending` by a dead sender.

    A row whose `handed_at` was never committed was claimed ahead and never offered to
    the server: it goes back to `pending` and is sent again automatically. The others
    may have reached the server: they become `unknown`, for an admin to decide.
    Returns (issue id, number turned `unknown`) pairs so the caller can tell the admins.
    """
    now = ctx.now()
    rows = (await session.execute(
        select(Delivery.id, Delivery.issue_id, Delivery.claimed_by, Delivery.claimed_at,
               Delivery.handed_at)
        .where(Delivery.status == DeliveryStatus.SENDING))).all()
    leftovers = [r for r in rows if _is_leftover(r.claimed_by, r.claimed_at, now)]
    if not leftovers:
        return []
    never = [r.id for r in leftovers if r.handed_at is None]
    maybe = [r for r in leftovers if r.handed_at is not None]
    for chunk in range(0, len(never), 500):
        await session.execute(
            update(Delivery).where(Delivery.id.in_(never[chunk:chunk + 500]),
                                   Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.PENDING, claimed_by=None, claimed_at=None,
                    attempts=Delivery.attempts - 1)
            .execution_options(synchronize_session=False))
    ids = [r.id for r in maybe]
    for chunk in range(0, len(ids), 500):
        await session.execute(
            update(Delivery).where(Delivery.id.in_(ids[chunk:chunk + 500]),
                                   Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.UNKNOWN,
                    last_error="interrupted while sending: the server may or may not have it")
            .execution_options(synchronize_session=False))
    if never:
        log.warning("newsletter: %d delivery(ies) claimed by a stopped sender but never offered "
                    "to the server go out again", len(never))
    counts: dict[int, int] = {}
    for r in maybe:
        counts[r.issue_id] = counts.get(r.issue_id, 0) + 1
    return sorted(counts.items())


async def waiting_deliveries(ctx: AppContext) -> int:
    """Deliveries of issues in progress that wait to be sent: pending (due or not), or
    claimed by a sender gone for longer than the lease. One indexed count."""
    stale = ctx.now() - LEASE
    async with ctx.db.read() as session:
        return int(await session.scalar(
            select(func.count()).select_from(Delivery)
            .join(NewsletterIssue, NewsletterIssue.id == Delivery.issue_id)
            .where(NewsletterIssue.status == IssueStatus.SENDING,
                   or_(Delivery.status == DeliveryStatus.PENDING,
                       and_(Delivery.status == DeliveryStatus.SENDING,
                            Delivery.claimed_at < stale)))) or 0)


async def alert_unknown(ctx: AppContext, recovered: list[tuple[int, int]]) -> None:
    """Tell the admins about `unknown` deliveries of each issue, with a button that resends
    exactly the ones unknown now (their ids are kept in the button's action row)."""
    for issue_id, _count in recovered:
        async with ctx.db.transaction() as session:
            ids = list((await session.scalars(
                select(Delivery.id).where(Delivery.issue_id == issue_id,
                                          Delivery.status == DeliveryStatus.UNKNOWN)
                .order_by(Delivery.id))).all())
            if not ids:
                continue
            key = await alerts.open_action(session, alerts.RESEND_UNKNOWN, issue_id=issue_id,
                                           delivery_ids=ids)
        await ctx.alerts.notify(
            t("en", "newsletter.alert_unknown", count=len(ids), issue=issue_id),
            t("pl", "newsletter.alert_unknown", count=len(ids), issue=issue_id),
            action=alerts.Action(alerts.RESEND_UNKNOWN, key, issue_id, len(ids)))


async def alert_paused(ctx: AppContext, issue_id: int, refused: int, sample: int) -> None:
    """Tell the admins that an issue was paused, with a button that resumes it."""
    async with ctx.db.transaction() as session:
        key = await alerts.open_action(session, alerts.RESUME, issue_id=issue_id)
    values = {"issue": issue_id, "refused": refused, "sample": sample}
    await ctx.alerts.notify(t("en", "newsletter.alert_paused", **values),
                            t("pl", "newsletter.alert_paused", **values),
                        action=alerts.Action(alerts.RESUME, key, issue_id))


@dataclass
class SmtpHealth:
    """Whether the SMTP server takes connections, as the senders of one process saw it last.

    Kept by the service across sender runs (so that one outage is one outage), read by
    /healthz; `alerted` remembers that the admins were told of the current outage."""

    failing_since: datetime | None = None
    error: str | None = None
    alerted: bool = False
    _started: float | None = None

    def failed(self, now: datetime, error: str) -> float:
        """Record a failed connection; returns how long (s) connections have been failing."""
        if self._started is None:
            self._started, self.failing_since = time.monotonic(), now
        self.error = error[:200]
        return time.monotonic() - self._started

    def recovered(self) -> None:
        self._started = self.failing_since = self.error = None

    @property
    def down(self) -> bool:
        return self._started is not None


# --- rate and per-domain slow-down -------------------------------------------------------


class RateLimiter:
    """At most `rate` messages per second across all workers (0 = unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next_at)
        self.next_at = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass
class DomainState:
    interval: float
    blocked_until: float


class DomainThrottle:
    """A domain that answered 4xx (or 421) is paused, the pause doubling on each
    refusal and halving on each success; other domains go on at full speed."""

    def __init__(self, base: float, cap: float = 900.0) -> None:
        self.base, self.cap = base, cap
        self.states: dict[str, DomainState] = {}

    def blocked(self) -> list[str]:
        now = time.monotonic()
        return [d for d, s in self.states.items() if s.blocked_until > now]

    def refused(self, domain: str) -> None:
        state = self.states.get(domain)
        interval = min(self.cap, state.interval * 2 if state else self.base)
        self.states[domain] = DomainState(interval, time.monotonic() + interval)

    def accepted(self, domain: str) -> None:
        state = self.states.get(domain)
        if state is None:
            return
        state.interval /= 2
        if state.interval < self.base / 4:
            del self.states[domain]
        else:
            state.blocked_until = time.monotonic() + state.interval / 2

    def next_unblock(self) -> float | None:
        times = [s.blocked_until for s in self.states.values()]
        return min(times) if times else None


# --- the group-commit writer ---------------------------------------------------------------


@dataclass
class Job:
    delivery_id: int
    issue_id: int
    subscriber: dict[str, Any] | None
    email: str | None
    attempts: int


@dataclass
class _Op:
    kind: str  # claim | finish | release | hand
    future: asyncio.Future[Any] | None = None
    job: Job | None = None
    outcome: outbound.Outcome | None = None
    message_id: str | None = None


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    disabled: int = 0
    stalled: bool = False
    issues_done: list[int] = field(default_factory=list)
    paused: list[int] = field(default_factory=list)
    unknown_by_issue: dict[int, int] = field(default_factory=dict)


class Sender:
    """Sends every pending delivery of the issues in status `sending`.

    `run()` returns when nothing is left to claim (retries included), when
    `stop()` is called, or when the server stayed unreachable for
    `give_up_after` seconds (None: keep trying; the service does that, the
    CLI gives up and leaves the issue in progress for the service).
    """

    def __init__(self, ctx: AppContext, *, concurrency: int | None = None,
                 give_up_after: float | None = None,
                 transport_factory: Callable[[], Any] | None = None,
                 issue_ids: list[int] | None = None, health: SmtpHealth | None = None) -> None:
        self.ctx = ctx
        smtp = ctx.settings.smtp
        self.outbox = outbound.uses_outbox(ctx)
        self.concurrency = 1 if self.outbox else (concurrency or smtp.concurrency)
        self.transport_factory = transport_factory or (lambda: outbound.make_transport(ctx))
        self.give_up_after = give_up_after
        self.issue_ids = issue_ids
        self.worker_id = new_worker_id()
        self.rate = RateLimiter(smtp.max_rate)
        self.throttle = DomainThrottle(smtp.retry_base_s)
        self.composer = Composer(ctx)
        self.report = SendReport()
        self._ops: asyncio.Queue[_Op] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._last_success = time.monotonic()
        self.health = health or SmtpHealth()
        self._outage_checked = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending_alerts: list[tuple[int, int, int]] = []
        self._connect_errors = 0
        self._writer_task: asyncio.Task[None] | None = None
        self._active_workers = 0
        self.prefetch = self.rate.interval == 0 and not self.outbox
        self._fast: SqliteBatchWriter | None = None
        self._issues_cache: tuple[float, list[int]] | None = None
        self._loaded_issues: set[int] = set()
        self._subscriber_cache: dict[int, dict[str, Any]] = {}

    def stop(self) -> None:
        self._stopping.set()

    # --- writer ---

    async def _writer(self) -> None:
        while True:
            op = await self._ops.get()
            if op.kind == "exit":
                return
            batch = [op]
            exiting = self._drain(batch)
            # Group commit: unless every worker is already waiting for a claim, give the
            # others a moment to queue theirs, so that one transaction (and one hop to
            # the database thread) carries many status changes. One timer per batch.
            # Handoff marks wait here too (their worker waits for them before DATA): measured
            # with bench/newsletter.py, gathering them beats committing each one at once.
            if not exiting and GROUP_COMMIT_WINDOW_S \
                    and sum(1 for o in batch if o.kind == "claim") < self._active_workers:
                await asyncio.sleep(GROUP_COMMIT_WINDOW_S)
                exiting = self._drain(batch)
            try:
                await self._apply(batch)
            except Exception as exc:
                self._pending_alerts.clear()  # rolled back: nothing was paused
                log.exception("newsletter: database write failed")
                for o in batch:
                    if o.future is not None and not o.future.done():
                        o.future.set_exception(exc)
            while self._pending_alerts:  # committed: tell the admins, off the writer's path
                self._spawn(alert_paused(self.ctx, *self._pending_alerts.pop(0)))
            if exiting:
                return

    def _drain(self, batch: list[_Op]) -> bool:
        """Move the queued requests into `batch`; True when the exit request was among them."""
        while not self._ops.empty():
            nxt = self._ops.get_nowait()
            if nxt.kind == "exit":
                return True
            batch.append(nxt)
        return False

    async def _apply(self, batch: list[_Op]) -> None:
        """One transaction for a batch: record outcomes, then claim for the waiting workers.

        Core statements on one connection (no ORM unit of work): on SQLite each
        statement is a hop to the driver's thread, so fewer statements per
        transaction is what makes group commit pay.
        """
        finishes = [o for o in batch if o.kind in ("finish", "release")]
        hands = [o.job.delivery_id for o in batch if o.kind == "hand" and o.job is not None]
        claims = [o for o in batch if o.kind == "claim"]
        results: list[Job] = []
        next_due: float | None = None
        if self._fast is not None:
            results = await self._apply_fast(finishes, len(claims), hands)
            if len(results) < len(claims):
                async with self.ctx.db.engine.begin() as conn:
                    next_due = await self._next_due(conn)
        else:
            async with self.ctx.db.engine.begin() as conn:
                if claims and conn.dialect.name == "postgresql":
                    sent = [o for o in finishes if o.kind == "finish" and o.job is not None
                            and o.outcome is not None and o.outcome.kind == outbound.SENT]
                    await self._record_all(conn, [o for o in finishes if o not in sent])
                    results = await self._claim_pg(conn, len(claims), sent, hands)
                else:
                    await self._record_all(conn, finishes)
                    await self._hand(conn, hands)
                    if claims:
                        results = await self._claim(conn, len(claims))
                if claims and len(results) < len(claims):
                    next_due = await self._next_due(conn)
        for op in batch:
            if op.kind != "claim" and op.future is not None and not op.future.done():
                op.future.set_result(None)
        for i, op in enumerate(claims):
            assert op.future is not None
            if not op.future.done():
                op.future.set_result(results[i] if i < len(results) else next_due)

    async def _hand(self, conn: Any, ids: list[int]) -> None:
        """Record that these claimed deliveries are about to be offered to the server."""
        if ids:
            await conn.execute(update(Delivery).where(
                Delivery.id.in_(ids), Delivery.status == DeliveryStatus.SENDING)
                .values(handed_at=self.ctx.now()))

    async def _apply_fast(self, finishes: list[_Op], claims: int, hands: list[int]) -> list[Job]:
        """SQLite: 250s, releases and claims in one thread call (see sqlite_writer);
        other outcomes (rare) through SQLAlchemy first."""
        assert self._fast is not None
        others = [o for o in finishes if o.kind == "finish" and o.outcome is not None
                  and o.outcome.kind != outbound.SENT]
        if others:
            async with self.ctx.db.engine.begin() as conn:
                await self._record_all(conn, others)
        sent = [(o.job.delivery_id, o.message_id) for o in finishes if o.kind == "finish"
                and o.job and o.outcome is not None and o.outcome.kind == outbound.SENT]
        released = [o.job.delivery_id for o in finishes if o.kind == "release" and o.job]
        if claims and (self._issues_cache is None or time.monotonic() - self._issues_cache[0] > 1.0):
            async with self.ctx.db.engine.connect() as conn:
                await self._sending_issues(conn)
        issue_ids = self._issues_cache[1] if claims and self._issues_cache else []
        rows = await asyncio.to_thread(
            self._fast.apply, now=self.ctx.now(), worker_id=self.worker_id, sent=sent,
            released=released, claim=claims, issue_ids=issue_ids,
            blocked_domains=self.throttle.blocked(), handed=hands)
        self.report.sent += len(sent)
        missing = {r[2] for r in rows if r[2] is not None and r[2] not in self._subscriber_cache}
        if missing:
            async with self.ctx.db.engine.connect() as conn:
                for issue_id in sorted({r[1] for r in rows}):
                    await self._subscribers(conn, issue_id, missing)
        rows.sort(key=lambda r: r[0])
        return [Job(r[0], r[1], self._subscriber_cache.get(r[2]), r[3], r[4]) for r in rows]

    def _issue_filter(self) -> Any:
        sending = select(NewsletterIssue.id).where(NewsletterIssue.status == IssueStatus.SENDING)
        if self.issue_ids is not None:
            sending = sending.where(NewsletterIssue.id.in_(self.issue_ids))
        return Delivery.issue_id.in_(sending.scalar_subquery())

    async def _sending_issues(self, conn: Any) -> list[int]:
        """Issues in progress, re-read at most once a second (and whenever claims run dry)."""
        now = time.monotonic()
        if self._issues_cache is None or now - self._issues_cache[0] > 1.0:
            query = select(NewsletterIssue.id).where(NewsletterIssue.status == IssueStatus.SENDING)
            if self.issue_ids is not None:
                query = query.where(NewsletterIssue.id.in_(self.issue_ids))
            ids = list((await conn.execute(query.order_by(NewsletterIssue.id))).scalars().all())
            self._issues_cache = (now, ids)
        return self._issues_cache[1]

    async def _subscribers(self, conn: Any, issue_id: int, ids: set[int]) -> None:
        """Load (once per issue, in one query) the subscribers its deliveries go to."""
        if issue_id not in self._loaded_issues:
            self._loaded_issues.add(issue_id)
            query = (select(Subscriber.id, Subscriber.email, Subscriber.language, Subscriber.districts,
                            Subscriber.categories, Subscriber.status, Subscriber.token_version)
                     .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                     .where(Delivery.issue_id == issue_id,
                            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING])))
        else:
            missing = ids - self._subscriber_cache.keys()
            if not missing:
                return
            query = (select(Subscriber.id, Subscriber.email, Subscriber.language, Subscriber.districts,
                            Subscriber.categories, Subscriber.status, Subscriber.token_version)
                     .where(Subscriber.id.in_(missing)))
        for row in (await conn.execute(query)).all():
            self._subscriber_cache[row.id] = dict(row._mapping)

    async def _claim(self, conn: Any, n: int) -> list[Job]:
        """Claim up to n pending deliveries: `sending`, committed before any SMTP talk.

        PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, then UPDATE the rows found (an
        UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) may re-run
        the subquery and update more rows than the limit); the row locks hold until
        the commit, so another sender skips them. SQLite: one UPDATE ... RETURNING,
        inside the single writer's BEGIN IMMEDIATE transaction.

        One issue at a time, oldest first: `issue_id = ? AND status = 'pending' ORDER BY
        id` walks ix_deliveries_issue_status in order, where an IN list would sort every
        pending row on each claim.
        """
        now = self.ctx.now()
        sqlite = conn.dialect.name == "sqlite"
        claimed: list[Any] = []
        issue_ids = await self._sending_issues(conn)
        for issue_id in issue_ids:
            conditions = [Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.PENDING,
                          or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)]
            for domain in self.throttle.blocked():
                conditions.append(~Delivery.email.endswith("@" + domain, autoescape=True))
            want = n - len(claimed)
            candidates = select(Delivery.id).where(*conditions).order_by(Delivery.id).limit(want)
            if sqlite:
                target = Delivery.id.in_(candidates.scalar_subquery())
            else:
                ids = (await conn.execute(candidates.with_for_update(skip_locked=True))).scalars().all()
                if not ids:
                    continue
                target = Delivery.id.in_(ids)
            rows = (await conn.execute(
                update(Delivery).where(target, Delivery.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.SENDING, claimed_at=now, claimed_by=self.worker_id,
                        attempts=Delivery.attempts + 1)
                .returning(Delivery.id, Delivery.issue_id, Delivery.subscriber_id, Delivery.email,
                           Delivery.attempts))).all()
            if rows:
                await self._subscribers(conn, issue_id,
                                        {r.subscriber_id for r in rows if r.subscriber_id})
            claimed.extend(rows)
            if len(claimed) >= n:
                break
        claimed.sort(key=lambda r: r.id)
        return [Job(r.id, r.issue_id, self._subscriber_cache.get(r.subscriber_id), r.email,
                    r.attempts) for r in claimed]

    async def _claim_pg(self, conn: Any, n: int, sent: list[_Op], hands: list[int]) -> list[Job]:
        """PostgreSQL: record this batch's 250s and claim up to n deliveries in one statement
        (data-modifying CTEs), so that a batch costs one round trip and the commit.

        `picked` locks its rows with FOR UPDATE SKIP LOCKED and is evaluated once (a CTE,
        unlike an IN subquery that the planner may re-run), so another sender skips them
        and no more than n rows are claimed.
        """
        now = self.ctx.now()
        params: dict[str, Any] = {"now": now, "me": self.worker_id}
        done = ""
        if sent:
            rows = []
            for k, op in enumerate(sent):
                assert op.job is not None
                params[f"i{k}"], params[f"m{k}"] = op.job.delivery_id, op.message_id
                rows.append(f"(CAST(:i{k} AS INTEGER), CAST(:m{k} AS VARCHAR))")
            # Fixed text throughout: every value below is a bound parameter.
            done = ("done AS (UPDATE deliveries AS d SET status = 'sent', sent_at = :now, "  # noqa: S608
                    "message_id = v.mid, last_error = NULL FROM (VALUES " + ", ".join(rows) +
                    ") AS v(id, mid) WHERE d.id = v.id AND d.status = 'sending' RETURNING d.id), ")
        if hands:
            marks = []
            for k, did in enumerate(hands):
                params[f"h{k}"] = did
                marks.append(f":h{k}")
            done += ("handed AS (UPDATE deliveries SET handed_at = :now WHERE id IN ("  # noqa: S608
                     + ", ".join(marks) + ") AND status = 'sending' RETURNING id), ")
        exclude = ""
        for k, domain in enumerate(self.throttle.blocked()):
            params[f"x{k}"] = "%@" + domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            exclude += f" AND email NOT LIKE :x{k} ESCAPE '\\'"
        claimed: list[Any] = []
        for issue_id in await self._sending_issues(conn):
            want = n - len(claimed)
            if want <= 0:
                break
            sql = (
                "WITH " + done + "picked AS (SELECT id FROM deliveries WHERE issue_id = :issue "  # noqa: S608
                "AND status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
                + exclude + " ORDER BY id LIMIT :want FOR UPDATE SKIP LOCKED), "
                "claimed AS (UPDATE deliveries AS d SET status = 'sending', claimed_at = :now, "
                "claimed_by = :me, attempts = d.attempts + 1 FROM picked WHERE d.id = picked.id "
                "AND d.status = 'pending' "
                "RETURNING d.id, d.issue_id, d.subscriber_id, d.email, d.attempts) "
                "SELECT id, issue_id, subscriber_id, email, attempts FROM claimed")
            rows = (await conn.execute(text(sql), {**params, "issue": issue_id, "want": want})).all()
            done = ""  # recorded with the first statement
            if rows:
                await self._subscribers(conn, issue_id, {r.subscriber_id for r in rows if r.subscriber_id})
            claimed.extend(rows)
        if done:  # no issue left to claim from: record the 250s (and handoffs) alone
            await conn.execute(text("WITH " + done.rstrip(", ") + " SELECT 1"), params)
        self.report.sent += len(sent)
        claimed.sort(key=lambda r: r.id)
        return [Job(r.id, r.issue_id, self._subscriber_cache.get(r.subscriber_id), r.email,
                    r.attempts) for r in claimed]

    async def _next_due(self, conn: Any) -> float | None:
        """Seconds until something may become claimable; None when nothing is pending."""
        self._issues_cache = None
        await self._finish_issues(conn)
        earliest = (await conn.execute(
            select(func.min(func.coalesce(Delivery.next_attempt_at, self.ctx.now())))
            .where(Delivery.status == DeliveryStatus.PENDING, self._issue_filter()))).scalar()
        if earliest is None:
            # Nothing pending; but a message of ours still in flight may come back for a
            # retry (4xx), so only stop once none is.
            mine = (await conn.execute(
                select(func.count()).select_from(Delivery)
                .where(Delivery.status == DeliveryStatus.SENDING,
                       Delivery.claimed_by == self.worker_id))).scalar()
            return 0.05 if mine else None
        if earliest.tzinfo is None:  # SQLite through Core: stored naive UTC
            earliest = earliest.replace(tzinfo=UTC)
        wait = max(0.0, (earliest - self.ctx.now()).total_seconds())
        if wait == 0:  # due now but not claimable: a paused domain, or another sender's lock
            unblock = self.throttle.next_unblock()
            wait = unblock - time.monotonic() if unblock is not None else 0.2
        return max(0.05, min(wait, 5.0))

    async def _finish_issues(self, conn: Any) -> None:
        open_issues = select(NewsletterIssue.id).where(NewsletterIssue.status == IssueStatus.SENDING)
        if self.issue_ids is not None:
            open_issues = open_issues.where(NewsletterIssue.id.in_(self.issue_ids))
        busy = select(Delivery.issue_id).where(
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING])).distinct()
        done_ids = (await conn.execute(
            open_issues.where(NewsletterIssue.id.not_in(busy)))).scalars().all()
        if done_ids:
            await conn.execute(update(NewsletterIssue).where(
                NewsletterIssue.id.in_(done_ids), NewsletterIssue.status == IssueStatus.SENDING)
                .values(status=IssueStatus.DONE, finished_at=self.ctx.now()))
            self.report.issues_done.extend(done_ids)
            log.info("newsletter: issue(s) %s finished", ", ".join(map(str, done_ids)))

    async def _record_all(self, conn: Any, finishes: list[_Op]) -> None:
        """Record outcomes; the common one (250) for the whole batch in one executemany."""
        sent = [o for o in finishes if o.outcome is not None and o.outcome.kind == outbound.SENT]
        if sent:
            now = self.ctx.now()
            await conn.execute(
                update(Delivery)
                .where(Delivery.id == bindparam("b_id"), Delivery.status == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.SENT, sent_at=now, message_id=bindparam("b_mid"),
                        last_error=None),
                [{"b_id": o.job.delivery_id, "b_mid": o.message_id} for o in sent if o.job])
            self.report.sent += len(sent)
        released = [o.job.delivery_id for o in finishes if o.kind == "release" and o.job]
        if released:
            await conn.execute(
                update(Delivery).where(Delivery.id.in_(released),
                                       Delivery.status == DeliveryStatus.SENDING,
                                       Delivery.claimed_by == self.worker_id)
                .values(status=DeliveryStatus.PENDING, claimed_by=None,
                        attempts=Delivery.attempts - 1))
        others = [o for o in finishes if o.outcome is not None and o.outcome.kind != outbound.SENT]
        if others:
            session = AsyncSession(bind=conn)
            for op in others:
                await self._record(session, op)
            await session.flush()

    async def _record(self, session: AsyncSession, op: _Op) -> None:
        job, outcome = op.job, op.outcome
        assert job is not None and outcome is not None
        now = self.ctx.now()
        where = and_(Delivery.id == job.delivery_id, Delivery.status == DeliveryStatus.SENDING)
        values: dict[str, Any]
        refused = False
        if outcome.kind == outbound.AMBIGUOUS:
            values = {"status": DeliveryStatus.UNKNOWN, "last_error": outcome.detail}
            self.report.unknown += 1
            self.report.unknown_by_issue[job.issue_id] = \
                self.report.unknown_by_issue.get(job.issue_id, 0) + 1
        elif outcome.kind == outbound.PERMANENT:
            values = {"status": DeliveryStatus.FAILED, "last_error": outcome.detail}
            self.report.failed += 1
            refused = outcome.code >= 500
            blamed = classify(outcome.code, None, outcome.message) if refused else None
            if blamed == ReplyKind.SENDER:
                # Our message or our server is refused (policy, DMARC, spam): not a bounce.
                values["last_error"] = f"{outcome.detail} [refused for the sender]"[:500]
            elif job.subscriber is not None and refused and await record_hard_bounce(
                    session, self.ctx, job.subscriber["id"]):
                self.report.disabled += 1
        elif outcome.kind == "skipped":
            values = {"status": DeliveryStatus.FAILED, "last_error": outcome.message}
            self.report.failed += 1
        else:  # temporary: back to pending, later
            max_attempts = self.ctx.settings.smtp.max_attempts
            if job.attempts >= max_attempts:
                values = {"status": DeliveryStatus.FAILED,
                          "last_error": f"gave up after {job.attempts} attempts: {outcome.detail}"}
                self.report.failed += 1
            else:
                base = self.ctx.settings.smtp.retry_base_s
                delay = min(3600.0, base * 2 ** (job.attempts - 1)) * random.uniform(0.8, 1.2)
                values = {"status": DeliveryStatus.PENDING, "claimed_by": None, "handed_at": None,
                          "next_attempt_at": now + timedelta(seconds=delay),
                          "last_error": outcome.detail}
                self.report.retried += 1
        await session.execute(update(Delivery).where(where).values(**values)
                              .execution_options(synchronize_session=False))
        if refused:
            await self._maybe_pause(session, job.issue_id)

    async def _maybe_pause(self, session: AsyncSession, issue_id: int) -> None:
        """Pause the issue when more than `pause_failure_share` x `pause_sample` of its first
        `pause_sample` outcomes are 5xx refusals (checked only on a refusal, so the hot path
        pays nothing). The UPDATE settles it once across instances; an issue an admin
        resumed is never paused again."""
        settings = self.ctx.settings.newsletter
        sample, limit = settings.pause_sample, settings.pause_failure_share * settings.pause_sample
        if settings.pause_failure_share >= 1:
            return
        counts = dict((await session.execute(
            select(Delivery.status, func.count()).where(
                Delivery.issue_id == issue_id,
                Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED]))
            .group_by(Delivery.status))).all())
        refused = await session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.FAILED,
            Delivery.last_error.like("5%")))
        done = counts.get(DeliveryStatus.SENT, 0) + counts.get(DeliveryStatus.FAILED, 0)
        # Outcomes of deliveries already on their way when the limit was reached may land
        # after it: allow one per connection beyond the sample.
        if not refused or refused <= limit or done > sample + self.concurrency:
            return
        paused = await session.execute(
            update(NewsletterIssue).where(NewsletterIssue.id == issue_id,
                                          NewsletterIssue.status == IssueStatus.SENDING,
                                          NewsletterIssue.resumed_at.is_(None))
            .values(status=IssueStatus.PAUSED).execution_options(synchronize_session=False))
        if rows_changed(paused):
            self._issues_cache = None
            self.report.paused.append(issue_id)
            log.warning("newsletter: issue #%s paused: %d of its first %d outcomes were refused",
                        issue_id, refused, done)
            self._pending_alerts.append((issue_id, refused, done))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- workers ---

    async def _call(self, op: _Op) -> Any:
        op.future = asyncio.get_running_loop().create_future()
        self._ops.put_nowait(op)
        return await op.future

    async def _connect(self, transport: Any) -> bool:
        """Connect with backoff; False when stopping or giving up."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                await transport.connect()
            except Exception as exc:  # any failure to connect is retried
                self._connect_errors += 1
                log.warning("newsletter: cannot connect to the SMTP server: %s", exc)
                down_for = self.health.failed(self.ctx.now(), str(exc))
                after = self.ctx.settings.newsletter.outage_alert_after_s
                if down_for >= min(after, self.give_up_after or after) and not self.health.alerted:
                    self.health.alerted = True
                    await self._outage(True, str(exc)[:200])
                if self.give_up_after is not None and down_for >= self.give_up_after:
                    self.report.stalled = True
                    self._stopping.set()
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                delay = min(delay * 2, 30.0)
                continue
            was_alerted = self.health.alerted
            self.health.recovered()
            if was_alerted or not self._outage_checked:
                # Also ends an outage another process (the CLI, another instance) announced.
                self._outage_checked = True
                self.health.alerted = False
                await self._outage(False, None)
            return True
        return False

    async def _outage(self, down: bool, error: str | None) -> None:
        """Tell the admins that an outage began or ended, once across processes: only the
        process whose UPDATE flips the shared flag does. Never fails the sender."""
        try:
            flipped = await alerts.outage_changed(self.ctx, down)
        except Exception:
            log.exception("newsletter: cannot record the SMTP outage state")
            flipped = True  # better twice than never
        if not flipped:
            return
        if down:
            await self.ctx.alerts.notify(t("en", "newsletter.alert_smtp_down", error=error),
                                         t("pl", "newsletter.alert_smtp_down", error=error))
        else:
            await self.ctx.alerts.notify(t("en", "newsletter.alert_smtp_back"),
                                         t("pl", "newsletter.alert_smtp_back"))

    def _request(self, op: _Op) -> asyncio.Future[Any]:
        op.future = asyncio.get_running_loop().create_future()
        self._ops.put_nowait(op)
        return op.future

    async def _release(self, claim: asyncio.Future[Any] | None) -> None:
        """Give back a delivery claimed ahead but never sent (stop, lost connection)."""
        if claim is None:
            return
        try:
            result = await claim
        except Exception:
            return
        if isinstance(result, Job):
            await self._call(_Op("release", job=result))

    async def _worker(self) -> None:
        """One SMTP connection. Without a rate limit, the next delivery is claimed while
        the current one is being sent, so that the claim's commit is off the critical
        path; a crash can then leave up to two deliveries per connection `unknown`."""
        transport = self.transport_factory()
        self._active_workers += 1
        ahead: asyncio.Future[Any] | None = None
        try:
            while not self._stopping.is_set():
                claim, ahead = ahead or self._request(_Op("claim")), None
                result = await claim
                if not isinstance(result, Job):
                    if result is None:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=result)
                    continue
                if not transport.connected:
                    # Connect only when there is something to send (a service with nothing
                    # pending does not knock on a server that is down), and hold no claim
                    # while knocking: give it back, connect, claim again.
                    await self._call(_Op("release", job=result))
                    if not await self._connect(transport):
                        return
                    continue
                # The handoff mark is queued first, so that it rides in the transaction that
                # claims the next delivery (no commit of its own).
                handed = self._request(_Op("hand", job=result))
                # A skipped delivery never awaits it: keep a failed write from being
                # reported as an exception nobody retrieved (the writer logged it).
                handed.add_done_callback(lambda f: f.cancelled() or f.exception())
                if self.prefetch and not self._stopping.is_set():
                    ahead = self._request(_Op("claim"))
                await self._deliver(transport, result, handed)
        finally:
            self._active_workers -= 1
            await self._release(ahead)
            await transport.close()

    async def _deliver(self, transport: Any, job: Job, handed: asyncio.Future[Any]) -> None:
        subscriber = job.subscriber
        if subscriber is None or subscriber["status"] != SubscriberStatus.CONFIRMED:
            await self._call(_Op("finish", job=job, outcome=outbound.Outcome(
                "skipped", 0, "the subscriber left before this issue was sent")))
            return
        envelope = await self.composer.issue_message(job.issue_id, subscriber, job.delivery_id,
                                                     eightbit=bool(getattr(transport, "eightbit", False)))
        if envelope is None:  # nothing left for this subscriber's current preferences
            await self._call(_Op("finish", job=job, outcome=outbound.Outcome(
                "skipped", 0, "nothing matches the subscriber's current preferences")))
            return
        if self.rate.interval:
            await self.rate.wait()
        try:
            # DATA waits for the commit of `handed_at` (queued when this delivery became
            # current, committed while the message was composed and MAIL/RCPT went), so
            # that a crash's recovery can tell an offered message from a claim never offered.
            outcome = await transport.send(envelope, before_data=lambda: handed)
        except Exception as exc:
            if handed.done() and handed.exception() is not None:  # not recorded: not offered
                log.error("newsletter: delivery %s not offered, its handoff was not recorded: "
                          "%s", job.delivery_id, exc)
                outcome = outbound.Outcome(outbound.TEMPORARY, 0, f"not recorded: {exc}", True)
            else:  # whatever happened, the server may have it
                log.exception("newsletter: unexpected error while sending delivery %s",
                              job.delivery_id)
                outcome = outbound.Outcome(outbound.AMBIGUOUS, 0, f"unexpected error: {exc}")
        domain = envelope.recipient.rpartition("@")[2].lower()
        if outcome.kind == outbound.TEMPORARY and (not outcome.connection_lost or outcome.code == 421):
            self.throttle.refused(domain)
        elif outcome.kind == outbound.SENT:
            self.throttle.accepted(domain)
        # Not awaited: the writer records it with (or before) this worker's next claim.
        self._ops.put_nowait(_Op("finish", job=job, outcome=outcome, message_id=envelope.message_id))

    async def run(self) -> SendReport:
        _LIVE_WORKERS.add(self.worker_id)
        outbound.announce_outbox(self.ctx)
        if self.ctx.db.is_sqlite and ":memory:" not in self.ctx.db.url:
            self._fast = SqliteBatchWriter(self.ctx.db.url)
        self._writer_task = asyncio.create_task(self._writer(), name="newsletter-writer")
        try:
            workers = [asyncio.create_task(self._worker(), name=f"newsletter-smtp-{i}")
                       for i in range(self.concurrency)]
            try:
                await asyncio.gather(*workers)
            finally:
                for w in workers:
                    w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*workers, return_exceptions=True)
        finally:
            # The writer drains what the workers queued (outcomes are recorded) first.
            self._ops.put_nowait(_Op("exit"))
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer_task
            if self._fast is not None:
                self._fast.close()
            _LIVE_WORKERS.discard(self.worker_id)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        if not self._stopping.is_set():
            async with self.ctx.db.engine.begin() as conn:
                await self._finish_issues(conn)
        return self.report
