"""What a crashed sender left behind, and settling it.

Every claim names its sender (`host:pid:random`, `new_worker_id()`); senders running
in this process are listed in `LIVE_WORKERS`. A `sending` row is a leftover when its
sender is gone: not in this process's list, a dead process on this host, or (another
host) claimed longer ago than `LEASE`. `recover_interrupted()` settles leftovers by
what the handoff mark says (see `sender`): no `handed_at`, never offered to the server,
back to `pending`; with it, `unknown`, for an admin to decide (`alert_unknown()`).

One implementation for both engines: it runs once per sending run, never on the hot path.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.i18n import t
from infranet.newsletter import alerts
from infranet.storage.models import Delivery, DeliveryStatus, IssueStatus, NewsletterIssue

log = logging.getLogger(__name__)

HOST = socket.gethostname()
# The worker ids of the senders running in this process (Sender.run adds and removes its own).
LIVE_WORKERS: set[str] = set()
# A claim older than this, from another host, is taken as a crash leftover.
LEASE = timedelta(minutes=15)


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


def is_leftover(claimed_by: str | None, claimed_at: datetime | None, now: datetime) -> bool:
    """Was this `sending` row left by a sender that no longer runs?"""
    if not claimed_by:
        return True
    parts = claimed_by.split(":")
    if len(parts) >= 3:
        host, pid_text = ":".join(parts[:-2]), parts[-2]
        if host == HOST[:40] and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                return claimed_by not in LIVE_WORKERS
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
    leftovers = [r for r in rows if is_leftover(r.claimed_by, r.claimed_at, now)]
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
