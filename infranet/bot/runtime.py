"""Running the bot inside the service's event loop: polling or webhook.

Polling (default): `initialize()`, `updater.start_polling()`, `start()`; no
`run_polling()`, which would want to own the loop (see PITFALLS). Webhook: the
Application has no Updater; the service's Starlette app receives Telegram's POST
at `[telegram] webhook_path`, checks the secret-token header and puts the update
on `application.update_queue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import BaseRateLimiter

from infranet.bot import menus
from infranet.bot.application import BotContext, InfranetApplication, build_application
from infranet.bot.common import send_html, tr
from infranet.bot.handlers import all_handlers, setup_application
from infranet.bot.ratelimit import GROUP as RATE_LIMIT_GROUP
from infranet.bot.ratelimit import CommandLimiter
from infranet.context import AppContext
from infranet.i18n import normalise_language
from infranet.security import sign

log = logging.getLogger(__name__)

RETRY_S = 30.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name)
# Telegram's updates nest a few levels (update > message > reply_to_message > entities...);
# deeper than this is not an update.
MAX_UPDATE_DEPTH = 32
MAX_UPDATE_ID = 2**63 - 1


def webhook_secret(ctx: AppContext) -> str:
    """The configured secret, or one derived from the service's secret key (stable across
    restarts, only [A-Za-z0-9_-] as Telegram requires)."""
    configured = ctx.settings.telegram.webhook_secret
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    token = sign(ctx.secret_key, "telegram-webhook", "v1")
    return "".join(ch for ch in token if ch.isalnum() or ch in "_-")[:64]


def update_payload(body: bytes) -> dict[str, Any] | None:
    """The JSON object of a webhook call if it can be an update, else None.

    Only the secret's holder gets this far, but a broken proxy or a leaked secret must not
    cost a 500: JSON nested deeper than the parser's recursion limit raises RecursionError,
    a list or a string makes PTB's `de_json` fail with AttributeError, and an update_id
    that is not a 64-bit integer would travel on into the handlers."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(payload, dict) or _depth(payload) > MAX_UPDATE_DEPTH:
        return None
    update_id = payload.get("update_id")
    if type(update_id) is not int or not 0 <= update_id <= MAX_UPDATE_ID:
        return None
    return payload


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value`, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


async def on_error(update: object, context: BotContext) -> None:
    """Log with the update id; tell the user something went wrong, never how."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("update %s failed", update_id, exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    user = update.effective_user
    lang = (context.user_data or {}).get("lang") or normalise_language(
        user.language_code if user else None)
    try:
        await send_html(context.bot, update.effective_chat.id,
                        tr(lang, "bot.error", ref=update_id or "-"))
        if update.callback_query:
            await update.callback_query.answer()
    except TelegramError:
        log.warning("update %s: could not tell the user about the error", update_id)


class BotRuntime:
    """The Application's life inside the service; `routes` holds the webhook route."""

    def __init__(self, ctx: AppContext, scheduler: AsyncIOScheduler | None = None, *,
                 rate_limiter: BaseRateLimiter[Any] | None = None,
                 start_sending: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.start_sending = start_sending
        self.rate_limiter = rate_limiter
        self.webhook = ctx.settings.telegram.mode == "webhook"
        self.application: InfranetApplication | None = None
        self.secret = webhook_secret(ctx) if self.webhook else ""
        self.error: str | None = None
        self._retry: asyncio.Task[None] | None = None

    @property
    def routes(self) -> list[Route]:
        if not self.webhook:
            return []
        return [Route(self.ctx.settings.telegram.webhook_path, self.receive, methods=["POST"])]

    def build(self) -> InfranetApplication:
        application = build_application(self.ctx, webhook=self.webhook,
                                         rate_limiter=self.rate_limiter,
                                         start_sending=self.start_sending)
        application.add_handler(
            CommandLimiter(self.ctx.settings.telegram.commands_per_minute).handler(),
            group=RATE_LIMIT_GROUP)
        for h in all_handlers(self.ctx):
            application.add_handler(h)
        setup_application(application, self.ctx)
        application.add_error_handler(on_error)
        return application

    async def start(self) -> None:
        """Start the bot. A refused token or an unreachable Bot API does not stop the rest
        of the service: the problem is logged and shown in /healthz, and an unreachable
        API is tried again every RETRY_S seconds."""
        try:
            await self._start_once()
        except InvalidToken:
            self._refused()
        except NetworkError as exc:
            self.error = (f"cannot reach the Telegram Bot API ({self._safe(exc)}); "
                          f"retrying every {RETRY_S:.0f} s")
            log.error("the Telegram bot is not running: %s", self.error)
            self._retry = asyncio.create_task(self._keep_trying(), name="bot-start-retry")

    def _safe(self, exc: Exception) -> str:
        """The error text without the token (secrets never reach logs)."""
        token = self.ctx.settings.telegram.token
        text = str(exc)
        return text.replace(token.get_secret_value(), "***") if token else text

    def _refused(self) -> None:
        self.error = "the Telegram Bot API refused the token: check [telegram] token"
        log.error("the Telegram bot is not running: %s", self.error)

    async def _keep_trying(self) -> None:
        while True:
            await asyncio.sleep(RETRY_S)
            try:
                await self._start_once()
                return
            except InvalidToken:
                self._refused()
                return
            except NetworkError as exc:
                log.warning("the Telegram Bot API is still unreachable: %s", self._safe(exc))

    async def _start_once(self) -> None:
        application = self.build()
        self.application = application
        try:
            await application.initialize()  # getMe; loads persisted conversations
            await self.set_commands()
            if self.webhook:
                url = self.ctx.settings.http.public_base_url + self.ctx.settings.telegram.webhook_path
                await application.bot.set_webhook(url, secret_token=self.secret,
                                                  allowed_updates=Update.ALL_TYPES)
            else:
                assert application.updater is not None
                await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
            await application.start()
        except Exception:
            await self._close(application)
            self.application = None
            raise
        self.error = None
        log.info("Telegram bot @%s is running (%s)", application.bot.username,
                 "webhook" if self.webhook else "polling")

    async def set_commands(self) -> None:
        """The command menus: by role and language (`infranet.bot.menus`)."""
        assert self.application is not None
        await menus.set_all(self.application.bot, self.ctx.db)

    async def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
            self._retry = None
        application, self.application = self.application, None
        if application is not None:
            await self._close(application)

    @staticmethod
    async def _close(application: InfranetApplication) -> None:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()  # also writes persistence
        try:
            await application.shutdown()
        except RuntimeError as exc:  # a start that failed half-way
            log.debug("bot shutdown: %s", exc)

    async def receive(self, request: Request) -> Response:
        """Telegram's webhook POST: check the secret, queue the update, answer at once."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("webhook call with a wrong or missing secret token refused")
            return JSONResponse({"ok": False}, status_code=403)
        application = self.application
        if application is None or not application.running:
            return JSONResponse({"ok": False, "detail": "bot not running"}, status_code=503)
        body = await request.body()  # capped while it streams in (web.body.WEBHOOK_MAX_BYTES)
        payload = update_payload(body)
        update = None
        if payload is not None:
            try:
                update = Update.de_json(payload, application.bot)
            except Exception as exc:  # PTB raises what the shape of the JSON happens to cause
                log.warning("webhook: an update that cannot be read was refused (%s)",
                            type(exc).__name__)
        if update is None:
            return JSONResponse({"ok": False, "detail": "not an update"}, status_code=400)
        await application.update_queue.put(update)
        return JSONResponse({"ok": True})

    def status(self) -> dict[str, Any]:
        application = self.application
        running = application is not None and application.running
        status: dict[str, Any] = {"ok": running and self.error is None, "enabled": True,
                                  "mode": "webhook" if self.webhook else "polling",
                                  "username": application.bot.username if running and application else None}
        if self.error:
            status["error"] = self.error
        return status
