"""The delivery queue on PostgreSQL: a batch in one statement and the commit.

The 250s of the batch, its handoff marks and the claim run as one statement of
data-modifying CTEs, so that a batch costs one round trip and the commit. The claim picks
its rows with `FOR UPDATE SKIP LOCKED` in a CTE, which is evaluated once (an
`UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` may re-run the
subquery and update more rows than the limit); the row locks hold until the commit, so a
sender on another host skips them and two senders never claim the same delivery.
Released claims and the rare outcomes go first, through the shared statements of
`queue.DeliveryQueue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from infranet.newsletter.queue import (
    RELEASED,
    SENT,
    Applied,
    Batch,
    DeliveryQueue,
    Job,
    Transition,
    blocked_patterns,
)
from infranet.storage.models import Delivery, DeliveryStatus


class PostgresQueue(DeliveryQueue):
    async def close(self) -> None:
        """Nothing of its own: every statement runs on the engine's pool."""

    async def apply(self, batch: Batch) -> Applied:
        applied = Applied()
        sent = [t for t in batch.transitions if t.kind == SENT]
        released = [t.job.delivery_id for t in batch.transitions if t.kind == RELEASED]
        rare = [t for t in batch.transitions if t.kind not in (SENT, RELEASED)]
        async with self.ctx.db.engine.begin() as conn:
            if released:
                await conn.execute(
                    update(Delivery).where(Delivery.id.in_(released),
                                           Delivery.status == DeliveryStatus.SENDING,
                                           Delivery.claimed_by == self.worker_id)
                    .values(status=DeliveryStatus.PENDING, claimed_by=None,
                            attempts=Delivery.attempts - 1))
            if rare:
                await self._record_rare(conn, rare, applied)
            if batch.claim:
                applied.jobs = await self._record_and_claim(conn, batch, sent)
            else:
                await self._record(conn, sent, batch.handed)
            if batch.claim and len(applied.jobs) < batch.claim:
                applied.due = await self._next_due(conn, applied)
        return applied

    async def _record(self, conn: AsyncConnection, sent: Sequence[Transition],
                      handed: Sequence[int]) -> None:
        """A batch without claims: its 250s in one executemany, its handoff marks in one
        UPDATE (constant statements, prepared once; the CTE's text varies with the batch)."""
        now = self.ctx.now()
        if sent:
            await conn.execute(
                update(Delivery)
                .where(Delivery.id == bindparam("b_id"), Delivery.status == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.SENT, sent_at=now, message_id=bindparam("b_mid"),
                        last_error=None),
                [{"b_id": t.job.delivery_id, "b_mid": t.message_id} for t in sent])
        if handed:
            await conn.execute(update(Delivery).where(
                Delivery.id.in_(handed), Delivery.status == DeliveryStatus.SENDING)
                .values(handed_at=now))

    async def _record_and_claim(self, conn: AsyncConnection, batch: Batch,
                                sent: Sequence[Transition]) -> list[Job]:
        """Record the 250s, stamp the handoffs and claim up to `batch.claim` deliveries,
        one issue at a time, oldest first (`issue_id = :issue AND status = 'pending'
        ORDER BY id` walks ix_deliveries_issue_status in order)."""
        now = self.ctx.now()
        params: dict[str, Any] = {"now": now, "me": self.worker_id}
        done = ""
        if sent:
            values = []
            for k, tr in enumerate(sent):
                params[f"i{k}"], params[f"m{k}"] = tr.job.delivery_id, tr.message_id
                values.append(f"(CAST(:i{k} AS INTEGER), CAST(:m{k} AS VARCHAR))")
            # Fixed text throughout: every value below is a bound parameter.
            done = ("done AS (UPDATE deliveries AS d SET status = 'sent', sent_at = :now, "  # noqa: S608
                    "message_id = v.mid, last_error = NULL FROM (VALUES " + ", ".join(values) +
                    ") AS v(id, mid) WHERE d.id = v.id AND d.status = 'sending' RETURNING d.id), ")
        if batch.handed:
            marks = []
            for k, did in enumerate(batch.handed):
                params[f"h{k}"] = did
                marks.append(f":h{k}")
            done += ("handed AS (UPDATE deliveries SET handed_at = :now WHERE id IN ("  # noqa: S608
                     + ", ".join(marks) + ") AND status = 'sending' RETURNING id), ")
        exclude = ""
        for k, pattern in enumerate(blocked_patterns(batch.blocked_domains)):
            params[f"x{k}"] = pattern
            exclude += f" AND email NOT LIKE :x{k} ESCAPE '\\'"
        claimed: list[Any] = []
        for issue_id in await self._sending_issues(conn) if batch.claim else []:
            want = batch.claim - len(claimed)
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
        if done:  # nothing claimed from any issue: record the 250s (and handoffs) alone
            await conn.execute(text("WITH " + done.rstrip(", ") + " SELECT 1"), params)
        return self._jobs(claimed)
