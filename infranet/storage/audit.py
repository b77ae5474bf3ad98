"""The audit log: one row per change, written in the transaction that makes it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog


async def record(
    session: AsyncSession, actor: Actor, action: str, entity: str,
    entity_id: object | None = None, **details: Any,
) -> None:
    session.add(AuditLog(actor=actor.name, action=action, entity=entity,
                         entity_id=None if entity_id is None else str(entity_id),
                         details=details))
