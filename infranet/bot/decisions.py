"""Admins' copies of a request that waits for a decision: sent and remembered, then all
edited to show the outcome and who decided, once any admin has decided.

Why: with several admins, each gets the request with its buttons. Without this, the
copies of the admins who did not decide kept live-looking buttons; one pressed later
either acted on something else (a reused row) or only then learnt it was settled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import TelegramError

from infranet.bot.common import Buttons, send_html
from infranet.storage.database import Database
from infranet.storage.decisions import record_copies, take_copies

log = logging.getLogger(__name__)


async def send_copies(bot: Bot, db: Database, kind: str, subject_id: int,
                      messages: Sequence[tuple[int, str, str, Buttons]]) -> int:
    """Send (chat id, language, text, buttons) to each admin and remember every copy that
    arrived; returns how many arrived."""
    sent: list[tuple[int, int, str]] = []
    for chat_id, language, text, buttons in messages:
        try:
            message = await send_html(bot, chat_id, text, buttons)
        except TelegramError:
            log.exception("the %s #%s request could not be sent to %s", kind, subject_id, chat_id)
            continue
        if message is not None:
            sent.append((chat_id, message.message_id, language))
    if sent:
        async with db.transaction() as session:
            await record_copies(session, kind, subject_id, sent)
    return len(sent)


async def edit_copies(bot: Bot, db: Database, kind: str, subject_id: int,
                      text_for: Callable[[str], str], *,
                      skip: tuple[int, int] | None = None) -> None:
    """Edit every remembered copy to `text_for(language)`, without buttons. `skip` is the
    copy already edited by the handler (the one pressed). A copy that cannot be edited
    (deleted, too old, the admin left) is skipped quietly."""
    async with db.transaction() as session:
        copies = [(c.chat_id, c.message_id, c.language)
                  for c in await take_copies(session, kind, subject_id)]
    for chat_id, message_id, language in copies:
        if skip == (chat_id, message_id):
            continue
        try:
            await bot.edit_message_text(text_for(language), chat_id=chat_id, message_id=message_id,
                                        parse_mode=ParseMode.HTML, disable_web_page_preview=True)
        except TelegramError as exc:
            log.info("copy %s/%s of the %s #%s request not edited: %s", chat_id, message_id, kind,
                     subject_id, exc)
