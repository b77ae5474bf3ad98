"""Exactly-once, resumable delivery of built issues.

Every issue has one `Delivery` row per recipient, written with the issue. A
sender process runs `concurrency` workers, each owning one reused SMTP
connection. For each message a worker

1. waits for the rate limit and a usable connection,
2. claims one pending delivery, setting it to `sending` in the same
   statement (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: its single
   writer serialises claims), and commits that before talking to the server,
3. sends it, and records `sent` after the server's 250.

Status changes of all workers go through one writer task that commits them in
small groups (group commit): two statements per message would otherwise cost
more than the SMTP conversation itself.

A crash leaves at most `concurrency` deliveries in `sending`. They are not
resent blindly: `recover_interrupted()` turns them into `unknown`, admins are
told, and `resend(..., "unknown")` sends them again on request. 4xx answers and
lost connections go back to `pending` with exponential backoff, and slow down
sending to that recipient domain only; 5xx answers mark the delivery `failed`
and count a hard bounce (three disable the subscriber).
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
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.i18n import t
from infranet.newsletter import alerts, outbound
from infranet.newsletter.compose import Composer
from infranet.newsletter.subscribers import record_hard_bounce
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
STALL_ALERT_AFTER_S = 60.0


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
    """Turn deliveries left in `sending` by a dead sender into `unknown`.

    Returns (issue id, count) pairs so the caller can tell the admins.
    """
    now = ctx.now()
    rows = (await session.execute(
        select(Delivery.id, Delivery.issue_id, Delivery.claimed_by, Delivery.claimed_at)
        .where(Delivery.status == DeliveryStatus.SENDING))).all()
    leftovers = [r for r in rows if _is_leftover(r.claimed_by, r.claimed_at, now)]
    if not leftovers:
        return []
    ids = [r.id for r in leftovers]
    for chunk in range(0, len(ids), 500):
        await session.execute(
            update(Delivery).where(Delivery.id.in_(ids[chunk:chunk + 500]),
                                   Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.UNKNOWN,
                    last_error="interrupted while sending: the server may or may not have it")
            .execution_options(synchronize_session=False))
    counts: dict[int, int] = {}
    for r in leftovers:
        counts[r.issue_id] = counts.get(r.issue_id, 0) + 1
    return sorted(counts.items())


async def alert_unknown(ctx: AppContext, recovered: list[tuple[int, int]]) -> None:
    for issue_id, count in recovered:
        await alerts.notify(
            t("en", "newsletter.alert_unknown", count=count, issue=issue_id),
            t("pl", "newsletter.alert_unknown", count=count, issue=issue_id))


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
    kind: str  # claim | finish
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
                 issue_ids: list[int] | None = None) -> None:
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
        self._failing_since: float | None = None
        self._alerted = False
        self._connect_errors = 0
        self._writer_task: asyncio.Task[None] | None = None

    def stop(self) -> None:
        self._stopping.set()

    # --- writer ---

    async def _writer(self) -> None:
        while True:
            op = await self._ops.get()
            if op.kind == "exit":
                return
            batch = [op]
            while not self._ops.empty():
                nxt = self._ops.get_nowait()
                if nxt.kind == "exit":
                    self._ops.put_nowait(nxt)
                    break
                batch.append(nxt)
            try:
                await self._apply(batch)
            except Exception as exc:
                log.exception("newsletter: database write failed")
                for o in batch:
                    if o.future is not None and not o.future.done():
                        o.future.set_exception(exc)

    async def _apply(self, batch: list[_Op]) -> None:
        finishes = [o for o in batch if o.kind == "finish"]
        claims = [o for o in batch if o.kind == "claim"]
        results: list[Job] = []
        next_due: float | None = None
        async with self.ctx.db.transaction() as session:
            for op in finishes:
                await self._record(session, op)
            if claims:
                results = await self._claim(session, len(claims))
                if len(results) < len(claims):
                    next_due = await self._next_due(session)
        for op in finishes:
            if op.future is not None and not op.future.done():
                op.future.set_result(None)
        for i, op in enumerate(claims):
            assert op.future is not None
            if not op.future.done():
                op.future.set_result(results[i] if i < len(results) else next_due)

    def _issue_filter(self) -> Any:
        sending = select(NewsletterIssue.id).where(NewsletterIssue.status == IssueStatus.SENDING)
        if self.issue_ids is not None:
            sending = sending.where(NewsletterIssue.id.in_(self.issue_ids))
        return Delivery.issue_id.in_(sending.scalar_subquery())

    async def _claim(self, session: AsyncSession, n: int) -> list[Job]:
        now = self.ctx.now()
        conditions = [Delivery.status == DeliveryStatus.PENDING, self._issue_filter(),
                      or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)]
        for domain in self.throttle.blocked():
            conditions.append(~Delivery.email.endswith("@" + domain, autoescape=True))
        # Two statements, not UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED):
        # PostgreSQL may re-run such a subquery and update more rows than the limit. The
        # locks taken here hold until the commit, so no other sender can claim these rows.
        ids = (await session.scalars(
            select(Delivery.id).where(*conditions).order_by(Delivery.id).limit(n)
            .with_for_update(skip_locked=True))).all()
        if not ids:
            return []
        rows = (await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.SENDING, claimed_at=now, claimed_by=self.worker_id,
                    attempts=Delivery.attempts + 1)
            .returning(Delivery.id, Delivery.issue_id, Delivery.subscriber_id, Delivery.email,
                       Delivery.attempts)
            .execution_options(synchronize_session=False))).all()
        subscriber_ids = [r.subscriber_id for r in rows if r.subscriber_id is not None]
        subscribers: dict[int, dict[str, Any]] = {}
        if subscriber_ids:
            for s in (await session.execute(
                    select(Subscriber.id, Subscriber.email, Subscriber.language, Subscriber.districts,
                           Subscriber.categories, Subscriber.status, Subscriber.token_version)
                    .where(Subscriber.id.in_(subscriber_ids)))).all():
                subscribers[s.id] = dict(s._mapping)
        jobs = [Job(r.id, r.issue_id, subscribers.get(r.subscriber_id), r.email, r.attempts)
                for r in sorted(rows, key=lambda r: r.id)]
        return jobs

    async def _next_due(self, session: AsyncSession) -> float | None:
        """Seconds until something may become claimable; None when nothing is pending."""
        await self._finish_issues(session)
        earliest = await session.scalar(
            select(func.min(func.coalesce(Delivery.next_attempt_at, self.ctx.now())))
            .where(Delivery.status == DeliveryStatus.PENDING, self._issue_filter()))
        if earliest is None:
            return None
        wait = max(0.0, (earliest - self.ctx.now()).total_seconds())
        if wait == 0:  # due now but not claimable: a paused domain, or another sender's lock
            unblock = self.throttle.next_unblock()
            wait = unblock - time.monotonic() if unblock is not None else 0.2
        return max(0.05, min(wait, 5.0))

    async def _finish_issues(self, session: AsyncSession) -> None:
        open_issues = select(NewsletterIssue.id).where(NewsletterIssue.status == IssueStatus.SENDING)
        if self.issue_ids is not None:
            open_issues = open_issues.where(NewsletterIssue.id.in_(self.issue_ids))
        busy = select(Delivery.issue_id).where(
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING])).distinct()
        done_ids = (await session.scalars(
            open_issues.where(NewsletterIssue.id.not_in(busy)))).all()
        if done_ids:
            await session.execute(update(NewsletterIssue).where(
                NewsletterIssue.id.in_(done_ids), NewsletterIssue.status == IssueStatus.SENDING)
                .values(status=IssueStatus.DONE, finished_at=self.ctx.now()))
            self.report.issues_done.extend(done_ids)
            log.info("newsletter: issue(s) %s finished", ", ".join(map(str, done_ids)))

    async def _record(self, session: AsyncSession, op: _Op) -> None:
        job, outcome = op.job, op.outcome
        assert job is not None and outcome is not None
        now = self.ctx.now()
        where = and_(Delivery.id == job.delivery_id, Delivery.status == DeliveryStatus.SENDING)
        values: dict[str, Any]
        if outcome.kind == outbound.SENT:
            values = {"status": DeliveryStatus.SENT, "sent_at": now, "message_id": op.message_id,
                      "last_error": None}
            self.report.sent += 1
        elif outcome.kind == outbound.AMBIGUOUS:
            values = {"status": DeliveryStatus.UNKNOWN, "last_error": outcome.detail}
            self.report.unknown += 1
        elif outcome.kind == outbound.PERMANENT:
            values = {"status": DeliveryStatus.FAILED, "last_error": outcome.detail}
            self.report.failed += 1
            if job.subscriber is not None and outcome.code >= 500 and await record_hard_bounce(
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
                values = {"status": DeliveryStatus.PENDING, "claimed_by": None,
                          "next_attempt_at": now + timedelta(seconds=delay),
                          "last_error": outcome.detail}
                self.report.retried += 1
        await session.execute(update(Delivery).where(where).values(**values)
                              .execution_options(synchronize_session=False))

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
                self._failing_since = None
                return True
            except Exception as exc:  # any failure to connect is retried
                now = time.monotonic()
                if self._failing_since is None:
                    self._failing_since = now
                self._connect_errors += 1
                log.warning("newsletter: cannot connect to the SMTP server: %s", exc)
                down_for = now - self._failing_since
                if down_for >= min(STALL_ALERT_AFTER_S, self.give_up_after or STALL_ALERT_AFTER_S) \
                        and not self._alerted:
                    self._alerted = True
                    await alerts.notify(
                        t("en", "newsletter.alert_smtp_down", error=str(exc)[:200]),
                        t("pl", "newsletter.alert_smtp_down", error=str(exc)[:200]))
                if self.give_up_after is not None and down_for >= self.give_up_after:
                    self.report.stalled = True
                    self._stopping.set()
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                delay = min(delay * 2, 30.0)
        return False

    async def _worker(self) -> None:
        transport = self.transport_factory()
        try:
            while not self._stopping.is_set():
                if not transport.connected and not await self._connect(transport):
                    return
                await self.rate.wait()
                result = await self._call(_Op("claim"))
                if not isinstance(result, Job):
                    if result is None:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=result)
                    continue
                await self._deliver(transport, result)
        finally:
            await transport.close()

    async def _deliver(self, transport: Any, job: Job) -> None:
        subscriber = job.subscriber
        if subscriber is None or subscriber["status"] != SubscriberStatus.CONFIRMED:
            await self._call(_Op("finish", job=job, outcome=outbound.Outcome(
                "skipped", 0, "the subscriber left before this issue was sent")))
            return
        envelope = await self.composer.issue_message(job.issue_id, subscriber, job.delivery_id)
        if envelope is None:  # nothing left for this subscriber's current preferences
            await self._call(_Op("finish", job=job, outcome=outbound.Outcome(
                "skipped", 0, "nothing matches the subscriber's current preferences")))
            return
        try:
            outcome = await transport.send(envelope)
        except Exception as exc:  # whatever happened, the server may have it
            log.exception("newsletter: unexpected error while sending delivery %s", job.delivery_id)
            outcome = outbound.Outcome(outbound.AMBIGUOUS, 0, f"unexpected error: {exc}")
        domain = envelope.recipient.rpartition("@")[2].lower()
        if outcome.kind == outbound.TEMPORARY and (not outcome.connection_lost or outcome.code == 421):
            self.throttle.refused(domain)
        elif outcome.kind == outbound.SENT:
            self.throttle.accepted(domain)
        # Not awaited: the next claim of this worker waits behind it in the same queue.
        op = _Op("finish", job=job, outcome=outcome, message_id=envelope.message_id)
        op.future = asyncio.get_running_loop().create_future()
        self._ops.put_nowait(op)

    async def run(self) -> SendReport:
        _LIVE_WORKERS.add(self.worker_id)
        if self.outbox:
            log.info("newsletter: no [smtp] host configured; writing messages to the Maildir "
                     "outbox %s", outbound.outbox_dir(self.ctx))
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
            if not self._stopping.is_set():
                async with self.ctx.db.transaction() as session:
                    await self._finish_issues(session)
        finally:
            self._ops.put_nowait(_Op("exit"))
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer_task
            _LIVE_WORKERS.discard(self.worker_id)
        return self.report
