"""Who is who between updates: a short-lived, per-process memory of members.

Why: every update has to know who speaks (member or not, role, organisation,
language), and reading that from the database was the largest part of the bot's
own cost per update: a read transaction and a query, more than the reply itself.
The steps of a form come seconds apart from the same person, so the answer is
kept for `TTL_S` seconds.

Correctness before speed:
- Every change of a member or an organisation made through the network component
  (approve, block, promote, a language, a new join request, an organisation edit)
  raises the `people` change signal (`infranet.changes`): everything remembered is
  forgotten when the change is made and again when its transaction ends, so the next
  update reads the new state: permissions take effect at once.
- A reader keeps what it read only if no such change was made or ended while it read
  and none is waiting for its end (see `ChangeSignal.token`); otherwise it answers
  from what it read and keeps nothing.
- A change made by another process (the CLI's `member add-admin`, a second instance)
  is seen at the latest after TTL_S seconds.
- Only read-only handlers use it. A handler that writes reads its member in its own
  write transaction, as does `Turn.writing()` when a read-only handler saves after all
  (a change made elsewhere stops a save at once), and every business function checks
  the actor again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from infranet.changes import ChangeSignal
from infranet.storage.database import Database
from infranet.storage.models import Member

TTL_S = 30.0
MAX_ENTRIES = 10_000


class People:
    """Members by Telegram id (None: not a member), remembered for TTL_S seconds."""

    def __init__(self, db: Database, changes: ChangeSignal, *, ttl: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.changes = changes
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[int, tuple[float, int, Member | None]] = {}

    def get(self, telegram_id: int) -> tuple[bool, Member | None]:
        """(found, member); not found when unknown, expired or older than a change."""
        entry = self._entries.get(telegram_id)
        if entry is None:
            return False, None
        stored_at, generation, member = entry
        if generation != self.changes.generation or self.clock() - stored_at > self.ttl:
            del self._entries[telegram_id]
            return False, None
        return True, member

    def keep(self, telegram_id: int, member: Member | None, token: int | None) -> None:
        """Remember what was read after `token()`, unless people changed meanwhile."""
        if not self.changes.is_current(token):
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        assert token is not None
        self._entries[telegram_id] = (self.clock(), token, member)

    def token(self) -> int | None:
        return self.changes.token()
