"""Who is who between updates: a short-lived, per-process memory of members.

Why: every update has to know who speaks (member or not, role, organisation,
language), and reading that from the database was the largest part of the bot's
own cost per update: a read transaction and a query, more than the reply itself.
The steps of a form come seconds apart from the same person, so the answer is
kept for `TTL_S` seconds.

Correctness before speed:
- Every ORM change of a member or an organisation in this process (approve, block,
  promote, a language, a new join request, an organisation edit) forgets
  everything remembered, when it is flushed and again when its transaction ends,
  so the next update reads the new state: permissions take effect at once.
- A reader keeps what it read only if no such change was flushed or committed
  while it read (a generation counter) and none is waiting for its commit (an
  in-flight counter); otherwise it answers from what it read and keeps nothing.
- A change made by another process (the CLI's `member add-admin`) is seen at the
  latest after TTL_S seconds.
- Only read-only handlers use it. A handler that writes reads its member in its own
  write transaction, as does `Turn.writing()` when a read-only handler saves after all
  (a change made elsewhere stops a save at once), and every business function checks
  the actor again.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, object_session

from infranet.storage.database import Database
from infranet.storage.models import Member, Organisation

TTL_S = 30.0
MAX_ENTRIES = 10_000
_FLAG = "infranet.people_changed"
_WATCHED = (Member, Organisation)


class _Changes:
    """Process-wide: how many people-changes happened, and how many await their commit."""

    generation = 0
    in_flight = 0

    @classmethod
    def token(cls) -> int | None:
        """What a reader notes before it reads; None: a change is on its way, keep nothing."""
        return None if cls.in_flight else cls.generation


def _changing(session: Session | None) -> None:
    """A member or an organisation changes in `session`: forget, and count it in flight
    until that session's transaction ends."""
    _Changes.generation += 1
    if session is not None and not session.info.get(_FLAG):
        session.info[_FLAG] = True
        _Changes.in_flight += 1


def _on_row_change(_mapper: Any, _connection: Any, target: object) -> None:
    _changing(object_session(target))


for _watched in _WATCHED:  # fired in the flush, for these classes only (cheap for the rest)
    for _name in ("after_insert", "after_update", "after_delete"):
        event.listen(_watched, _name, _on_row_change)


@event.listens_for(Session, "do_orm_execute")
def _on_orm_execute(state: Any) -> None:
    """Bulk statements (`update(Member)...`) change people without a flush."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, _WATCHED):
        _changing(state.session)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None or not session.info.pop(_FLAG, False):
        return
    _Changes.generation += 1  # committed or rolled back: either way, read afresh
    _Changes.in_flight -= 1


class People:
    """Members by Telegram id (None: not a member), remembered for TTL_S seconds."""

    def __init__(self, ttl: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[int, tuple[float, int, Member | None]] = {}

    def get(self, telegram_id: int) -> tuple[bool, Member | None]:
        """(found, member); not found when unknown, expired or older than a change."""
        entry = self._entries.get(telegram_id)
        if entry is None:
            return False, None
        stored_at, generation, member = entry
        if generation != _Changes.generation or self.clock() - stored_at > self.ttl:
            del self._entries[telegram_id]
            return False, None
        return True, member

    def keep(self, telegram_id: int, member: Member | None, token: int | None) -> None:
        """Remember what was read after `token()`, unless people changed meanwhile."""
        if token is None or token != _Changes.generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[telegram_id] = (self.clock(), token, member)

    @staticmethod
    def token() -> int | None:
        return _Changes.token()


_BY_DATABASE: weakref.WeakKeyDictionary[Database, People] = weakref.WeakKeyDictionary()


def people(db: Database) -> People:
    """The memory of one database's members (one per Database object)."""
    found = _BY_DATABASE.get(db)
    if found is None:
        found = _BY_DATABASE[db] = People()
    return found
