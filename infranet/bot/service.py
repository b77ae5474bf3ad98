"""The bot as a component of the service."""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from infranet.component import Component
from infranet.context import AppContext

log = logging.getLogger(__name__)

NO_TOKEN_HINT = (
    "the Telegram bot is off: no token is set. Create a bot with @BotFather and put "  # noqa: S105
    "its token in [telegram] token or $INFRANET_TELEGRAM__TOKEN"
)


def build(ctx: AppContext, scheduler: AsyncIOScheduler, *,
          start_sending: Callable[[], None] | None = None) -> Component:
    """`start_sending`: the newsletter's "send what is pending now", for /newsletter_send
    and the alerts' buttons."""
    from infranet.bot.handlers import module_jobs

    token = ctx.settings.telegram.token
    if token is None or not token.get_secret_value():
        async def announce() -> None:
            log.warning(NO_TOKEN_HINT)

        # The modules' jobs run while the bot is off too (closing expired training notices).
        return Component("bot", start=announce, jobs=module_jobs(ctx, None),
                         status=lambda: {"ok": True, "enabled": False, "hint": NO_TOKEN_HINT})
    from infranet.bot.runtime import BotRuntime

    runtime = BotRuntime(ctx, scheduler, start_sending=start_sending)
    return Component("bot", routes=runtime.routes, start=runtime.start, stop=runtime.stop,
                     status=runtime.status, jobs=module_jobs(ctx, runtime))
