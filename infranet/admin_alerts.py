"""Where the service's alerts for the admins go: one hub per running context.

A component that has something to tell the admins (the newsletter: an SMTP outage, a
paused issue, messages in doubt) calls `ctx.alerts.notify(text_en, text_pl, action=...)`;
whoever can reach the admins (the bot, when it runs in this process) registers a
callback. Without one the alert is only logged, which is what the CLI wants. The hub
lives on the AppContext, so the two sides meet through what app.py builds and passes
in, not through a module-level list.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

AlertCallback = Callable[..., Awaitable[None]]


class AdminAlerts:
    def __init__(self) -> None:
        self._callbacks: list[tuple[AlertCallback, bool]] = []

    def register(self, callback: AlertCallback, *, actions: bool = False) -> None:
        """Add `callback(text_en, text_pl)` (with `actions`: `callback(text_en, text_pl,
        action)`, the offer an alert makes, or None); called for every alert until
        unregistered."""
        if all(cb is not callback for cb, _ in self._callbacks):
            self._callbacks.append((callback, actions))

    def unregister(self, callback: AlertCallback) -> None:
        self._callbacks[:] = [(cb, a) for cb, a in self._callbacks if cb is not callback]

    async def notify(self, text_en: str, text_pl: str, *, action: Any = None) -> None:
        """Log the alert and pass it to every registered callback; a failing callback is
        logged and never stops the caller (a sender, a poller)."""
        log.warning("alert for the admins: %s", text_en)
        for callback, wants_action in list(self._callbacks):
            try:
                if wants_action:
                    await callback(text_en, text_pl, action)
                else:
                    await callback(text_en, text_pl)
            except Exception:
                log.exception("alert callback %r failed", callback)
