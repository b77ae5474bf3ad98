"""Scheduled work of the bot's domain, on the service's scheduler (one per process;
the work itself is idempotent in the database)."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from infranet.context import AppContext
from infranet.network.referrals import close_stale, purge_expired

log = logging.getLogger(__name__)

PURGE_JOB_ID = "referrals-purge"


async def purge_referrals(ctx: AppContext) -> int:
    """Erase the contact details of referrals closed longer than the retention period."""
    async with ctx.db.transaction() as session:
        await close_stale(session, ctx)
        count = await purge_expired(session, ctx)
    log.info("referral purge: %d referral(s) purged (retention %d days)", count,
             ctx.settings.referrals.retention_days)
    return count


def schedule_jobs(ctx: AppContext, scheduler: AsyncIOScheduler) -> None:
    # Daily at 04:15 local time: outside the 02:00-03:00 DST hour (see PITFALLS).
    scheduler.add_job(purge_referrals, "cron", args=[ctx], hour=4, minute=15, id=PURGE_JOB_ID,
                      replace_existing=True, name="purge referral contact details")
