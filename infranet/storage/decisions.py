"""Where the admins' copies of a request waiting for a decision were sent.

A join request, an event or a training notice in moderation reaches every admin as a
message of its own with decision buttons. Once one admin decides, every copy is edited
to show the outcome and who decided (`infranet.bot.decisions`), so that nobody acts on
what is already settled. The rows are written after the copies are sent and taken
(deleted) when they are edited: they live only while the request waits.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.storage.models import DecisionMessage


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
