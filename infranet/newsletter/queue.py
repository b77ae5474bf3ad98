"""The delivery queue: what the sender asks of the `deliveries` table, one interface, two backends.

A delivery moves `pending` -> `sending` (claimed) -> `sent` | `failed` | `unknown`, or back
to `pending`: a 4xx answer (retried later, with backoff) or a claim given back unsent.
The rules of those moves are written once, here: `settle()` decides what an SMTP outcome
does to a claimed delivery (a `Transition`), and `DeliveryQueue` applies a `Batch` of
transitions, handoff marks and a number of claims as one commit (the sender's group
commit), returning the claimed `Job`s. The statements that every engine runs the same way
(rare outcomes, hard bounces, pausing an issue, when the next delivery is due, finished
issues, loading the recipients) live in the base class. Only the hot statements, run for
every batch, are each engine's own, chosen once by `open_queue()`:

- `queue_postgres.PostgresQueue`: the 250s, the handoff marks and the claim in one statement
  (data-modifying CTEs, FOR UPDATE SKIP LOCKED), so that senders on several hosts never
  claim the same row and a batch costs one round trip and the commit;
- `queue_sqlite.SqliteQueue`: the same in one call on a private sqlite3 connection
  (`BEGIN IMMEDIATE`, the single-writer rule), see that module for the measured gain.

tests/test_delivery_queue.py runs one contract against both backends.
Crash leftovers are settled by `recovery.recover_interrupted()`, before a sender starts.
"""

from __future__ import annotations

import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from infranet.config import SmtpSettings
from infranet.context import AppContext
from infranet.newsletter import outbound
from infranet.newsletter.replies import ReplyKind, classify
from infranet.newsletter.subscribers import record_hard_bounce
from infranet.storage.database import rows_changed
from infranet.storage.models import (
    Delivery,
    DeliveryStatus,
    IssueStatus,
    NewsletterIssue,
    Subscriber,
)

log = logging.getLogger(__name__)

# What `next_due` answers when nothing is pending but deliveries this queue claimed are
# still in flight: one may come back for a retry (4xx), so look again soon.
IN_FLIGHT_RECHECK_S = 0.05

# Transition kinds.
SENT, RETRY, FAILED, UNKNOWN, RELEASED = "sent", "retry", "failed", "unknown", "released"


@dataclass
class Job:
    """A claimed delivery, with what the composer needs of its recipient."""

    delivery_id: int
    issue_id: int
    subscriber: dict[str, Any] | None
    email: str | None
    attempts: int


@dataclass(frozen=True)
class Transition:
    """What becomes of one claimed delivery (only while it is still `sending`)."""

    kind: str  # sent | retry | failed | unknown | released
    job: Job
    error: str | None = None
    message_id: str | None = None
    retry_at: datetime | None = None
    hard_bounce: bool = False  # the recipient's fault: counts toward disabling the address
    refused: bool = False  # a 5xx answer: counts toward pausing the issue


def settle(job: Job, outcome: outbound.Outcome, smtp: SmtpSettings, now: datetime, *,
           message_id: str | None = None) -> Transition:
    """The state machine: what an outcome of sending `job` does to its delivery.

    250: sent. 5xx: failed; `classify()` tells whose fault it is: the recipient's is a
    hard bounce, the sender's (policy, DMARC, spam) disables nobody. 4xx or a connection
    lost before the message: pending again after an exponential backoff, failed after
    `max_attempts`. Lost while the server was taking the message: unknown. A delivery
    skipped before sending (the subscriber left, nothing matches): failed."""
    kind = outcome.kind
    if kind == outbound.SENT:
        return Transition(SENT, job, message_id=message_id)
    if kind == outbound.AMBIGUOUS:
        return Transition(UNKNOWN, job, error=outcome.detail)
    if kind == outbound.PERMANENT:
        refused = outcome.code >= 500
        blamed = classify(outcome.code, None, outcome.message) if refused else None
        if blamed == ReplyKind.SENDER:
            # Our message or our server is refused (policy, DMARC, spam): not a bounce.
            return Transition(FAILED, job, error=f"{outcome.detail} [refused for the sender]"[:500],
                              refused=True)
        return Transition(FAILED, job, error=outcome.detail, refused=refused,
                          hard_bounce=refused and job.subscriber is not None)
    if kind == "skipped":
        return Transition(FAILED, job, error=outcome.message)
    # temporary: back to pending, later
    if job.attempts >= smtp.max_attempts:
        return Transition(FAILED, job,
                          error=f"gave up after {job.attempts} attempts: {outcome.detail}")
    delay = min(3600.0, smtp.retry_base_s * 2 ** (job.attempts - 1)) * random.uniform(0.8, 1.2)
    return Transition(RETRY, job, error=outcome.detail, retry_at=now + timedelta(seconds=delay))


