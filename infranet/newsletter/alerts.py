"""What the newsletter's alerts for the admins offer, and outages told once.

The newsletter knows nothing about Telegram: it calls `ctx.alerts.notify()` (the hub of
`infranet.admin_alerts`, on which the bot registers when it runs in the same process)
when sending stalls (SMTP server down) and when it is back, when a restart leaves
deliveries in the `unknown` state (an admin decides whether to resend them), when an
issue is paused because too many of its first deliveries were refused, and when the
bounce mailbox cannot be read.

A callback registered with `actions=True` is called as `callback(text_en, text_pl,
action)`, where `action` (an `Action` here, or None) names what the alert offers: resend
the unknown deliveries of an issue, or resume a paused issue. Each offer is a row of its own
(`open_action`), settled once by `claim_action`, so that a button pressed twice, on
two instances, or after the matter was settled another way changes nothing.

Outages are announced once across instances sharing the database: `outage_changed()`
flips one row (`newsletter:smtp-outage`) and only the process whose UPDATE changed
it sends the alert; the same goes for the end of the outage.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.storage.models import BotState

log = logging.getLogger(__name__)

RESEND_UNKNOWN = "resend_unknown"
RESUME = "resume"
ACTION_PREFIX = "newsletter:action:"
OUTAGE_KEY = "newsletter:smtp-outage"
# The same for the bounce mailbox (`bounces.BouncePoller`).
MAILBOX_OUTAGE_KEY = "newsletter:mailbox-outage"



@dataclass(frozen=True)
class Action:
    """What an alert offers: `kind` (RESEND_UNKNOWN or RESUME) on `issue_id`, settled
    through the action row `key`."""

    kind: str
    key: str
    issue_id: int
    count: int = 0  # how many deliveries the offer concerns (RESEND_UNKNOWN)


# --- offers settled once ---------------------------------------------------------------------


async def open_action(session: AsyncSession, kind: str, **data: Any) -> str:
    """A new offer (its key goes into the alert's button)."""
    key = secrets.token_hex(6)
    session.add(BotState(key=ACTION_PREFIX + key, data={"kind": kind, "status": "open", **data}))
    await session.flush()
    return key


async def claim_action(session: AsyncSession, key: str, decided_by: str
                       ) -> tuple[bool, dict[str, Any] | None]:
    """(True, data) when this call settles the offer; (False, data) when it was settled
    before (data says by whom); (False, None) when there is no such offer. The row is
    locked, so two presses at once on two instances settle it once."""
    row = await session.scalar(select(BotState).where(BotState.key == ACTION_PREFIX + key)
                               .with_for_update().execution_options(populate_existing=True))
    if row is None:
        return False, None
    if row.data.get("status") != "open":
        return False, dict(row.data)
    row.data = {**row.data, "status": "done", "decided_by": decided_by}
    await session.flush()
    return True, dict(row.data)


async def peek_action(session: AsyncSession, key: str) -> dict[str, Any] | None:
    row = await session.get(BotState, ACTION_PREFIX + key)
    return dict(row.data) if row is not None else None


# --- one alert per outage, across instances ------------------------------------------------


async def outage_changed(ctx: AppContext, down: bool, *, key: str = OUTAGE_KEY) -> bool:
    """Record that the SMTP server (or, by `key`, the bounce mailbox) is down or back; True
    when this call changed the shared state, i.e. when this process is the one to tell the
    admins."""
    async with ctx.db.transaction() as session:
        stamp = ctx.now().isoformat()
        if down:
            try:
                async with session.begin_nested():
                    session.add(BotState(key=key, data={"down": True, "since": stamp}))
                    await session.flush()
                return True
            except IntegrityError:
                pass
        # A JSON document is compared as text on both engines only through a dedicated
        # column, so the row is locked and compared in Python instead.
        row = await session.scalar(select(BotState).where(BotState.key == key)
                                   .with_for_update().execution_options(populate_existing=True))
        if row is None or bool(row.data.get("down")) == down:
            return False
        await session.execute(update(BotState).where(BotState.key == key)
                              .values(data={"down": down, "since": stamp}))
        return True
