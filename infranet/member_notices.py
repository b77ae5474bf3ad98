"""Where a component's news for an organisation's members goes: one hub per running context.

The calendar follows each organisation's own calendars by URL and has things to tell that
organisation's members (a source that keeps failing, the conflicts an import found); only
the bot reaches members, and the calendar must not import the bot. So, as with the admins'
alerts (`admin_alerts.py`): the component calls
`ctx.notices.tell_organisation(org_id, "message.id", **params)` after its transaction has
committed, and whoever can reach members (the bot, when it runs in this process) registers
a callback that renders the message in each member's language and sends it (a parameter
with a `localized(lang)` method, such as an error, is rendered in that language too:
`localized_params`). Without one
the notice is only logged, which is what the CLI wants. Deciding *whether* to tell (once,
not every hour) is the component's business, kept in its rows so that several instances
tell once between them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

# callback(organisation_id, message_id, params) -> how many members it reached
NoticeCallback = Callable[[int, str, dict[str, Any]], Awaitable[int]]


def localized_params(params: dict[str, Any], lang: str) -> dict[str, Any]:
    """`params` for a message in `lang`: values that can say themselves in a language do."""
    return {name: value.localized(lang) if hasattr(value, "localized") else value
            for name, value in params.items()}


class MemberNotices:
    def __init__(self) -> None:
        self._callbacks: list[NoticeCallback] = []

    def register(self, callback: NoticeCallback) -> None:
        if all(cb is not callback for cb in self._callbacks):
            self._callbacks.append(callback)

    def unregister(self, callback: NoticeCallback) -> None:
        self._callbacks[:] = [cb for cb in self._callbacks if cb is not callback]

    async def tell_organisation(self, organisation_id: int, key: str, **params: Any) -> int:
        """Pass the notice to every registered callback; return how many members were
        reached (0 with no listener). A failing callback is logged and never stops the
        caller (a refresh round)."""
        log.info("notice for the members of organisation %s: %s %s", organisation_id, key, params)
        reached = 0
        for callback in list(self._callbacks):
            try:
                reached += await callback(organisation_id, key, dict(params))
            except Exception:
                log.exception("notice callback %r failed", callback)
        return reached
