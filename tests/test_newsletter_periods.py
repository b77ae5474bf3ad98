"""An issue goes out once per period: `build` builds the period's issue once (the scheduler
follows the same rule), `send` only sends what is pending, and a scheduled time missed
while the service was down is caught up at start within `[newsletter] catch_up_hours`.

Real storage (both engines), the real argument parser, a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select

from infranet.cli import build_parser
from infranet.newsletter.service import NewsletterService
from infranet.storage.models import NewsletterIssue
from tests.newsletter_support import add_subscribers, newsletter_context, seed_content
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401

READERS = ["ala@example.org", "ola@example.org", "ula@example.org"]


async def run(ctx: Any, *argv: str) -> int:
    args = build_parser().parse_args(["newsletter", *argv])
    return await args.handler(ctx, args) or 0


async def issue_count(ctx: Any) -> int:
    async with ctx.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(NewsletterIssue)) or 0


def copies(smtp: SmtpServer) -> Counter[str]:
    """Newsletter copies per reader (confirmation e-mails have no List-Unsubscribe)."""
    return Counter(p["To"] for p in smtp.parsed() if "List-Unsubscribe" in p)


async def test_send_after_a_crash_never_builds_a_second_issue(
        db_url: str, tmp_path: Path, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(max_attempts=1))
    service = NewsletterService(ctx, AsyncIOScheduler())
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {e: {} for e in READERS})
        # the SMTP server refuses one reader for now: the issue stays in progress
        smtp.reject(lambda r: r == "ula@example.org", 451, times=1)
        assert await run(ctx, "build") == 0
        assert "3 recipients" in capsys.readouterr().out
        assert await run(ctx, "send") == 0
        # "after the crash" the secretariat runs send again, and again: nothing is built
        assert await run(ctx, "resend", "1", "--failed") == 0
        assert await run(ctx, "send") == 0
        assert await run(ctx, "send") == 0
        assert await issue_count(ctx) == 1
        assert copies(smtp) == Counter({e: 1 for e in READERS})
        # a second build for the same period is refused, saying why and what to do
        capsys.readouterr()
        assert await run(ctx, "build") == 1
        err = capsys.readouterr().err
        assert "already built for this period" in err and "--force" in err
        # the scheduler firing for this period follows the same rule
        await service.scheduled_issue()
        if service.task is not None:
            await service.task
        assert await issue_count(ctx) == 1
        assert copies(smtp) == Counter({e: 1 for e in READERS})
        # only --force builds another one, and the scheduler then still builds nothing
        assert await run(ctx, "build", "--force") == 0
        assert await issue_count(ctx) == 2
        await service.scheduled_issue()
        if service.task is not None:
            await service.task
        assert await issue_count(ctx) == 2
        with pytest.raises(SystemExit):
            build_parser().parse_args(["newsletter", "send", "--now"])
    finally:
        await service.stop()
        await ctx.db.dispose()


def schedule_hours_ago(ctx: Any, hours: float) -> str:
    """A daily schedule whose last time was `hours` ago (in the region's zone)."""
    moment = (ctx.now() - timedelta(hours=hours)).astimezone(ctx.tz)
    return f"{moment.minute} {moment.hour} * * *"


@pytest.mark.parametrize(("late", "limit", "caught_up"), [(3, 12, True), (3, 1, False)])
async def test_missed_schedule_is_caught_up_at_start(
        db_url: str, tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture,
        late: float, limit: float, caught_up: bool) -> None:
    probe = await newsletter_context(db_url, tmp_path / "probe", smtp.smtp_settings())
    schedule = schedule_hours_ago(probe, late)
    await probe.db.dispose()
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(),
                                   newsletter={"schedule": schedule, "catch_up_hours": limit})
    service = NewsletterService(ctx, AsyncIOScheduler())
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {e: {} for e in READERS})
        with caplog.at_level(logging.INFO, logger="infranet.newsletter"):
            await service.start()
            if service.task is not None:
                await service.task
        missed = [r.getMessage() for r in caplog.records if "was missed" in r.getMessage()]
        assert len(missed) == 1 and f"catch_up_hours = {limit:g}" in missed[0]
        if caught_up:
            assert "building it now" in missed[0]
            assert await issue_count(ctx) == 1
            assert copies(smtp) == Counter({e: 1 for e in READERS})
            # a restart does not catch up the same period twice
            await service.stop()
            service = NewsletterService(ctx, AsyncIOScheduler())
            await service.start()
            if service.task is not None:
                await service.task
            assert await issue_count(ctx) == 1
            assert copies(smtp) == Counter({e: 1 for e in READERS})
        else:
            assert "not caught up" in missed[0]
            assert await issue_count(ctx) == 0 and copies(smtp) == Counter()
    finally:
        await service.stop()
        await ctx.db.dispose()
