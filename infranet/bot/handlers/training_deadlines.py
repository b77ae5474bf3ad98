"""The training deadline job's work: close expired notices and remind posters the day
before, telling each poster in the chat.

Apart from the handlers because it runs from the scheduler, not from an update, with or
without a running bot; `trainings.jobs` schedules `deadline_job`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from telegram import Bot

from infranet.bot.common import send_html, tr
from infranet.calendar import trainings as notices
from infranet.context import AppContext
from infranet.i18n import format_date
from infranet.storage.models import Member

if TYPE_CHECKING:
    from infranet.bot.runtime import BotRuntime

log = logging.getLogger(__name__)


async def run_deadline_jobs(ctx: AppContext, bot: Bot | None) -> tuple[int, int]:
    """Close expired notices and remind posters a day ahead; tell each poster.

    The rows are claimed in the database before anything is sent (reminders at most
    once, also with two service instances); a poster who cannot be reached is logged.
    Without a bot (no token) notices are still closed, silently, and reminders wait.
    Returns (reminded, closed).
    """
    async with ctx.db.transaction() as session:
        closed = await notices.close_expired(session, ctx)
        reminders = await notices.due_reminders(session, ctx) if bot is not None else []
        ids = {due.poster_id for due in (*closed, *reminders) if due.poster_id is not None}
        posters = {m.id: m for m in (await session.scalars(select(Member).where(Member.id.in_(ids))))}
    if bot is not None:
        for items, key in ((reminders, "bot.trainings.reminder"), (closed, "bot.trainings.closed")):
            for due in items:
                poster = posters.get(due.poster_id) if due.poster_id is not None else None
                if poster is None:
                    continue
                lang = poster.language or "pl"
                deadline = format_date(due.training.deadline, lang)
                await send_html(bot, poster.telegram_id,
                                tr(lang, key, title=due.training.title, deadline=deadline))
    log.info("training deadlines: %d reminded, %d closed", len(reminders), len(closed))
    return len(reminders), len(closed)


async def deadline_job(ctx: AppContext, runtime: BotRuntime | None = None) -> tuple[int, int]:
    """The scheduled job: through the running Application's bot (its rate limiter) when
    there is one, else through a Bot of its own built from `[telegram]` settings, else
    (no token) closing notices only."""
    application = runtime.application if runtime is not None else None
    if application is not None and application.running:
        return await run_deadline_jobs(ctx, application.bot)
    settings = ctx.settings.telegram
    if settings.token is None or not settings.token.get_secret_value():
        return await run_deadline_jobs(ctx, None)
    base_url = settings.base_url or "https://api.telegram.org/bot"  # python-telegram-bot's default
    async with Bot(settings.token.get_secret_value(), base_url=base_url) as bot:
        return await run_deadline_jobs(ctx, bot)
