"""Telling whoever proposed an event on `/events/new` (`proposal.py`) what became of it,
and the site's two jobs for that.

A job every OUTCOME_INTERVAL_S claims the proposals whose event an admin published or
rejected and e-mails each proposer once, in their language, through the newsletter's
transport (SMTP, or the Maildir outbox without an SMTP host); a daily job deletes what was
kept about proposers once they have been told (and a retention). Apart from the page
because none of it answers a request: it runs later, from the scheduler.
"""

from __future__ import annotations

import functools
import logging

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from infranet.calendar import proposal_outcomes
from infranet.calendar.event_links import event_url
from infranet.component import Job
from infranet.i18n import t
from infranet.newsletter import limits
from infranet.newsletter.outbound import SENT, send_notice
from infranet.site.pages import Site

log = logging.getLogger(__name__)

OUTCOME_INTERVAL_S = 30
OUTCOME_JOB_ID = "site.proposal-outcomes"
PURGE_JOB_ID = "site.proposal-purge"


def outcome_mail(site: Site, told: proposal_outcomes.Told) -> tuple[str, str]:
    """The subject and text of the e-mail that tells a proposer the outcome."""
    lang = told.language
    greeting = (t(lang, "site.proposal.mail.hello_name", name=told.name) if told.name
                else t(lang, "site.proposal.mail.hello"))
    sign_off = t(lang, "site.name", region=site.ctx.region.name)
    if told.outcome == proposal_outcomes.PUBLISHED:
        link = event_url(site.base_url, told.event_id, told.title)
        return (t(lang, "site.proposal.mail.published_subject", title=told.title),
                t(lang, "site.proposal.mail.published", greeting=greeting, title=told.title,
                  link=link, site=sign_off))
    return (t(lang, "site.proposal.mail.rejected_subject", title=told.title),
            t(lang, "site.proposal.mail.rejected", greeting=greeting, title=told.title,
              site=sign_off))


async def tell_outcomes(site: Site) -> int:
    """Claim the decided proposals (committed before anything is sent), then e-mail each
    proposer; returns how many e-mails went. A proposal is claimed once, so a crash or a
    second instance can lose an e-mail but never send one twice."""
    ctx = site.ctx
    async with ctx.db.read() as session:
        if not await proposal_outcomes.has_untold(session, ctx):
            return 0
    async with ctx.db.transaction() as session:
        claimed = await proposal_outcomes.claim_outcomes(session, ctx)
    sent = 0
    for told in claimed:
        subject, text = outcome_mail(site, told)
        outcome = await send_notice(ctx, told.email, subject, text)
        if outcome.kind == SENT:
            sent += 1
            continue
        log.warning("proposal %d: outcome e-mail to %s not sent: %s", told.proposal_id,
                    limits.mask_address(told.email), outcome.detail)
        # Not tried again (it might have gone): the admins can write to the proposer.
        details = {"id": told.event_id, "title": told.title, "email": told.email,
                   "error": outcome.detail or outcome.kind}
        await ctx.alerts.notify(t("en", "site.proposal.alert_not_told", **details),
                                t("pl", "site.proposal.alert_not_told", **details))
    return sent


async def _tell_job(site: Site) -> None:
    try:
        await tell_outcomes(site)
    except Exception:
        log.exception("telling proposers the outcome failed")


async def purge(site: Site) -> int:
    async with site.ctx.db.transaction() as session:
        count = await proposal_outcomes.purge_told(session, site.ctx)
    if count:
        log.info("deleted the data of %d proposer(s) told more than %d days ago", count,
                 proposal_outcomes.RETENTION_DAYS)
    return count


def jobs(site: Site) -> list[Job]:
    return [Job(OUTCOME_JOB_ID, "e-mail proposers whether their event was published",
                IntervalTrigger(seconds=OUTCOME_INTERVAL_S), functools.partial(_tell_job, site)),
            # Daily, outside the 02:00-03:00 hour the clocks change in; idempotent.
            Job(PURGE_JOB_ID, "delete what was kept about proposers once told",
                CronTrigger(hour=4, minute=40, timezone=site.ctx.tz), functools.partial(purge, site))]
