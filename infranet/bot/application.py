"""Building the python-telegram-bot Application for this service.

The Application carries the AppContext (`context.infra` in every callback), so
handlers reach settings, region, database and clock without globals.
"""

from __future__ import annotations

import warnings
from typing import Any

from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackContext,
    ContextTypes,
    ExtBot,
    JobQueue,
)
from telegram.warnings import PTBUserWarning

from infranet.bot.persistence import UPDATE_INTERVAL_S, DatabasePersistence
from infranet.context import AppContext

# Conversations mix text and button steps; per_message=False is what we want.
warnings.filterwarnings("ignore", message=r".*per_message.*", category=PTBUserWarning)


class InfranetApplication(Application):  # type: ignore[type-arg]
    """An Application that knows the service's AppContext."""

    __slots__ = ("infra",)

    def __init__(self, *, infra: AppContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.infra = infra


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """`context.infra` is the AppContext; everything else is PTB's CallbackContext."""

    @property
    def infra(self) -> AppContext:
        return self.application.infra  # type: ignore[attr-defined,no-any-return]


def build_application(
    ctx: AppContext, *, webhook: bool | None = None, rate_limiter: BaseRateLimiter[Any] | None = None,
    persistence: bool = True,
) -> InfranetApplication:
    """The Application, not yet initialised and without handlers.

    `webhook=None` follows `[telegram] mode`. Outgoing calls go through the
    AIORateLimiter, which retries flood-control answers `max_retries` times
    (PTB's default is no retry at all).
    """
    settings = ctx.settings.telegram
    if settings.token is None:
        raise ValueError("no [telegram] token")
    if webhook is None:
        webhook = settings.mode == "webhook"
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .application_class(InfranetApplication, kwargs={"infra": ctx})
        .token(settings.token.get_secret_value())
        .context_types(ContextTypes(context=BotContext))
        .rate_limiter(rate_limiter or AIORateLimiter(max_retries=settings.max_retries))
        .job_queue(JobQueue())
        .concurrent_updates(False)
    )
    if settings.base_url:
        builder = builder.base_url(settings.base_url)
    if persistence:
        builder = builder.persistence(DatabasePersistence(ctx.db, UPDATE_INTERVAL_S))
    if webhook:
        builder = builder.updater(None)
    return builder.build()  # type: ignore[return-value]
