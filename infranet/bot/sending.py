"""Sending messages, with Telegram's refusals handled."""

from __future__ import annotations

import logging
from typing import Any

from telegram import (
    Bot,
    Message,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden

from infranet.bot.buttons import Buttons, keyboard
from infranet.bot.html_text import split_html

log = logging.getLogger(__name__)


async def send_html(bot: Bot, chat_id: int, text: str, buttons: Buttons = None) -> Message | None:
    """Send HTML text, split into several messages when needed; the keyboard goes
    with the last one. A user who blocked the bot is logged, not an error."""
    parts = split_html(text)
    message = None
    try:
        for index, part in enumerate(parts):
            message = await bot.send_message(
                chat_id, part, parse_mode=ParseMode.HTML, disable_web_page_preview=True,
                reply_markup=keyboard(buttons) if index == len(parts) - 1 else None)
    except Forbidden:
        log.info("chat %s cannot be reached (the user has not started the bot or blocked it)",
                 chat_id)
        return None
    return message


async def edit_html(message: Message | Any, text: str, buttons: Buttons = None) -> None:
    """Edit a message of the bot; "not modified" is not an error, and a message that
    can no longer be edited (too old, deleted) gets the text as a new message instead."""
    parts = split_html(text)
    try:
        await message.edit_text(parts[0], parse_mode=ParseMode.HTML,
                                disable_web_page_preview=True,
                                reply_markup=keyboard(buttons) if len(parts) == 1 else None)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            log.info("message %s not edited (%s): sent anew", message.message_id, exc)
            await send_html(message.get_bot(), message.chat.id, text, buttons)
            return
    for index, part in enumerate(parts[1:], start=2):
        await message.get_bot().send_message(
            message.chat.id, part, parse_mode=ParseMode.HTML, disable_web_page_preview=True,
            reply_markup=keyboard(buttons) if index == len(parts) else None)


