"""The delivery queue on SQLite: a batch in one thread call (see `sqlite_writer`).

The 250s, released claims, handoff marks and the claim of a batch run in one call on
the queue's private sqlite3 connection (`SqliteBatchWriter`, `BEGIN IMMEDIATE`: the
single-writer rule holds against the engine's connections, so two queues, in one
process or two, never claim the same row). The rare outcomes go first, in a SQLAlchemy
transaction of their own, through the shared statements of `queue.DeliveryQueue`;
reading the issues in progress, loading recipients and working out when the next
delivery is due go through SQLAlchemy too.
"""

from __future__ import annotations

import asyncio

from infranet.context import AppContext
from infranet.newsletter.queue import (
    RELEASED,
    SENT,
    Applied,
    Batch,
    DeliveryQueue,
    blocked_patterns,
)
from infranet.newsletter.sqlite_writer import SqliteBatchWriter


class SqliteQueue(DeliveryQueue):
    def __init__(self, ctx: AppContext, *, worker_id: str, issue_ids: list[int] | None = None,
                 pause_slack: int = 1) -> None:
        super().__init__(ctx, worker_id=worker_id, issue_ids=issue_ids, pause_slack=pause_slack)
        self.writer = SqliteBatchWriter(ctx.db.url)

    async def close(self) -> None:
        self.writer.close()

    async def apply(self, batch: Batch) -> Applied:
        applied = Applied()
        rare = [t for t in batch.transitions if t.kind not in (SENT, RELEASED)]
        if rare:
            async with self.ctx.db.engine.begin() as conn:
                await self._record_rare(conn, rare, applied)
        sent = [(t.job.delivery_id, t.message_id) for t in batch.transitions if t.kind == SENT]
        released = [t.job.delivery_id for t in batch.transitions if t.kind == RELEASED]
        if batch.claim and self._issues_stale():
            async with self.ctx.db.engine.connect() as conn:
                await self._sending_issues(conn)
        issue_ids = self._issues_cache[1] if batch.claim and self._issues_cache else []
        rows = await asyncio.to_thread(
            self.writer.apply, now=self.ctx.now(), worker_id=self.worker_id, sent=sent,
            released=released, claim=batch.claim, issue_ids=issue_ids,
            exclude_patterns=blocked_patterns(batch.blocked_domains), handed=list(batch.handed))
        missing = {r[2] for r in rows if r[2] is not None and r[2] not in self._subscriber_cache}
        if missing:
            async with self.ctx.db.engine.connect() as conn:
                for issue_id in sorted({r[1] for r in rows}):
                    await self._subscribers(conn, issue_id, missing)
        applied.jobs = self._jobs(rows)
        if batch.claim and len(applied.jobs) < batch.claim:
            async with self.ctx.db.engine.begin() as conn:
                applied.due = await self._next_due(conn, applied)
        return applied
