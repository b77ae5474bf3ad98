"""The schedule: crontab weekdays as people mean them, one issue per scheduled period
even with two service instances, empty periods skipped, the job registered on start."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select

from infranet.app import schedule_jobs
from infranet.component import Component
from infranet.newsletter.issues import add_note
from infranet.newsletter.schedule import current_period, parse_schedule, scheduled_period_key
from infranet.newsletter.service import NewsletterService, jobs
from infranet.storage.actors import Actor
from infranet.storage.models import Delivery, NewsletterIssue
from tests.newsletter_support import add_subscribers, newsletter_context, seed_content
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401

WARSAW = ZoneInfo("Europe/Warsaw")
MONDAY_NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(("expression", "weekday"), [
    ("0 8 * * mon", 0), ("0 8 * * 1", 0), ("0 8 * * 0", 6), ("0 8 * * 7", 6), ("0 8 * * 5", 4),
    ("0 8 * * fri", 4)])
def test_weekday_numbers_follow_crontab(expression: str, weekday: int) -> None:
    trigger = parse_schedule(expression, WARSAW)
    fire = trigger.get_next_fire_time(None, MONDAY_NOON)
    assert fire.weekday() == weekday and (fire.hour, fire.minute) == (8, 0)
    assert fire.utcoffset().total_seconds() == 3600  # local time, CET in November


def test_ranges_steps_and_bad_expressions() -> None:
    trigger = parse_schedule("30 7 * * 1-5", WARSAW)
    fires = []
    fire = trigger.get_next_fire_time(None, MONDAY_NOON)
    for _ in range(6):
        fires.append(fire.strftime("%a"))
        fire = trigger.get_next_fire_time(fire, fire.replace(second=1))
    assert fires == ["Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]
    with pytest.raises(ValueError, match="five fields"):
        parse_schedule("0 8 * mon", WARSAW)
    with pytest.raises(ValueError, match="out of range"):
        parse_schedule("0 8 * * 9", WARSAW)


def test_current_period_is_the_last_scheduled_time() -> None:
    trigger = parse_schedule("0 8 * * mon", WARSAW)
    moment = current_period(trigger, MONDAY_NOON, WARSAW)
    assert moment == datetime(2026, 11, 23, 8, 0, tzinfo=WARSAW)
    assert scheduled_period_key(moment, WARSAW) == "scheduled:2026-11-23T08:00"
    sunday = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
    assert current_period(trigger, sunday, WARSAW) == moment


async def test_two_instances_build_and_send_a_period_once(db_url: str, tmp_path: Path,
                                                          smtp: SmtpServer) -> None:
    settings = smtp.smtp_settings(concurrency=3)
    one = await newsletter_context(db_url, tmp_path / "one", settings)
    two = await newsletter_context(db_url, tmp_path / "two", settings)
    emails = [f"s{i:02d}@example.org" for i in range(25)]
    services = [NewsletterService(one, AsyncIOScheduler()), NewsletterService(two, AsyncIOScheduler())]
    try:
        await seed_content(one)
        await add_subscribers(one, {e: {} for e in emails})
        await asyncio.gather(*(s.scheduled_issue() for s in services))
        for s in services:
            if s.task is not None:
                await asyncio.wait_for(s.task, 30)
        async with one.db.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(NewsletterIssue)) == 1
            assert await session.scalar(select(func.count()).select_from(Delivery)) == 25
            issue = await session.scalar(select(NewsletterIssue))
        assert issue.period_key.startswith("scheduled:") and issue.status == "done"
        assert sorted(smtp.recipients()) == emails
        # the job firing again for the same period changes nothing
        await services[1].scheduled_issue()
        await asyncio.wait_for(services[1].task, 30)
        assert len(smtp.recipients()) == 25
    finally:
        for s in services:
            await s.stop()
        await one.db.dispose()
        await two.db.dispose()


async def test_empty_period_is_skipped(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    service = NewsletterService(ctx, AsyncIOScheduler())
    try:
        await add_subscribers(ctx, {"a@example.org": {}})
        await service.scheduled_issue()
        if service.task is not None:
            await asyncio.wait_for(service.task, 30)
        async with ctx.db.transaction() as session:
            issue = await session.scalar(select(NewsletterIssue))
            assert issue.status == "skipped"
            assert await session.scalar(select(func.count()).select_from(Delivery)) == 0
        assert smtp.messages == []
    finally:
        await service.stop()
        await ctx.db.dispose()


async def test_service_registers_the_job_and_resumes_on_start(db_url: str, tmp_path: Path,
                                                              smtp: SmtpServer) -> None:
    from infranet.newsletter.issues import build_issue

    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(),
                                   newsletter={"schedule": "15 9 * * 3"})
    scheduler = AsyncIOScheduler(timezone=ctx.tz)
    scheduler.start()
    service = NewsletterService(ctx, scheduler)
    schedule_jobs(scheduler, [Component("newsletter", jobs=jobs(service))])  # as app.py does
    try:
        await add_subscribers(ctx, {"a@example.org": {}, "b@example.org": {}})
        async with ctx.db.transaction() as session:
            await add_note(session, ctx, Actor.cli(), "Wydanie specjalne")
            await build_issue(session, ctx, Actor.cli(), period_key="left-from-before")
        await service.start()  # resumes the pending deliveries at once
        await asyncio.wait_for(service.task, 30)
        assert sorted(smtp.recipients()) == ["a@example.org", "b@example.org"]
        status = service.status()
        next_issue = datetime.fromisoformat(status["next_issue"])
        assert next_issue.weekday() == 2 and (next_issue.hour, next_issue.minute) == (9, 15)
        assert status["ok"] and status["outbox"] is False
    finally:
        await service.stop()
        scheduler.shutdown(wait=False)
        await ctx.db.dispose()
