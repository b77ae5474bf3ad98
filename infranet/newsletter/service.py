"""The newsletter as a component of the service: its pages and scheduled sending."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from infranet.component import Component
from infranet.context import AppContext


def build(ctx: AppContext, scheduler: AsyncIOScheduler) -> Component:
    return Component("newsletter")
