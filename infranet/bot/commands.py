"""Commands as /help and the command menus list them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from infranet.bot.common_base import Access
from infranet.errors import ValidationFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """A command a handler module offers; its description is the message `bot.cmd.<name>`.

    `access` decides who sees it in /help; `menu` whether it is in Telegram's menu.
    """

    name: str
    access: Access = "anyone"
    menu: bool = True


def check_length(text: str, limit: int) -> str:
    """The stripped text, or ValidationFailed with the length and the limit."""

    text = text.strip()
    if len(text) > limit:
        raise ValidationFailed("bot.text_too_long", length=len(text), limit=limit)
    return text
