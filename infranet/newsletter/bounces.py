"""The bounce mailbox: bounces that arrive later by mail, complaints and mailto:
unsubscribe requests, read over IMAP (`[bounces]`) and acted on.

Each message is matched to its newsletter delivery through the VERP envelope sender it
was sent back to (`verp`), or else through the original Message-ID (checked against
`deliveries.message_id`), never through an address alone: a forged report cannot
disable or unsubscribe someone. Then:

- a DSN (RFC 3464) with a permanent failure of the mailbox counts one hard bounce
  (`subscribers.record_hard_bounce`, at most once per delivery); delays, 4.x.x and
  refusals that blame the sender (5.7.x, "spam", DMARC...) count nothing (`dsn.verdict`);
- a complaint (ARF, RFC 5965, Feedback-Type abuse or fraud) unsubscribes at once;
- a mailto: unsubscribe request (`unsubscribe <id> <token>`, the List-Unsubscribe link
  compose.py puts in every issue, whose token is verified) unsubscribes;
- what was handled is moved to `done_folder`; what matches nothing, or is not understood,
  to `unmatched_folder` (or, with "", flagged and left where it is) for a person to read.

Once only: the handling of a batch and the record of its reports (`bounce_reports`, by
the report's Message-ID) commit together, and only then are the messages moved. A crash
between the two leaves them in the folder; the next run finds them recorded, counts
nothing again and moves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import t
from infranet.newsletter import alerts, dsn, verp
from infranet.newsletter.imap import Mailbox, MailboxError
from infranet.newsletter.subscribers import mark_unsubscribed, record_hard_bounce, unsubscribe
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import BounceReport, Delivery, Subscriber, SubscriberStatus

log = logging.getLogger(__name__)

# bounce_reports rows (no personal data: a hash, a time, an outcome); a report leaves the
# mailbox folder long before. Over a year, so the yearly evaluation made in January still
# counts the whole year's bounces.
KEEP_DAYS = 400
# Outcomes that go to the unmatched folder; every other one to the done folder.
UNMATCHED = "unmatched"
NOT_UNDERSTOOD = "unknown"
REPEATED = "repeated"

__all__ = ["BouncePoller", "BounceRun", "MailboxError", "process_mailbox"]


@dataclass
class BounceRun:
    """What one pass over the mailbox did (printed by the CLI, logged by the service)."""

    waiting: int = 0
    read: int = 0
    hard: int = 0  # hard bounces counted
    disabled: int = 0  # subscribers disabled by them (max_hard_bounces reached)
    duplicate: int = 0  # another hard bounce of a delivery already counted
    soft: int = 0
    delayed: int = 0
    sender: int = 0  # refusals blaming our mail or servers: nobody's bounce
    complaint: int = 0
    unsubscribe: int = 0
    none: int = 0  # DSNs of successful delivery (relayed, delivered)
    unmatched: int = 0
    unknown: int = 0  # matched, but neither a DSN, a complaint nor a request
    repeated: int = 0  # handled before and not moved (a crash between): counted nothing
    moved: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def summary(self) -> str:
        parts = [f"{f.name.replace('_', ' ')} {getattr(self, f.name)}" for f in fields(self)
                 if f.name not in ("waiting", "read", "moved") and getattr(self, f.name)]
        return f"read {self.read} of {self.waiting}: " + (", ".join(parts) or "nothing to do")


Progress = Callable[[BounceRun], None]


@dataclass
class _Item:
    report: dsn.Report
    delivery_id: int | None = None
    by_verp: bool = False
    outcome: str = UNMATCHED
    disabled: bool = False  # its hard bounce disabled the subscriber


def _parse(data: bytes) -> dsn.Report:
    try:
        return dsn.parse(data)
    except Exception:  # a message the parser chokes on is a person's to read, not a crash
        log.warning("bounces: a message could not be parsed", exc_info=True)
        return dsn.Report(hashlib.sha256(data).hexdigest(), "other", "", None)


def _fetch_parsed(box: Mailbox, uids: list[int]) -> list[tuple[int, dsn.Report]]:
    """In the worker thread: fetch a batch and parse it (CPU work off the event loop)."""
    return [(uid, _parse(data)) for uid, data in box.fetch(uids)]


def _file(box: Mailbox, done: list[int], unmatched: list[int]) -> None:
    s = box.settings
    box.move(done, s.done_folder)
    if s.unmatched_folder:
        box.move(unmatched, s.unmatched_folder)
    else:
        box.mark_unmatched(unmatched)


async def process_mailbox(ctx: AppContext, progress: Progress | None = None) -> BounceRun:
    """Read every waiting message of `[bounces] folder` once, a batch at a time.
    Raises MailboxError when the server cannot be reached or refuses a step."""
    settings = ctx.settings.bounces
    if not settings.enabled:
        raise MailboxError("no [bounces] host is configured")
    run = BounceRun()
    box = Mailbox(settings)
    await asyncio.to_thread(box.open)
    try:
        async with ctx.db.transaction() as session:
            await session.execute(delete(BounceReport).where(
                BounceReport.handled_at < ctx.now() - timedelta(days=KEEP_DAYS)))
        uids = await asyncio.to_thread(box.waiting)
        run.waiting = len(uids)
        batches = [uids[i:i + settings.batch_size] for i in range(0, len(uids), settings.batch_size)]
        ahead = asyncio.create_task(asyncio.to_thread(_fetch_parsed, box, batches[0])) if batches else None
        for number in range(len(batches)):
            assert ahead is not None
            fetched = await ahead
            # The next batch is fetched and parsed while this one is in the database; the
            # connection is used by one thread at a time (that fetch ends before the move).
            ahead = (asyncio.create_task(asyncio.to_thread(_fetch_parsed, box, batches[number + 1]))
                     if number + 1 < len(batches) else None)
            try:
                items = await _handle(ctx, [report for _, report in fetched])
            except BaseException:
                if ahead is not None:  # never close the connection under a running fetch
                    await asyncio.wait([ahead])
                    if not ahead.cancelled():
                        ahead.exception()  # retrieved: this batch's error is the one raised
                raise
            if ahead is not None:
                await asyncio.wait([ahead])
            done = [uid for (uid, _), item in zip(fetched, items, strict=True)
                    if item.outcome not in (UNMATCHED, NOT_UNDERSTOOD)]
            unmatched = [uid for (uid, _), item in zip(fetched, items, strict=True)
                         if item.outcome in (UNMATCHED, NOT_UNDERSTOOD)]
            await asyncio.to_thread(_file, box, done, unmatched)
            run.read += len(items)
            run.moved += len(done) + (len(unmatched) if settings.unmatched_folder else 0)
            for item in items:
                run.add(item.outcome)
                run.disabled += item.disabled
            if progress is not None:
                progress(run)
    finally:
        await asyncio.to_thread(box.close)
    _log_run(ctx, run)
    return run


def _log_run(ctx: AppContext, run: BounceRun) -> None:
    if not run.read:
        return
    log.info("bounces: %s", run.summary())
    left = run.unmatched + run.unknown
    if left:
        where = ctx.settings.bounces.unmatched_folder
        log.warning("bounces: %d message(s) matched no delivery or were not understood: %s", left,
                    f"moved to {where!r}" if where else
                    f"left in {ctx.settings.bounces.folder!r}, flagged and not read again")


async def _handle(ctx: AppContext, reports: list[dsn.Report]) -> list[_Item]:
    """Act on a batch in one transaction; once more when another instance recorded one
    of the same reports meanwhile (it is then seen as handled)."""
    for attempt in (1, 2):
        items = [_Item(r) for r in reports]
        try:
            async with ctx.db.transaction() as session:
                await _apply(session, ctx, items)
            return items
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _apply(session: AsyncSession, ctx: AppContext, items: list[_Item]) -> None:
    keys = {i.report.key for i in items}
    seen = set((await session.scalars(select(BounceReport.key)
                                       .where(BounceReport.key.in_(keys)))).all())
    fresh: list[_Item] = []
    for item in items:
        if item.report.key in seen:
            item.outcome = REPEATED
        else:
            seen.add(item.report.key)  # the same report twice in one batch counts once
            fresh.append(item)
    await _match(session, ctx, fresh)
    counted = await _hard_bounced(session, [i.delivery_id for i in fresh if i.delivery_id])
    subscribers = await _subscribers_of(session, [i.delivery_id for i in fresh if i.delivery_id])
    # Loaded in one query, so that acting on each (`session.get`) finds it in the session
    # instead of flushing and selecting once per report (about 5x faster on a full mailbox).
    # Kept referenced: the session's identity map holds its rows only weakly.
    _held = (await session.scalars(select(Subscriber).where(
        Subscriber.id.in_(set(subscribers.values()))))).all() if subscribers else []
    records = []
    for item in fresh:
        await _act(session, ctx, item, subscribers.get(item.delivery_id or 0), counted)
        if item.outcome not in (UNMATCHED, NOT_UNDERSTOOD):
            records.append({"key": item.report.key, "handled_at": ctx.now(),
                            "outcome": item.outcome, "delivery_id": item.delivery_id})
    if records:
        await session.execute(insert(BounceReport), records)


async def _match(session: AsyncSession, ctx: AppContext, items: list[_Item]) -> None:
    """The delivery of each report: by VERP, else by its original Message-ID."""
    by_message_id: dict[int, list[_Item]] = {}
    for item in items:
        if item.report.kind == "unsubscribe":
            continue
        found = verp.delivery_of(ctx, item.report.envelope_text)
        if found is not None:
            item.delivery_id, item.by_verp = found, True
            continue
        hint = item.report.delivery_hint()
        if hint is not None:
            by_message_id.setdefault(hint, []).append(item)
    if by_message_id:
        rows = (await session.execute(select(Delivery.id, Delivery.message_id)
                                      .where(Delivery.id.in_(by_message_id)))).all()
        for delivery_id, message_id in rows:
            for item in by_message_id[delivery_id]:
                if message_id and message_id.strip() == item.report.original_message_id:
                    item.delivery_id = delivery_id


async def _hard_bounced(session: AsyncSession, delivery_ids: list[int]) -> set[int]:
    """Deliveries whose hard bounce was counted already."""
    if not delivery_ids:
        return set()
    found = await session.scalars(select(BounceReport.delivery_id).where(
        BounceReport.delivery_id.in_(set(delivery_ids)), BounceReport.outcome == dsn.HARD))
    return {delivery_id for delivery_id in found.all() if delivery_id is not None}


async def _subscribers_of(session: AsyncSession, delivery_ids: list[int]) -> dict[int, int]:
    if not delivery_ids:
        return {}
    rows = await session.execute(select(Delivery.id, Delivery.subscriber_id).where(
        Delivery.id.in_(set(delivery_ids)), Delivery.subscriber_id.is_not(None)))
    return {delivery_id: subscriber_id for delivery_id, subscriber_id in rows.all()
            if subscriber_id is not None}


async def _act(session: AsyncSession, ctx: AppContext, item: _Item, subscriber_id: int | None,
               counted: set[int]) -> None:
    report = item.report
    if report.kind == "unsubscribe":
        assert report.unsubscribe is not None
        try:
            await unsubscribe(session, ctx, report.unsubscribe[0], report.unsubscribe[1],
                              via="mailto")
        except ValidationFailed:
            log.info("bounces: an unsubscribe request with a wrong or old token (subscriber "
                     "#%s): not acted on", report.unsubscribe[0])
            item.outcome = UNMATCHED
            return
        item.outcome = "unsubscribe"
        return
    if item.delivery_id is None:
        item.outcome = UNMATCHED
        return
    if report.kind == "complaint":
        item.outcome = "complaint"
        if subscriber_id is not None:
            await _unsubscribe_for_complaint(session, ctx, subscriber_id, item.delivery_id,
                                             report.feedback_type)
        return
    if report.kind != "dsn":
        item.outcome = NOT_UNDERSTOOD
        return
    item.outcome = report.verdict
    if item.outcome != dsn.HARD:
        return
    if item.delivery_id in counted:
        item.outcome = "duplicate"
        return
    counted.add(item.delivery_id)
    if subscriber_id is None:  # the subscriber was erased since
        return
    status = report.first_status
    await audit.record(session, Actor.system(), "newsletter.bounce", "subscriber", subscriber_id,
                       delivery=item.delivery_id, status=status.status if status else "",
                       diagnostic=(status.diagnostic if status else "")[:300])
    item.disabled = await record_hard_bounce(session, ctx, subscriber_id)


async def _unsubscribe_for_complaint(session: AsyncSession, ctx: AppContext, subscriber_id: int,
                                     delivery_id: int, feedback_type: str) -> None:
    """The reader marked the newsletter as spam: they get no more of it, at once."""
    row = await session.get(Subscriber, subscriber_id)
    if row is None or row.status == SubscriberStatus.UNSUBSCRIBED:
        return
    await mark_unsubscribed(session, ctx, row, "unsubscribed by a complaint before sending")
    await audit.record(session, Actor.system(), "newsletter.unsubscribe", "subscriber", row.id,
                       via="complaint", delivery=delivery_id, feedback_type=feedback_type)


class BouncePoller:
    """The service's reader of the bounce mailbox: every `[bounces] poll_interval_s`,
    from start to stop; off when `[bounces] host` is unset."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.last_error: str | None = None
        self.failures = 0  # polls failed in a row
        self.told_down = False

    def start(self) -> None:
        if self.ctx.settings.bounces.enabled and self.task is None:
            self.task = asyncio.create_task(self._loop(), name="newsletter-bounces")

    async def stop(self) -> None:
        self._stop.set()
        task, self.task = self.task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=3)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _tell_admins(self) -> None:
        """Admins hear once when the mailbox has failed twice in a row (one failure may be a
        passing network error) and once when it is read again, by one instance only: bounces
        that nobody reads disable nobody, and the sender's reputation suffers unseen."""
        down = self.failures >= 2
        if down == self.told_down or (not down and self.failures):
            return
        self.told_down = down
        try:
            if await alerts.outage_changed(self.ctx, down, key=alerts.MAILBOX_OUTAGE_KEY):
                key = "newsletter.alert_mailbox_down" if down else "newsletter.alert_mailbox_back"
                error = (self.last_error or "")[:200].rstrip(". ")
                await self.ctx.alerts.notify(t("en", key, error=error), t("pl", key, error=error))
        except Exception:
            log.exception("bounces: could not record or tell that the mailbox is %s",
                          "failing" if down else "back")

    async def _loop(self) -> None:
        interval = self.ctx.settings.bounces.poll_interval_s
        while not self._stop.is_set():
            try:
                await process_mailbox(self.ctx)
                self.last_error, self.failures = None, 0
            except MailboxError as exc:
                self.last_error, self.failures = str(exc), self.failures + 1
                log.warning("bounces: %s; trying again in %.0f s", exc, interval)
            except Exception as exc:
                self.last_error, self.failures = str(exc)[:200], self.failures + 1
                log.exception("bounces: reading the mailbox failed; trying again in %.0f s",
                              interval)
            await self._tell_admins()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)
