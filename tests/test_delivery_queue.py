"""The delivery queue's contract: the same assertions against the backend of each engine.

`db_url` runs every test on SQLite (`queue_sqlite.SqliteQueue`) and, with
INFRANET_TEST_DATABASE_URL, on PostgreSQL (`queue_postgres.PostgresQueue`): claim order and
exclusivity, what each outcome does to a delivery, handoff marks, claims given back, a
paused issue, recovery after a crash and when the next delivery is due. The sender's own
behaviour over a real SMTP server is tested in test_newsletter_delivery.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from infranet.context import AppContext
from infranet.newsletter import outbound
from infranet.newsletter.issues import add_note, build_issue
from infranet.newsletter.queue import (
    IN_FLIGHT_RECHECK_S,
    Batch,
    DeliveryQueue,
    Job,
    open_queue,
    released,
    settle,
)
from infranet.newsletter.queue_postgres import PostgresQueue
from infranet.newsletter.queue_sqlite import SqliteQueue
from infranet.newsletter.recovery import LIVE_WORKERS, new_worker_id, recover_interrupted
from infranet.storage.actors import Actor
from infranet.storage.models import Delivery, IssueStatus, NewsletterIssue, Subscriber
from tests.newsletter_support import add_subscribers, newsletter_context

SENT = outbound.Outcome(outbound.SENT, 250, "2.0.0 queued")
NO_SUCH_USER = outbound.Outcome(outbound.PERMANENT, 550, "5.1.1 No such user")
TRY_LATER = outbound.Outcome(outbound.TEMPORARY, 451, "4.7.1 Try again later")
LOST_IN_DATA = outbound.Outcome(outbound.AMBIGUOUS, 0, "connection lost while accepting", True)


@pytest.fixture
async def nctx(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    ctx = await newsletter_context(db_url, tmp_path, {"retry_base_s": 60, "max_attempts": 3},
                                   newsletter={"pause_sample": 4, "pause_failure_share": 0.25})
    yield ctx
    await ctx.db.dispose()


@asynccontextmanager
async def queue_of(ctx: AppContext, **kwargs: Any) -> AsyncIterator[DeliveryQueue]:
    queue = open_queue(ctx, worker_id=new_worker_id(), **kwargs)
    try:
        yield queue
    finally:
        await queue.close()


async def issues(ctx: AppContext, emails: list[str], count: int = 1) -> list[int]:
    """`count` issues, each with one delivery per address (a note is their content)."""
    await add_subscribers(ctx, {e: {} for e in emails})
    ids = []
    for n in range(count):
        async with ctx.db.transaction() as session:
            await add_note(session, ctx, Actor.cli(), f"Notka {n}")
            built = await build_issue(session, ctx, Actor.cli(), period_key=f"k{n}")
        assert built.issue is not None and built.recipients == len(emails)
        ids.append(built.issue.id)
    return ids


async def rows(ctx: AppContext) -> dict[int, Delivery]:
    async with ctx.db.read() as session:
        return {d.id: d for d in (await session.scalars(select(Delivery))).all()}


def emails(n: int, domain: str = "example.org") -> list[str]:
    return [f"r{i:02d}@{domain}" for i in range(n)]


def aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


async def test_the_backend_is_chosen_by_the_engine(nctx: AppContext) -> None:
    async with queue_of(nctx) as queue:
        assert isinstance(queue, SqliteQueue if nctx.db.is_sqlite else PostgresQueue)


async def test_claims_go_oldest_issue_first_in_id_order(nctx: AppContext) -> None:
    first, second = await issues(nctx, emails(4), count=2)
    async with queue_of(nctx) as queue:
        jobs = await queue.claim(3)
        assert [j.issue_id for j in jobs] == [first] * 3
        assert [j.delivery_id for j in jobs] == sorted(j.delivery_id for j in jobs)
        assert [j.email for j in jobs] == emails(3)
        assert jobs[0].subscriber is not None and jobs[0].subscriber["email"] == "r00@example.org"
        assert all(j.attempts == 1 for j in jobs)
        more = await queue.claim(3)  # the last of the first issue, then the second
        assert [j.issue_id for j in more] == [first, second, second]
        state = await rows(nctx)
        for job in jobs + more:
            row = state[job.delivery_id]
            assert (row.status, row.claimed_by, row.attempts) == ("sending", queue.worker_id, 1)
            assert row.claimed_at is not None and row.handed_at is None
        assert sum(r.status == "pending" for r in state.values()) == 2


async def test_a_blocked_domain_is_not_claimed(nctx: AppContext) -> None:
    await issues(nctx, ["a@slow.example", "b@fast.example", "c@slow.example"])
    async with queue_of(nctx) as queue:
        applied = await queue.apply(Batch(claim=3, blocked_domains=["slow.example"]))
        assert [j.email for j in applied.jobs] == ["b@fast.example"]
        assert applied.due == 0  # due now, but held back: the sender decides how long to wait
        assert [j.email for j in await queue.claim(3)] == ["a@slow.example", "c@slow.example"]


async def test_two_queues_never_claim_the_same_delivery(nctx: AppContext) -> None:
    await issues(nctx, emails(40))
    async with queue_of(nctx) as one, queue_of(nctx) as two:
        batches = await asyncio.gather(*(q.claim(3) for q in [one, two] * 8))
        claimed = [j.delivery_id for jobs in batches for j in jobs]
        assert len(claimed) == len(set(claimed)) == 40
        state = await rows(nctx)
        for queue, jobs in zip([one, two] * 8, batches, strict=True):
            assert all(state[j.delivery_id].claimed_by == queue.worker_id for j in jobs)
        assert await one.claim(1) == [] and await two.claim(1) == []


async def test_what_each_outcome_does_to_a_delivery(nctx: AppContext) -> None:
    [issue_id] = await issues(nctx, emails(6))
    smtp = nctx.settings.smtp
    async with queue_of(nctx) as queue:
        sent, gone, later, lost, back, skipped = await queue.claim(6)
        now = nctx.now()
        applied = await queue.apply(Batch(transitions=[
            settle(sent, SENT, smtp, now, message_id="<m1@example.org>"),
            settle(gone, NO_SUCH_USER, smtp, now),
            settle(later, TRY_LATER, smtp, now),
            settle(lost, LOST_IN_DATA, smtp, now),
            released(back),
            settle(skipped, outbound.Outcome("skipped", 0, "the subscriber left"), smtp, now),
        ]))
        assert applied.jobs == [] and applied.disabled == 0 and applied.paused == []
        state = await rows(nctx)
        row = state[sent.delivery_id]
        assert (row.status, row.message_id, row.last_error) == ("sent", "<m1@example.org>", None)
        assert row.sent_at is not None
        row = state[gone.delivery_id]
        assert row.status == "failed" and row.last_error.startswith("550 5.1.1")
        row = state[later.delivery_id]
        assert (row.status, row.claimed_by, row.handed_at, row.attempts) == ("pending", None, None, 1)
        assert row.last_error.startswith("451")
        wait = (aware(row.next_attempt_at) - now).total_seconds()  # type: ignore[operator]
        assert 60 * 0.8 - 1 <= wait <= 60 * 1.2 + 1  # retry_base_s, with jitter
        row = state[lost.delivery_id]
        assert row.status == "unknown" and "connection lost" in row.last_error
        row = state[back.delivery_id]
        assert (row.status, row.claimed_by, row.attempts) == ("pending", None, 0)
        row = state[skipped.delivery_id]
        assert (row.status, row.last_error) == ("failed", "the subscriber left")
        async with nctx.db.read() as session:
            bounced = await session.scalar(select(Subscriber.hard_bounces).where(
                Subscriber.email == gone.email))
        assert bounced == 1

        # Only a delivery still `sending` moves: a late or repeated outcome changes nothing.
        await queue.apply(Batch(transitions=[settle(gone, SENT, smtp, now, message_id="<x>"),
                                             released(sent)]))
        again = await rows(nctx)
        assert again[gone.delivery_id].status == "failed"
        assert (again[sent.delivery_id].status, again[sent.delivery_id].attempts) == ("sent", 1)

        # The released one is claimed again; the retry waits for its time.
        [job] = await queue.claim(6)
        assert job.delivery_id == back.delivery_id and job.attempts == 1
        assert job.issue_id == issue_id


async def test_a_retry_gives_up_after_max_attempts(nctx: AppContext) -> None:
    await issues(nctx, emails(1))
    smtp = nctx.settings.smtp
    async with queue_of(nctx) as queue:
        [job] = await queue.claim(1)
        tired = Job(job.delivery_id, job.issue_id, job.subscriber, job.email, smtp.max_attempts)
        await queue.apply(Batch(transitions=[settle(tired, TRY_LATER, smtp, nctx.now())]))
        [row] = (await rows(nctx)).values()
        assert row.status == "failed" and row.last_error.startswith("gave up after 3 attempts")


async def test_handoff_marks_ride_with_the_claim(nctx: AppContext) -> None:
    await issues(nctx, emails(3))
    async with queue_of(nctx) as queue:
        first, second = await queue.claim(2)
        applied = await queue.apply(Batch(handed=[first.delivery_id], claim=1))
        assert [j.email for j in applied.jobs] == ["r02@example.org"]
        state = await rows(nctx)
        assert state[first.delivery_id].handed_at is not None
        assert state[second.delivery_id].handed_at is None
        # a row that is no longer `sending` gets no mark
        await queue.apply(Batch(transitions=[released(second)], handed=[second.delivery_id]))
        assert (await rows(nctx))[second.delivery_id].handed_at is None


async def test_a_paused_issue_claims_nothing(nctx: AppContext) -> None:
    [issue_id] = await issues(nctx, emails(3))
    async with nctx.db.transaction() as session:
        await session.execute(update(NewsletterIssue).where(NewsletterIssue.id == issue_id)
                              .values(status=IssueStatus.PAUSED))
    async with queue_of(nctx) as queue:
        applied = await queue.apply(Batch(claim=2))
        assert applied.jobs == [] and applied.due is None
        async with nctx.db.transaction() as session:
            await session.execute(update(NewsletterIssue).where(NewsletterIssue.id == issue_id)
                                  .values(status=IssueStatus.SENDING))
        assert len(await queue.claim(2)) == 2


async def test_refusals_among_the_first_outcomes_pause_the_issue(nctx: AppContext) -> None:
    [issue_id] = await issues(nctx, emails(8))
    smtp = nctx.settings.smtp
    async with queue_of(nctx) as queue:
        jobs = await queue.claim(3)
        outcomes = [SENT, NO_SUCH_USER, NO_SUCH_USER]  # 2 of 3 refused: more than 0.25 x 4
        applied = await queue.apply(Batch(transitions=[
            settle(j, o, smtp, nctx.now()) for j, o in zip(jobs, outcomes, strict=True)], claim=1))
        assert [p.issue_id for p in applied.paused] == [issue_id]
        assert applied.paused[0].refused == 2
        assert applied.jobs == [] and applied.due is None
        async with nctx.db.read() as session:
            assert await session.scalar(select(NewsletterIssue.status)) == "paused"


async def test_recovery_after_a_crash(nctx: AppContext) -> None:
    [issue_id] = await issues(nctx, emails(4))
    async with queue_of(nctx) as queue:
        offered, ahead = await queue.claim(2)
        await queue.apply(Batch(handed=[offered.delivery_id]))
        LIVE_WORKERS.add(queue.worker_id)  # its sender still runs: nothing to recover
        try:
            async with nctx.db.transaction() as session:
                assert await recover_interrupted(session, nctx) == []
        finally:
            LIVE_WORKERS.discard(queue.worker_id)
        # The sender is gone (this process, not among the live ones): a crash leftover.
        async with nctx.db.transaction() as session:
            assert await recover_interrupted(session, nctx) == [(issue_id, 1)]
        state = await rows(nctx)
        row = state[offered.delivery_id]
        assert row.status == "unknown" and "interrupted" in row.last_error
        row = state[ahead.delivery_id]  # never offered: goes out again, its attempt not counted
        assert (row.status, row.claimed_by, row.attempts) == ("pending", None, 0)
        assert [j.delivery_id for j in await queue.claim(1)] == [ahead.delivery_id]


async def test_when_the_next_delivery_is_due(nctx: AppContext) -> None:
    [issue_id] = await issues(nctx, emails(2))
    smtp = nctx.settings.smtp
    async with queue_of(nctx) as queue:
        first, second = await queue.claim(2)
        # nothing pending, but deliveries of this queue are in flight: look again soon
        assert (await queue.apply(Batch(claim=1))).due == IN_FLIGHT_RECHECK_S
        await queue.apply(Batch(transitions=[settle(first, SENT, smtp, nctx.now())]))
        applied = await queue.apply(Batch(
            transitions=[settle(second, TRY_LATER, smtp, nctx.now())], claim=1))
        assert applied.jobs == [] and applied.due is not None
        assert 60 * 0.8 - 1 <= applied.due <= 60 * 1.2 + 1  # the retry's time
        assert applied.issues_done == []
        async with nctx.db.transaction() as session:  # the retry's time has come
            await session.execute(update(Delivery).where(Delivery.id == second.delivery_id)
                                  .values(next_attempt_at=nctx.now()))
        [job] = await queue.claim(1)
        assert job.attempts == 2
        await queue.apply(Batch(transitions=[settle(job, SENT, smtp, nctx.now())]))
        applied = await queue.apply(Batch(claim=1))
        assert applied.due is None and applied.issues_done == [issue_id]  # nothing left
        async with nctx.db.read() as session:
            issue = await session.get(NewsletterIssue, issue_id)
            assert issue is not None and issue.status == "done" and issue.finished_at is not None


async def test_a_queue_for_some_issues_claims_only_theirs(nctx: AppContext) -> None:
    _first, second = await issues(nctx, emails(2), count=2)
    async with queue_of(nctx, issue_ids=[second]) as queue:
        jobs = await queue.claim(5)
        assert {j.issue_id for j in jobs} == {second} and len(jobs) == 2
        assert (await queue.finish_issues()) == []
