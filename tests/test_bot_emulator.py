"""The Bot API emulator is as strict as Telegram where the bot could go wrong."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter

from tests.botapi import TOKEN, BotApi

CHAT = 4242


@pytest.fixture
async def raw_bot(botapi: BotApi) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=botapi.base_url) as bot:
        yield bot


@pytest.mark.parametrize("text", [
    "a < b", "Tom & Jerry", "<foo>x</foo>", "<b>unclosed", "<b>x</i>", "&nbsp;", "<a>no href</a>",
])
async def test_malformed_html_is_refused(raw_bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match="parse entities"):
        await raw_bot.send_message(CHAT, text, parse_mode=ParseMode.HTML)


async def test_valid_html_and_plain_text_pass(raw_bot: Bot, botapi: BotApi) -> None:
    await raw_bot.send_message(CHAT, '<b>a</b> &lt;3 &amp; <a href="https://x.org">x</a> '
                                     '<tg-spoiler>s</tg-spoiler> <blockquote>q</blockquote>',
                               parse_mode=ParseMode.HTML)
    assert (await botapi.next_reply(CHAT)).text == "a <3 & x s q"
    await raw_bot.send_message(CHAT, "a < b & c")  # no parse mode: taken as is
    assert (await botapi.next_reply(CHAT)).text == "a < b & c"


async def test_length_limits(raw_bot: Bot) -> None:
    await raw_bot.send_message(CHAT, "<b>" + "x" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="too long"):
        await raw_bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await raw_bot.send_message(CHAT, "x", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("b", callback_data="ż" * 33)]]))  # 66 bytes


async def test_unchanged_edit_is_refused(raw_bot: Bot) -> None:
    sent = await raw_bot.send_message(CHAT, "same")
    with pytest.raises(BadRequest, match="not modified"):
        await raw_bot.edit_message_text("same", CHAT, sent.message_id)
    await raw_bot.edit_message_text("changed", CHAT, sent.message_id)
    with pytest.raises(BadRequest, match="not found"):
        await raw_bot.edit_message_text("x", CHAT, 999_999)


async def test_flood_control_answer(raw_bot: Bot, botapi: BotApi) -> None:
    botapi.flood("sendMessage", times=1, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await raw_bot.send_message(CHAT, "x")
    assert caught.value.retry_after in (7, timedelta(seconds=7))
    await raw_bot.send_message(CHAT, "x")  # only the next call was refused
