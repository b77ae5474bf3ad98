"""The network as a component of the service: its retention duty, the referral purge, runs
whether or not the bot is on."""

from __future__ import annotations

import functools
import logging

from apscheduler.triggers.cron import CronTrigger

from infranet.component import Component, Job
from infranet.context import AppContext
from infranet.network.referrals import close_stale, purge_expired

log = logging.getLogger(__name__)

PURGE_JOB_ID = "referrals-purge"


async def purge_referrals(ctx: AppContext) -> int:
    """Close referrals nobody answered and erase the client details of those closed longer
    than `[referrals] retention_days`."""
    async with ctx.db.transaction() as session:
        await close_stale(session, ctx)
        count = await purge_expired(session, ctx)
    log.info("referral purge: %d referral(s) purged (retention %d days)", count,
             ctx.settings.referrals.retention_days)
    return count


def build(ctx: AppContext) -> Component:
    purge = Job(PURGE_JOB_ID, "purge referral contact details",
                CronTrigger(hour=4, minute=15, timezone=ctx.tz),
                functools.partial(purge_referrals, ctx))
    return Component("network", jobs=[purge])
