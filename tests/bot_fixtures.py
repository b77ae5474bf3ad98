"""Fixtures for end-to-end bot tests: the Bot API emulator and the real Application.

    async def test_x(bot: BotHarness) -> None:
        member = await bot.member(1001, "Fundacja Przykład")    # an approved member
        reply = await bot.api.ask(1001, "/start")               # private chat of user 1001
        assert "Witaj" in reply.text

`bot.ctx` is the `ctx` fixture (both engines) with `[telegram] token/base_url`
pointing at the emulator and ADMIN_ID as the first admin. Change settings before
the bot starts with the `bot_settings` fixture (override it in a test module), or
call `await bot.restart()` after changing `bot.ctx.settings`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import SecretStr

from infranet.app import create_scheduler, schedule_jobs
from infranet.bot.handlers import module_jobs
from infranet.bot.runtime import BotRuntime
from infranet.component import Component
from infranet.context import AppContext
from infranet.network.members import ensure_config_admins, get_member
from infranet.network.orgs import OrgInput, add_organisation, find_organisation
from infranet.storage.actors import Actor
from infranet.storage.models import Member, MemberStatus, Organisation
from infranet.storage.types import utcnow
from tests.botapi import TOKEN, BotApi, Sent

ADMIN_ID = 900001


@dataclass
class BotHarness:
    ctx: AppContext
    api: BotApi
    runtime: BotRuntime
    # The bot's declared periodic jobs, as app.py schedules them in the service.
    scheduler: AsyncIOScheduler = field(init=False)

    def __post_init__(self) -> None:
        self.scheduler = create_scheduler(self.ctx)
        self.scheduler.start()
        self.schedule()

    def schedule(self) -> None:
        """Put the jobs of the current runtime on the scheduler (replacing earlier ones)."""
        schedule_jobs(self.scheduler, [Component("bot", jobs=module_jobs(self.ctx, self.runtime))])

    async def restart(self) -> None:
        """Stop the Application (persistence is written) and start a new one."""
        await self.runtime.stop()
        self.runtime = BotRuntime(self.ctx)
        self.schedule()
        await self.runtime.start()

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        await self.runtime.stop()

    async def org(self, name: str, **fields: Any) -> Organisation:
        async with self.ctx.db.transaction() as session:
            try:
                return await find_organisation(session, name)
            except Exception:
                return await add_organisation(session, self.ctx, Actor.cli(),
                                              OrgInput(name=name, **fields))

    async def member(self, telegram_id: int, org: str | None = "Fundacja Testowa", *,
                     admin: bool = False, language: str | None = None,
                     name: str = "Test User") -> Member:
        """An approved member (of `org`, created when missing), set up directly in storage."""
        organisation = await self.org(org) if org else None
        async with self.ctx.db.transaction() as session:
            self.ctx.changes.people.changing(session)
            member = await get_member(session, telegram_id)
            if member is None:
                member = Member(telegram_id=telegram_id, display_name=name)
                session.add(member)
            member.display_name = name
            member.organisation_id = organisation.id if organisation else None
            member.status = MemberStatus.APPROVED
            member.role = "admin" if admin else "member"
            member.language = language
            member.approved_at = utcnow()
            await session.flush()
            return member


async def skip_optional_steps(api: BotApi, user: int, place: Sent) -> Sent:
    """Skip the /event form's place, link and description; returns the summary that follows."""
    prompt = place
    for _ in range(3):
        prompt = await api.answer(user, prompt, prompt.button("Pomiń"))
    return prompt


def telegram_settings(api: BotApi, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"token": SecretStr(TOKEN), "base_url": api.base_url,
                              "admin_ids": [ADMIN_ID], "max_retries": 3}
    values.update(overrides)
    return values


async def start_bot(ctx: AppContext, api: BotApi, **telegram: Any) -> BotHarness:
    current = ctx.settings.telegram
    ctx.settings.telegram = type(current).model_validate(
        {**current.model_dump(), **telegram_settings(api, **telegram)})
    async with ctx.db.transaction() as session:
        await ensure_config_admins(session, ctx.settings.telegram.admin_ids)
    runtime = BotRuntime(ctx)
    await runtime.start()
    return BotHarness(ctx, api, runtime)


@pytest.fixture
async def botapi() -> AsyncIterator[BotApi]:
    async with BotApi() as api:
        yield api


@pytest.fixture
def bot_settings() -> dict[str, Any]:
    """`[telegram]` overrides for the `bot` fixture; override this fixture to change them."""
    return {}


@pytest.fixture
async def bot(ctx: AppContext, botapi: BotApi, bot_settings: dict[str, Any]) -> AsyncIterator[BotHarness]:
    harness = await start_bot(ctx, botapi, **bot_settings)
    try:
        yield harness
    finally:
        await harness.stop()
