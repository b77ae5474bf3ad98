"""Admin alerts from the newsletter, delivered by whoever registered for them.

The newsletter knows nothing about Telegram. The bot registers an async
callback here at start-up; the sender calls `notify()` when sending stalls
(SMTP server down) or when a restart leaves deliveries in the `unknown`
state, which an admin must decide to resend or not.

    from infranet.newsletter import alerts

    async def tell_admins(text_en: str, text_pl: str) -> None: ...
    alerts.register(tell_admins)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

AlertCallback = Callable[[str, str], Awaitable[None]]
_callbacks: list[AlertCallback] = []


def register(callback: AlertCallback) -> None:
    """Add `callback(text_en, text_pl)`; called for every alert until unregistered."""
    if callback not in _callbacks:
        _callbacks.append(callback)


def unregister(callback: AlertCallback) -> None:
    if callback in _callbacks:
        _callbacks.remove(callback)


async def notify(text_en: str, text_pl: str) -> None:
    """Log the alert and pass it to every registered callback; a failing callback
    is logged and never stops the sender."""
    log.warning("newsletter alert: %s", text_en)
    for callback in list(_callbacks):
        try:
            await callback(text_en, text_pl)
        except Exception:
            log.exception("newsletter alert callback %r failed", callback)
