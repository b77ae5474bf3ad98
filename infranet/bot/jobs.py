"""Scheduled work of the bot's domain, on the service's scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from infranet.context import AppContext

if TYPE_CHECKING:
    from infranet.bot.runtime import BotRuntime


def schedule_jobs(ctx: AppContext, scheduler: AsyncIOScheduler, runtime: BotRuntime) -> None:
    """Nothing yet; the referral purge is added here."""