def released(job: Job) -> Transition:
    """A claim given back unsent (stopping, lost connection): pending again, its attempt
    not counted."""
    return Transition(RELEASED, job)


@dataclass
class Batch:
    """One transaction of the writer: transitions, then handoff marks, then claims."""

    transitions: Sequence[Transition] = ()
    handed: Sequence[int] = ()  # delivery ids about to be offered to the server
    claim: int = 0
    blocked_domains: Sequence[str] = ()  # recipient domains not to claim for now


@dataclass
class Paused:
    issue_id: int
    refused: int
    outcomes: int


@dataclass
class Applied:
    """What one batch did once committed."""

    jobs: list[Job] = field(default_factory=list)  # claimed, in id order
    # When fewer jobs than asked: seconds until a pending delivery is due (0: due now, but
    # held by a blocked domain or another sender's lock), None when nothing is left.
    due: float | None = None
    disabled: int = 0
    paused: list[Paused] = field(default_factory=list)
    issues_done: list[int] = field(default_factory=list)


class DeliveryQueue(ABC):
    """The deliveries of the issues in status `sending` (or of `issue_ids` among them),
    claimed under `worker_id`. `pause_slack`: outcomes of deliveries already on their
    way when an issue reaches its pause sample (one per connection)."""

    def __init__(self, ctx: AppContext, *, worker_id: str, issue_ids: list[int] | None = None,
                 pause_slack: int = 1) -> None:
        self.ctx = ctx
        self.worker_id = worker_id
        self.issue_ids = issue_ids
        self.pause_slack = pause_slack
        self._issues_cache: tuple[float, list[int]] | None = None
        self._loaded_issues: set[int] = set()
        self._subscriber_cache: dict[int, dict[str, Any]] = {}

    @abstractmethod
    async def apply(self, batch: Batch) -> Applied:
        """Apply the transitions, stamp `handed_at`, then claim up to `batch.claim` due
        deliveries (oldest issue first, then by id) for this worker; committed when it
        returns. The 250s, handoffs and claims share one transaction (SQLite records the
        rare outcomes in one of their own just before)."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the backend holds (a private connection)."""

    async def claim(self, n: int, blocked_domains: Iterable[str] = ()) -> list[Job]:
        return (await self.apply(Batch(claim=n, blocked_domains=list(blocked_domains)))).jobs

    async def finish_issues(self) -> list[int]:
        """Mark done the issues in scope that have nothing pending or in flight."""
        async with self.ctx.db.engine.begin() as conn:
            return await self._finish_issues(conn)

    # --- statements shared by the backends (rare, or not per message) ---

    async def _record_rare(self, conn: AsyncConnection, transitions: Sequence[Transition],
                           applied: Applied) -> None:
        """Failures, retries and unknowns, with hard bounces and the pause check."""
        session = AsyncSession(bind=conn)
        now = self.ctx.now()
        for tr in transitions:
            job = tr.job
            values: dict[str, Any]
            if tr.kind == RETRY:
                values = {"status": DeliveryStatus.PENDING, "claimed_by": None, "handed_at": None,
                          "next_attempt_at": tr.retry_at or now, "last_error": tr.error}
            else:
                status = DeliveryStatus.UNKNOWN if tr.kind == UNKNOWN else DeliveryStatus.FAILED
                values = {"status": status, "last_error": tr.error}
            if tr.hard_bounce and job.subscriber is not None and await record_hard_bounce(
                    session, self.ctx, job.subscriber["id"]):
                applied.disabled += 1
            await session.execute(
                update(Delivery).where(Delivery.id == job.delivery_id,
                                       Delivery.status == DeliveryStatus.SENDING)
                .values(**values).execution_options(synchronize_session=False))
            if tr.refused:
                await self._maybe_pause(session, job.issue_id, applied)
        await session.flush()

    async def _maybe_pause(self, session: AsyncSession, issue_id: int, applied: Applied) -> None:
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
        if not refused or refused <= limit or done > sample + self.pause_slack:
            return
        paused = await session.execute(
            update(NewsletterIssue).where(NewsletterIssue.id == issue_id,
                                          NewsletterIssue.status == IssueStatus.SENDING,
                                          NewsletterIssue.resumed_at.is_(None))
            .values(status=IssueStatus.PAUSED).execution_options(synchronize_session=False))
        if rows_changed(paused):
            self._issues_cache = None
            applied.paused.append(Paused(issue_id, refused, done))
            log.warning("newsletter: issue #%s paused: %d of its first %d outcomes were refused",
                        issue_id, refused, done)

    def _issue_filter(self) -> Any:
        sending = select(NewsletterIssue.id).where(NewsletterIssue.status == IssueStatus.SENDING)
        if self.issue_ids is not None:
            sending = sending.where(NewsletterIssue.id.in_(self.issue_ids))
        return Delivery.issue_id.in_(sending.scalar_subquery())

    def _issues_stale(self) -> bool:
        return self._issues_cache is None or time.monotonic() - self._issues_cache[0] > 1.0

    async def _sending_issues(self, conn: AsyncConnection) -> list[int]:
        """Issues in progress, re-read at most once a second (and whenever claims run dry)."""
        if self._issues_cache is None or self._issues_stale():
            query = select(NewsletterIssue.id).where(NewsletterIssue.status == IssueStatus.SENDING)
            if self.issue_ids is not None:
                query = query.where(NewsletterIssue.id.in_(self.issue_ids))
            ids = list((await conn.execute(query.order_by(NewsletterIssue.id))).scalars().all())
            self._issues_cache = (time.monotonic(), ids)
        return self._issues_cache[1]

    async def _subscribers(self, conn: AsyncConnection, issue_id: int, ids: set[int]) -> None:
        """Load (once per issue, in one query) the subscribers its deliveries go to."""
        columns = (Subscriber.id, Subscriber.email, Subscriber.language, Subscriber.districts,
                   Subscriber.categories, Subscriber.status, Subscriber.token_version)
        if issue_id not in self._loaded_issues:
            self._loaded_issues.add(issue_id)
            query = (select(*columns).join(Delivery, Delivery.subscriber_id == Subscriber.id)
                     .where(Delivery.issue_id == issue_id,
                            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING])))
        else:
            missing = ids - self._subscriber_cache.keys()
            if not missing:
                return
            query = select(*columns).where(Subscriber.id.in_(missing))
        for row in (await conn.execute(query)).all():
            self._subscriber_cache[row.id] = dict(row._mapping)

    def _jobs(self, rows: Iterable[Sequence[Any]]) -> list[Job]:
        """(id, issue_id, subscriber_id, email, attempts) rows as jobs, in id order."""
        return [Job(r[0], r[1], self._subscriber_cache.get(r[2]), r[3], r[4])
                for r in sorted(rows, key=lambda r: r[0])]

    async def _next_due(self, conn: AsyncConnection, applied: Applied) -> float | None:
        """Seconds until something may become claimable (0: due now); None when nothing is
        pending and nothing this queue claimed is in flight. Marks finished issues done."""
        self._issues_cache = None
        applied.issues_done.extend(await self._finish_issues(conn))
        now = self.ctx.now()
        earliest = (await conn.execute(
            select(func.min(func.coalesce(Delivery.next_attempt_at, now)))
            .where(Delivery.status == DeliveryStatus.PENDING, self._issue_filter()))).scalar()
        if earliest is None:
            # Nothing pending; but a message of ours still in flight may come back for a
            # retry (4xx), so only stop once none is.
            mine = (await conn.execute(
                select(func.count()).select_from(Delivery)
                .where(Delivery.status == DeliveryStatus.SENDING,
                       Delivery.claimed_by == self.worker_id))).scalar()
            return IN_FLIGHT_RECHECK_S if mine else None
        if earliest.tzinfo is None:  # SQLite through Core: stored naive UTC
            earliest = earliest.replace(tzinfo=UTC)
        return max(0.0, (earliest - now).total_seconds())

    async def _finish_issues(self, conn: AsyncConnection) -> list[int]:
        open_issues = select(NewsletterIssue.id).where(NewsletterIssue.status == IssueStatus.SENDING)
        if self.issue_ids is not None:
            open_issues = open_issues.where(NewsletterIssue.id.in_(self.issue_ids))
        busy = select(Delivery.issue_id).where(
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING])).distinct()
        done_ids = list((await conn.execute(
            open_issues.where(NewsletterIssue.id.not_in(busy)))).scalars().all())
        if done_ids:
            await conn.execute(update(NewsletterIssue).where(
                NewsletterIssue.id.in_(done_ids), NewsletterIssue.status == IssueStatus.SENDING)
                .values(status=IssueStatus.DONE, finished_at=self.ctx.now()))
            log.info("newsletter: issue(s) %s finished", ", ".join(map(str, done_ids)))
        return done_ids


def open_queue(ctx: AppContext, *, worker_id: str, issue_ids: list[int] | None = None,
               pause_slack: int = 1) -> DeliveryQueue:
    """The backend of this engine (the only place that asks which engine it is)."""
    if ctx.db.is_sqlite:
        from infranet.newsletter.queue_sqlite import SqliteQueue

        return SqliteQueue(ctx, worker_id=worker_id, issue_ids=issue_ids, pause_slack=pause_slack)
    from infranet.newsletter.queue_postgres import PostgresQueue

    return PostgresQueue(ctx, worker_id=worker_id, issue_ids=issue_ids, pause_slack=pause_slack)


def blocked_patterns(domains: Iterable[str]) -> list[str]:
    """LIKE patterns (escape character `\\`) matching the addresses of these domains."""
    return ["%@" + d.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            for d in domains]
