"""Where the admins' copies of a request waiting for a decision were sent.

A join request, an event or a training notice in moderation reaches every admin as a
message of its own with decision buttons. Once one admin decides, every copy is edited
to show the outcome and who decided (`infranet.bot.decisions`), so that nobody acts on
what is already settled. The rows are written after the copies are sent and taken
(deleted) when they are edited: they live only while the request waits.

A newsletter send asked for with /newsletter_send is a request of its own (a `bot_state`
row under `newsletter:send:<key>`, outside the keys the bot's persistence loads), settled
once by its confirm or cancel button.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.storage.models import BotState, DecisionMessage


async def record_copies(session: AsyncSession, kind: str, subject_id: int,
                        copies: Iterable[tuple[int, int, str]]) -> None:
    """Remember (chat id, message id, language) of each copy sent."""
    session.add_all(DecisionMessage(kind=kind, subject_id=subject_id, chat_id=chat_id,
                                    message_id=message_id, language=language)
                    for chat_id, message_id, language in copies)
    await session.flush()


async def take_copies(session: AsyncSession, kind: str, subject_id: int) -> list[DecisionMessage]:
    """The copies of a decided request, removed from the table (each is edited once)."""
    rows = list((await session.scalars(select(DecisionMessage).where(
        DecisionMessage.kind == kind, DecisionMessage.subject_id == subject_id)
        .order_by(DecisionMessage.id))).all())
    if rows:
        await session.execute(delete(DecisionMessage).where(
            DecisionMessage.id.in_([r.id for r in rows])))
    return rows


# --- a newsletter send, asked for and then confirmed --------------------------------------------

SEND_PREFIX = "newsletter:send:"


async def open_send_request(session: AsyncSession, asked_by: str) -> str:
    """A new request to send the newsletter now; its key goes into the confirm button, so
    that the button sends once: a second press (a double tap, an old confirmation) finds
    the request settled and says by whom, instead of building and sending another issue."""
    key = secrets.token_hex(6)
    session.add(BotState(key=SEND_PREFIX + key, data={"status": "pending", "asked_by": asked_by}))
    await session.flush()
    return key


async def claim_send_request(session: AsyncSession, key: str, decided_by: str, outcome: str
                             ) -> tuple[bool, dict[str, Any] | None]:
    """(True, data) when this call settles the request as `outcome` ("sent" or "cancelled");
    (False, data) when it was settled before; (False, None) when there is no such request.
    The row is locked, so two presses at once on two instances settle it once."""
    row = await session.scalar(select(BotState).where(BotState.key == SEND_PREFIX + key)
                               .with_for_update().execution_options(populate_existing=True))
    if row is None:
        return False, None
    if row.data.get("status") != "pending":
        return False, dict(row.data)
    row.data = {**row.data, "status": outcome, "decided_by": decided_by}
    await session.flush()
    return True, dict(row.data)


async def note_sent_issue(session: AsyncSession, key: str, issue_id: int | None) -> None:
    row = await session.get(BotState, SEND_PREFIX + key)
    if row is not None:
        row.data = {**row.data, "issue_id": issue_id}
        await session.flush()
