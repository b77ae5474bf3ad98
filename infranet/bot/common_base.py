"""Constants every part of the bot's framework shares."""

from __future__ import annotations

from typing import Literal

from telegram.ext import ConversationHandler

MAX_MESSAGE = 4096
MAX_CALLBACK = 64
END = ConversationHandler.END
# What a form step returns: the name of the next step, or END (python-telegram-bot's -1).
State = str | int

Access = Literal["anyone", "member", "admin"]
Chats = Literal["any", "private"]


