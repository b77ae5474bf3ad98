"""Every periodic job of the process is declared by its component and put on the one
scheduler by app.py, whether or not the bot is on; none schedules itself."""

from __future__ import annotations

from infranet.app import Service
from infranet.context import AppContext

EXPECTED = {"referrals-purge", "newsletter-issue", "newsletter-expire", "bot.training_deadlines",
            "calendar-sources", "calendar-series-horizon", "site.proposal-outcomes",
            "site.proposal-purge"}


async def test_app_schedules_every_components_jobs_and_only_those(ctx: AppContext) -> None:
    service = Service(ctx)  # no Telegram token: the bot is off, its jobs still run
    declared = {job.id for component in service.components for job in component.jobs}
    assert declared == EXPECTED
    scheduled = {job.id: job for job in service.scheduler.get_jobs()}
    assert set(scheduled) == EXPECTED
    assert "hour='4', minute='15'" in str(scheduled["referrals-purge"].trigger)
    assert "hour='8', minute='5'" in str(scheduled["bot.training_deadlines"].trigger)
    owners = {component.name: [job.id for job in component.jobs] for component in service.components}
    assert owners["network"] == ["referrals-purge"]
    assert owners["calendar"] == ["calendar-sources", "calendar-series-horizon"]
    assert owners["site"] == ["site.proposal-outcomes", "site.proposal-purge"]
    assert "hour='4', minute='40'" in str(scheduled["site.proposal-purge"].trigger)
