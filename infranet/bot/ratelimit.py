"""Per-user command rate limit: `[telegram] commands_per_minute`.

Runs before every other handler (group -10). Past the limit, the command is
not handled and the user gets one polite line per minute, not one per command.
`/cancel` is neither counted nor stopped (buttons, Anuluj included, are not commands).
Kept in memory: a restart forgets the window, which is harmless.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from telegram import Update
from telegram.ext import ApplicationHandlerStop, TypeHandler

from infranet.bot.application import BotContext
from infranet.bot.common import send_html, tr
from infranet.i18n import normalise_language

GROUP = -10
WINDOW_S = 60.0


def is_cancel(text: str) -> bool:
    """`/cancel` (or `/cancel@bot`): never limited, so a user can always get out of a form."""
    command = text.split(maxsplit=1)[0] if text.split() else ""
    return command.split("@", 1)[0].lower() == "/cancel"


class CommandLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[int, deque[float]] = defaultdict(deque)
        self._warned: dict[int, float] = {}

    def allow(self, user_id: int) -> bool:
        now = self.clock()
        seen = self._seen[user_id]
        while seen and seen[0] <= now - WINDOW_S:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return False
        seen.append(now)
        return True

    def should_warn(self, user_id: int) -> bool:
        now = self.clock()
        if now - self._warned.get(user_id, -WINDOW_S * 2) < WINDOW_S:
            return False
        self._warned[user_id] = now
        return True

    def handler(self) -> TypeHandler[Update, BotContext, Any]:
        async def check(update: Update, context: BotContext) -> None:
            message = update.message
            user = update.effective_user
            text = message.text or "" if message is not None else ""
            if message is None or user is None or not text.startswith("/") or is_cancel(text):
                return
            if self.allow(user.id):
                return
            if self.should_warn(user.id):
                lang = (context.user_data or {}).get("lang") or normalise_language(user.language_code)
                await send_html(context.bot, message.chat.id,
                                tr(lang, "bot.slow_down", limit=self.per_minute))
            raise ApplicationHandlerStop

        return TypeHandler(Update, check)
