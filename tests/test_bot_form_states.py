"""A form's step is stored between updates by its name, so that a release which adds a step
cannot move the forms people are filling in to a different question."""

from __future__ import annotations

import json

from sqlalchemy import select

from infranet.storage.models import BotState
from tests.bot_fixtures import BotHarness

USER = 8301


async def stored_steps(bot: BotHarness) -> list[object]:
    async with bot.ctx.db.read() as session:
        rows = (await session.execute(select(BotState.key, BotState.data)
                                      .where(BotState.key.like("conv:%")))).all()
    steps = []
    for _, data in rows:
        value = json.loads(data) if isinstance(data, str) else data
        steps.append(value.get("state") if isinstance(value, dict) else value)
    return steps


async def test_the_event_form_stores_its_step_by_name(bot: BotHarness) -> None:
    await bot.member(USER, "Fundacja Nazwanych Kroków")
    await bot.api.ask(USER, "/event")
    await bot.api.ask(USER, "Warsztaty z nazwami")
    assert "event.date" in json.dumps(await stored_steps(bot))


async def test_the_training_form_stores_its_step_by_name(bot: BotHarness) -> None:
    await bot.member(USER, "Fundacja Nazwanych Kroków")
    await bot.api.ask(USER, "/training")
    await bot.api.ask(USER, "Szkolenie z nazwami")
    assert "training.sessions" in json.dumps(await stored_steps(bot))
