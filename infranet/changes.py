"""Change signals: how a component tells this process's caches that its rows changed.

A cache that answers without asking the database (the feed cache, the bot's memory of
who speaks) must forget what it holds when what it copied changes. The component that
owns the rows says so explicitly: every business function that changes them calls
`signal.changing(session)`. The signal counts a generation when the change is made and
again when that session's transaction ends (committed or rolled back: either way the
next reader reads afresh), and keeps count of changes still waiting for their end.

A reader notes `token()` before it reads and keeps what it read only if the token is
still current afterwards (`is_current`); `token()` is None while a change is in flight,
so nothing read in the meantime is kept.

The signals are created with the application's context (`AppContext.changes`) and passed
to whoever needs them; nothing listens to every session of the process. Changes made by
another process (the CLI, a second instance) are not signalled here: caches bound their
age for that (see each cache's docstring).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

_PENDING = "infranet.changes.pending"


class ChangeSignal:
    """One kind of change (events, people), counted for the caches of this process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.generation = 0
        self.in_flight = 0

    def changing(self, session: AsyncSession) -> None:
        """Rows this signal covers change in `session`'s transaction: forget now, and again
        when the transaction ends."""
        self.generation += 1
        sync = session.sync_session
        pending: set[ChangeSignal] = sync.info.setdefault(_PENDING, set())
        if self in pending:
            return
        pending.add(self)
        self.in_flight += 1
        if not event.contains(sync, "after_transaction_end", _settle):
            event.listen(sync, "after_transaction_end", _settle)

    def settle(self) -> None:
        """The transaction that changed rows has ended (see `changing`)."""
        self.generation += 1
        self.in_flight -= 1

    def token(self) -> int | None:
        """What a reader notes before it reads; None: a change is on its way, keep nothing."""
        return None if self.in_flight else self.generation

    def is_current(self, token: int | None) -> bool:
        """Whether what was read after `token()` may be kept."""
        return token is not None and token == self.generation


def _settle(session: Session, transaction: SessionTransaction) -> None:
    """A session that signalled changes ends a transaction: settle them at its outermost end."""
    if transaction.parent is not None:
        return
    for signal in session.info.pop(_PENDING, ()):
        signal.settle()


@dataclass
class Changes:
    """The change signals of one application (one `AppContext`)."""

    # Events and their publication: the calendar's feeds and listings.
    events: ChangeSignal = field(default_factory=lambda: ChangeSignal("events"))
    # Members and organisations: who may do what, read by the bot's memory of speakers.
    people: ChangeSignal = field(default_factory=lambda: ChangeSignal("people"))

