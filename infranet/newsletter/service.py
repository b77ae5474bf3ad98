"""The newsletter as a component of the service: its pages, its schedule, its sender.

- Web routes: see `infranet.newsletter.web`.
- Schedule: `[newsletter] schedule` (crontab fields, region time zone, weekday
  numbers as crontab means them) builds the issue of each scheduled time once
  (unique period key, so a second instance on the same PostgreSQL database
  finds it built) and sends it; misfire grace and coalescing come from the
  scheduler's job defaults and are repeated on the job.
- On start, deliveries a crash left in `sending` are settled: those never offered to the
  server (no `handed_at`) go out again, the others become `unknown` (admins are told
  through `alerts`, with a button to resend them), and pending deliveries are resumed.
- `NewsletterService.kick` starts sending at once; app.py hands it to the bot (for
  /newsletter_send and the alerts' resend and resume buttons).
- Every `[newsletter] poll_seconds` (30) a watcher looks for deliveries waiting that this
  process did not start (an issue built by the CLI in another process, retries due after
  an outage, leftovers of a dead instance) and starts the sender; while the SMTP server
  refuses connections the sender retries with backoff (0.5 s doubling to 30 s), /healthz
  shows the newsletter as degraded with the waiting count, and the admins are told once
  per outage and once when it is over (`smtp_health.SmtpHealth`, `alerts.outage_changed`).
  Two instances on one PostgreSQL database both send, never the same delivery (claims).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from infranet.component import Component, Job
from infranet.context import AppContext
from infranet.errors import InfranetError
from infranet.newsletter import outbound, web
from infranet.newsletter.bounces import BouncePoller
from infranet.newsletter.issues import build_for_period, issue_of_period
from infranet.newsletter.recovery import alert_unknown, recover_interrupted, waiting_deliveries
from infranet.newsletter.schedule import current_period, parse_schedule
from infranet.newsletter.sender import Sender
from infranet.newsletter.smtp_health import SmtpHealth
from infranet.newsletter.subscribers import expire_pending
from infranet.storage.actors import Actor

log = logging.getLogger(__name__)
ISSUE_JOB_ID = "newsletter-issue"


class NewsletterService:
    def __init__(self, ctx: AppContext, scheduler: AsyncIOScheduler) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.trigger: CronTrigger = parse_schedule(ctx.settings.newsletter.schedule, ctx.tz)
        self.sender: Sender | None = None
        self.task: asyncio.Task[None] | None = None
        self._again = False
        self._stopping = False
        self.last_error: str | None = None
        self.bounces = BouncePoller(ctx)
        self.health = SmtpHealth()
        self.waiting = 0
        self.watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        outbound.announce_outbox(self.ctx)
        self.bounces.start()  # reads the [bounces] mailbox every poll interval, when configured
        await self.catch_up()
        self.kick()
        self.watcher = asyncio.create_task(self._watch(), name="newsletter-watch")

    async def _watch(self) -> None:
        """Start the sender whenever deliveries wait and none runs here (see the module doc)."""
        while not self._stopping:
            await asyncio.sleep(self.ctx.settings.newsletter.poll_seconds)
            try:
                self.waiting = await waiting_deliveries(self.ctx)
            except Exception:
                log.exception("newsletter: cannot count the waiting deliveries")
                continue
            if self.waiting and (self.task is None or self.task.done()):
                log.info("newsletter: %d delivery(ies) waiting; sending", self.waiting)
                self.kick()

    async def catch_up(self) -> None:
        """Build the issue of a scheduled time missed while the service was down, when it is
        at most `[newsletter] catch_up_hours` old; older ones are only logged (an issue a day
        late is news, one a week late is noise). The period rule in `build_for_period` keeps
        a caught-up issue from repeating one that was built."""
        now = self.ctx.now()
        moment = current_period(self.trigger, now, self.ctx.tz)
        if moment is None:
            return
        async with self.ctx.db.transaction() as session:
            existing = await issue_of_period(session, self.ctx, moment)
        if existing is not None:
            return
        limit = self.ctx.settings.newsletter.catch_up_hours
        late = (now - moment).total_seconds() / 3600
        if late > limit:
            log.warning("newsletter: the scheduled issue of %s was missed while the service was "
                        "down (%.1f h ago, over catch_up_hours = %s): not caught up; "
                        "'infranet newsletter build' builds it", moment.isoformat(), late, limit)
            return
        log.warning("newsletter: the scheduled issue of %s was missed while the service was down "
                    "(%.1f h ago, within catch_up_hours = %s): building it now",
                    moment.isoformat(), late, limit)
        await self.scheduled_issue()

    async def stop(self) -> None:
        self._stopping = True
        await self.bounces.stop()
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        if self.sender is not None:
            self.sender.stop()
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), timeout=3)
            except (TimeoutError, asyncio.CancelledError):
                self.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.task

    def kick(self) -> None:
        """Send whatever is pending: start the sender, or ask the running one to look again."""
        if self._stopping:
            return
        self._again = True
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._send_loop(), name="newsletter-sender")

    async def _send_loop(self) -> None:
        while self._again and not self._stopping:
            self._again = False
            try:
                async with self.ctx.db.transaction() as session:
                    recovered = await recover_interrupted(session, self.ctx)
                await alert_unknown(self.ctx, recovered)
                self.sender = Sender(self.ctx, health=self.health)
                report = await self.sender.run()
                await alert_unknown(self.ctx, sorted(report.unknown_by_issue.items()))
                if report.sent or report.failed or report.unknown:
                    log.info("newsletter: sent %d, failed %d, unknown %d, retried %d", report.sent,
                             report.failed, report.unknown, report.retried)
                self.last_error = None
            except Exception as exc:
                self.last_error = str(exc)[:200]
                log.exception("newsletter: sending failed; retrying in a minute")
                await asyncio.sleep(60)
                self._again = True
            finally:
                self.sender = None

    async def scheduled_issue(self) -> None:
        """The cron job: build this period's issue (once across instances) and send it."""
        try:
            async with self.ctx.db.transaction() as session:
                outcome = await build_for_period(session, self.ctx, Actor.system())
        except InfranetError as exc:
            await self.ctx.alerts.notify(exc.localized("en"), exc.localized("pl"))
            return
        key, built = outcome.period_key, outcome.built
        if built is None:  # this period's issue exists (built by the CLI or another instance)
            log.info("newsletter: issue #%s already built for %s; sending what is pending",
                     outcome.refused.id if outcome.refused else "?", key)
        elif built.skipped_empty:
            log.info("newsletter: nothing to say for %s; issue skipped", key)
        elif built.created:
            log.info("newsletter: issue #%s built for %s with %d recipients", built.issue.id if
                     built.issue else "?", key, built.recipients)
            for warning in built.warnings:
                log.warning("newsletter: %s", warning)
        self.kick()

    async def expire(self) -> None:
        async with self.ctx.db.transaction() as session:
            removed = await expire_pending(session, self.ctx)
        if removed:
            log.info("newsletter: removed %d unconfirmed subscriptions", removed)

    def status(self) -> dict[str, Any]:
        job = self.scheduler.get_job(ISSUE_JOB_ID) if self.scheduler.running else None
        next_run = getattr(job, "next_run_time", None) if job else None
        status: dict[str, Any] = {
            "ok": self.last_error is None, "outbox": outbound.uses_outbox(self.ctx),
            "sending": self.sender is not None, "schedule": self.ctx.settings.newsletter.schedule,
            "next_issue": next_run.isoformat() if next_run else None,
            **({"error": self.last_error} if self.last_error else {})}
        if self.health.down and self.waiting:  # the SMTP server refuses us and mail waits
            # (`waiting` as the watcher counted it last: another instance may have sent it all)
            since = self.health.failing_since
            status.update(ok=False, state="degraded", smtp="unreachable",
                          smtp_error=self.health.error, waiting=self.waiting,
                          since=since.isoformat() if since else None)
        if self.ctx.settings.bounces.enabled:  # the bounce mailbox: shown, not degrading
            status["bounces"] = ({"ok": False, "error": self.bounces.last_error,
                                  "failed_polls": self.bounces.failures}
                                 if self.bounces.last_error else {"ok": True})
        return status


def jobs(service: NewsletterService) -> list[Job]:
    """The issue on `[newsletter] schedule`, and the daily expiry of unconfirmed sign-ups
    (04:15 local, outside the DST hour)."""
    return [Job(ISSUE_JOB_ID, "build and send this period's newsletter issue", service.trigger,
                service.scheduled_issue),
            Job("newsletter-expire", "delete unconfirmed sign-ups",
                CronTrigger(hour=4, minute=15, timezone=service.ctx.tz), service.expire)]


def build(ctx: AppContext, scheduler: AsyncIOScheduler) -> Component:
    return component(NewsletterService(ctx, scheduler))


def component(service: NewsletterService) -> Component:
    ctx = service.ctx
    return Component("newsletter", routes=web.routes(ctx), start=service.start, stop=service.stop,
                     status=service.status, jobs=jobs(service))


