"""Exactly-once, resumable delivery of built issues: the sender's workers and its writer.

Every issue has one `Delivery` row per recipient, written with the issue. A sender
process runs `[smtp] concurrency` workers, each owning one SMTP connection reused for
many messages. For each message a worker

1. claims one pending delivery, setting it to `sending`, committed before anything is
   said to the server about it (`queue.DeliveryQueue`: each engine's backend makes sure
   two senders never claim the same row),
2. waits for the rate limit (`[smtp] max_rate`, `throttle`) and sends it,
3. records `sent` after the server's 250.

Status changes of all workers go through one writer task that applies them in groups
(group commit, gathered for up to GROUP_COMMIT_WINDOW_S) as one `queue.Batch`: a
transaction per status change would cost more than the SMTP conversation itself.
Without a rate limit each worker claims its next delivery while the current one is being
sent, which keeps the commit off the critical path.

A crash leaves at most two deliveries per connection in `sending` (the one being sent
and, without a rate limit, the one claimed ahead). Which one may have reached the server
is durable: before a worker says DATA for a delivery it waits for the commit of that
row's `handed_at`, which rides in the same transaction as the claim of the next delivery
(so it costs no transaction of its own, only a wait that overlaps composing the message).
`recovery.recover_interrupted()` therefore puts rows without `handed_at` back to
`pending`, and turns only the others into `unknown`: admins are told, with a button that
resends exactly those. What each SMTP outcome does to a delivery (`sent`, retried with
backoff, `failed`, `unknown`) is `queue.settle()`; 4xx answers also slow down sending to
that recipient domain only. When too many of an issue's first outcomes are 5xx refusals
the queue pauses the issue (durable, once across instances) and the sender tells the
admins.

While the server refuses connections, `SmtpHealth` (kept by the service across sender
runs) says so for /healthz; admins are told once per outage and once when it ends
(`smtp_health.announce_outage`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infranet.context import AppContext
from infranet.i18n import t
from infranet.newsletter import alerts, outbound
from infranet.newsletter.compose import Composer
from infranet.newsletter.queue import (
    FAILED,
    RETRY,
    SENT,
    UNKNOWN,
    Applied,
    Batch,
    DeliveryQueue,
    Job,
    Transition,
    open_queue,
    released,
    settle,
)
from infranet.newsletter.recovery import LIVE_WORKERS, new_worker_id
from infranet.newsletter.smtp_health import SmtpHealth, announce_outage
from infranet.newsletter.throttle import DomainThrottle, RateLimiter
from infranet.storage.models import SubscriberStatus

log = logging.getLogger(__name__)

# How long the writer waits for more status changes before committing a batch (unless
# every worker already waits for a claim). With ten connections 2 ms gathers several
# messages per transaction and cuts the hops to the database thread by half or more;
# longer windows make workers wait for their next claim. A 250 is recorded at most this
# much later, which only widens the (already tiny) window in which a crash turns a
# delivered message into `unknown`; nothing is ever sent before its claim is committed.
GROUP_COMMIT_WINDOW_S = 0.002


@dataclass
class _Op:
    kind: str  # claim | finish | hand | exit
    future: asyncio.Future[Any] | None = None
    job: Job | None = None
    transition: Transition | None = None


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

    def count(self, transitions: list[Transition], applied: Applied) -> None:
        for tr in transitions:
            if tr.kind == SENT:
                self.sent += 1
            elif tr.kind == FAILED:
                self.failed += 1
            elif tr.kind == RETRY:
                self.retried += 1
            elif tr.kind == UNKNOWN:
                self.unknown += 1
                self.unknown_by_issue[tr.job.issue_id] = \
                    self.unknown_by_issue.get(tr.job.issue_id, 0) + 1
        self.disabled += applied.disabled
        self.paused.extend(p.issue_id for p in applied.paused)
        self.issues_done.extend(applied.issues_done)


async def alert_paused(ctx: AppContext, issue_id: int, refused: int, sample: int) -> None:
    """Tell the admins that an issue was paused, with a button that resumes it."""
    async with ctx.db.transaction() as session:
        key = await alerts.open_action(session, alerts.RESUME, issue_id=issue_id)
    values = {"issue": issue_id, "refused": refused, "sample": sample}
    await ctx.alerts.notify(t("en", "newsletter.alert_paused", **values),
                            t("pl", "newsletter.alert_paused", **values),
                            action=alerts.Action(alerts.RESUME, key, issue_id))


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
        self.health = health or SmtpHealth()
        self.prefetch = self.rate.interval == 0 and not self.outbox
        self._ops: asyncio.Queue[_Op] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._outage_checked = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connect_errors = 0
        self._active_workers = 0

    def stop(self) -> None:
        self._stopping.set()

    # --- writer ---

    async def _writer(self, queue: DeliveryQueue) -> None:
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
                await self._apply(queue, batch)
            except Exception as exc:
                log.exception("newsletter: database write failed")
                for o in batch:
                    if o.future is not None and not o.future.done():
                        o.future.set_exception(exc)
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

    async def _apply(self, queue: DeliveryQueue, batch: list[_Op]) -> None:
        """One transaction for a batch: record outcomes, then claim for the waiting workers."""
        transitions = [o.transition for o in batch if o.kind == "finish" and o.transition]
        claims = [o for o in batch if o.kind == "claim"]
        applied = await queue.apply(Batch(
            transitions=transitions,
            handed=[o.job.delivery_id for o in batch if o.kind == "hand" and o.job is not None],
            claim=len(claims), blocked_domains=self.throttle.blocked() if claims else ()))
        self.report.count(transitions, applied)
        for paused in applied.paused:  # committed: tell the admins, off the writer's path
            self._spawn(alert_paused(self.ctx, paused.issue_id, paused.refused, paused.outcomes))
        for op in batch:
            if op.kind != "claim" and op.future is not None and not op.future.done():
                op.future.set_result(None)
        wait = self._wait(applied.due) if len(applied.jobs) < len(claims) else None
        for i, op in enumerate(claims):
            assert op.future is not None
            if not op.future.done():
                op.future.set_result(applied.jobs[i] if i < len(applied.jobs) else wait)

    def _wait(self, due: float | None) -> float | None:
        """How long a worker without a claim waits before asking again; None: stop."""
        if due is None:
            return None
        if due == 0:  # due now but not claimable: a paused domain, or another sender's lock
            unblock = self.throttle.next_unblock()
            due = unblock - time.monotonic() if unblock is not None else 0.2
        return max(0.05, min(due, 5.0))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- workers ---

    async def _call(self, op: _Op) -> Any:
        return await self._request(op)

    def _request(self, op: _Op) -> asyncio.Future[Any]:
        op.future = asyncio.get_running_loop().create_future()
        self._ops.put_nowait(op)
        return op.future

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
                    await announce_outage(self.ctx, True, str(exc)[:200])
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
                await announce_outage(self.ctx, False, None)
            return True
        return False

    async def _release(self, claim: asyncio.Future[Any] | None) -> None:
        """Give back a delivery claimed ahead but never sent (stop, lost connection)."""
        if claim is None:
            return
        try:
            result = await claim
        except Exception:
            return
        if isinstance(result, Job):
            await self._call(_Op("finish", transition=released(result)))

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
                    await self._call(_Op("finish", transition=released(result)))
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

    def _settle(self, job: Job, outcome: outbound.Outcome, message_id: str | None = None) -> _Op:
        return _Op("finish", transition=settle(job, outcome, self.ctx.settings.smtp,
                                               self.ctx.now(), message_id=message_id))

    async def _deliver(self, transport: Any, job: Job, handed: asyncio.Future[Any]) -> None:
        subscriber = job.subscriber
        if subscriber is None or subscriber["status"] != SubscriberStatus.CONFIRMED:
            await self._call(self._settle(job, outbound.Outcome(
                "skipped", 0, "the subscriber left before this issue was sent")))
            return
        envelope = await self.composer.issue_message(job.issue_id, subscriber, job.delivery_id,
                                                     eightbit=bool(getattr(transport, "eightbit", False)))
        if envelope is None:  # nothing left for this subscriber's current preferences
            await self._call(self._settle(job, outbound.Outcome(
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
        self._ops.put_nowait(self._settle(job, outcome, envelope.message_id))

    async def run(self) -> SendReport:
        queue = open_queue(self.ctx, worker_id=self.worker_id, issue_ids=self.issue_ids,
                           pause_slack=self.concurrency)
        LIVE_WORKERS.add(self.worker_id)
        outbound.announce_outbox(self.ctx)
        writer = asyncio.create_task(self._writer(queue), name="newsletter-writer")
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
                await writer
            await queue.close()
            LIVE_WORKERS.discard(self.worker_id)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        if not self._stopping.is_set():
            self.report.issues_done.extend(await queue.finish_issues())
        return self.report
