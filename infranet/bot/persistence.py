"""The bot's conversation state in the `bot_state` table, read and written per update.

Why: a form in progress (a half-filled /event) must survive a crash of the service and
must be seen by whichever instance gets the user's next update (several instances in
webhook mode behind a load balancer, without sticky routing). python-telegram-bot's own
persistence loads everything once at start and writes every few seconds, so neither
holds. `ChatStore` instead reads one user's rows when an update arrives and writes what
changed before the bot answers (`InfranetApplication.process_update`). PostgreSQL: with a
version check instead of a lock (an instance writes only if no other moved the user's
state since it read it; else the update runs again on the new state); SQLite: one process
is the only writer, so an in-process lock and its memory of the rows suffice.

Keys: `user:<id>` (user_data; its `version` is the user's), `chat:<id>` (chat_data),
`conv:<name>:<json key>` (a conversation's state and when it last moved), `done:<user id>`
(receipts of forms already saved: see `record_receipt`).

Stored values are JSON, tagged where JSON lacks a type (`state_codec.py`).

A little over 400 lines: the keys, the claim, `Held`, `ChatStore`, the receipts and the
adapter PTB needs are one mechanism, and each of them reads the others' rows and locks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time as clock
import weakref
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import ConversationDict, ConversationKey

from infranet.storage.database import Database
from infranet.storage.models import BotState
from infranet.storage.types import utcnow

# PTB's periodic persistence round; its writes do nothing here (see DatabasePersistence).
UPDATE_INTERVAL_S = 60.0


# SQLite: the rows an update wrote beside ChatStore (receipts), read again next time.
WRITTEN: ContextVar[set[str] | None] = ContextVar("infranet_bot_rows_written", default=None)
RECEIPTS_KEPT = 20
RECEIPT_MAX_AGE_S = 7 * 24 * 3600.0


def user_key(user_id: int) -> str:
    return f"user:{user_id}"


def chat_key(chat_id: int) -> str:
    return f"chat:{chat_id}"


def conv_key(name: str, key: tuple[Any, ...]) -> str:
    return f"conv:{name}:{json.dumps(list(key), separators=(',', ':'))}"


def receipts_key(user_id: int) -> str:
    return f"done:{user_id}"


def _upsert(is_sqlite: bool) -> Any:
    statement = (sqlite_insert if is_sqlite else pg_insert)(BotState)
    return statement.on_conflict_do_update(
        index_elements=[BotState.key],
        set_={"data": statement.excluded.data, "updated_at": statement.excluded.updated_at})


# Built once: SQLAlchemy compiles it once per engine, where `insert().values(rows)` built
# per call was compiled again on every update (about half a millisecond each).
_UPSERT = {True: _upsert(True), False: _upsert(False)}


async def write_rows(session: AsyncSession, is_sqlite: bool,
                     batch: dict[str, dict[str, Any] | None]) -> None:
    """Upsert the rows with data, delete those set to None: one statement each."""
    gone = [key for key, data in batch.items() if data is None]
    if gone:
        await session.execute(delete(BotState).where(BotState.key.in_(gone)))
    now = utcnow()
    rows = [{"key": key, "data": data, "updated_at": now}
            for key, data in batch.items() if data is not None]
    if rows:
        await session.execute(_UPSERT[is_sqlite], rows[0] if len(rows) == 1 else rows)


class StateMoved(Exception):
    """Another instance moved this user's bot state after this update read it: nothing of
    the update was written, and it is run again on the state as it now is."""


# PostgreSQL: claim the user's state, i.e. bump the version of their `user:<id>` row (or
# create it) only if it is still the version the update read; RETURNING the new one.
_CLAIM = (
    "INSERT INTO bot_state (key, data, updated_at, version) "
    "VALUES (:head, CAST(CAST(:head_data AS text) AS json), now(), :version + 1) "
    "ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, "
    "version = bot_state.version + 1 WHERE bot_state.version = :version "
    "RETURNING bot_state.version")


# The update's rows in one statement, all or nothing: the other rows are written only if
# `claim` returned a row (a data-modifying WITH; its parts see only each other's RETURNING).
_CLAIM_AND_WRITE = text(
    "WITH claim AS (" + _CLAIM + "), "  # noqa: S608  (constants; values are parameters)
    "put AS (INSERT INTO bot_state (key, data, updated_at, version) "
    "SELECT t.key, CAST(t.data AS json), now(), 0 "
    "FROM unnest(CAST(:put_keys AS text[]), CAST(:put_data AS text[])) AS t(key, data) "
    "WHERE EXISTS (SELECT FROM claim) ON CONFLICT (key) DO UPDATE "
    "SET data = excluded.data, updated_at = excluded.updated_at), "
    "gone AS (DELETE FROM bot_state WHERE key = ANY(CAST(:gone AS text[])) "
    "AND EXISTS (SELECT FROM claim)) "
    "SELECT version FROM claim")


def _claim_params(head: str, head_data: dict[str, Any], version: int,
                  changes: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """The parameters of `_CLAIM_AND_WRITE`: `changes` (beside the user's own row) upserted,
    or deleted where None, only if the claim of `head` at `version` succeeds."""
    put = {key: data for key, data in changes.items() if data is not None}
    return {"head": head, "head_data": json.dumps(head_data), "version": version,
            "put_keys": list(put), "put_data": [json.dumps(data) for data in put.values()],
            "gone": [key for key, data in changes.items() if data is None]}


class Held:
    """One user's rows as read when the update arrived (`rows`) and as the update left
    them (`after`, set by the caller); only the difference is written.

    `session` is where the update's handlers read (PostgreSQL: the session the state was
    read in, autocommit, so a read costs no BEGIN and COMMIT; SQLite: None, handlers open
    their own). `transaction()` (PostgreSQL) is where a handler saves: see `ChatStore`.
    """

    def __init__(self, store: ChatStore, head: str, rows: dict[str, Any], version: int,
                 session: AsyncSession | None = None) -> None:
        self.store = store
        self.head = head
        self.rows = rows
        self.version = version
        self.after: dict[str, dict[str, Any] | None] = {}
        self.session = session
        self.moved = False  # a handler's save found the state moved on elsewhere
        self.writer: AsyncSession | None = None  # the save's transaction, until the state joins it
        self.written: set[str] = set()  # rows written beside ChatStore (receipts)

    def changes(self) -> dict[str, dict[str, Any] | None]:
        return {key: data for key, data in self.after.items() if self.rows.get(key) != data}

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """PostgreSQL: a handler's write transaction. It first claims the user's state at
        the version read (a row lock until it commits: a save of the same user on another
        instance waits, then finds the version moved and is run again on the new state),
        and stays open until the update's state is written in it: the save and the form's
        new state commit together. An error in the block rolls it all back."""
        if self.moved:
            raise StateMoved(self.head)
        if self.writer is not None:  # a second save in the same update: a savepoint
            async with self.writer.begin_nested():
                yield self.writer
            return
        session = self.store.db.sessionmaker()
        try:
            claimed = (await session.execute(text(_CLAIM), {
                "head": self.head, "head_data": json.dumps(self.rows.get(self.head) or {}),
                "version": self.version})).scalar_one_or_none()
            if claimed is None:
                self.moved = True
                raise StateMoved(self.head)
            self.writer = session
            yield session
        except BaseException:
            self.writer = None
            await session.rollback()
            await session.close()
            raise
        self.version = claimed


class ChatStore:
    """Per-update reads and writes of one user's bot state.

    The state is the user's, not the chat's: user_data (where forms keep their answers)
    belongs to the user in every chat, and every conversation key holds the user.

    PostgreSQL (several instances): no lock is held while the update is handled. The rows
    are read in one statement with the version of the user's `user:<id>` row; what changed
    is written in one statement that bumps that version only if it is still the one read,
    and writes the other rows only then (`_claim_and_write`). An update that changed
    nothing writes nothing. If another instance moved the user's state in between (two
    taps of one user reaching two instances at once), nothing is written and the update
    is run again on the new state (`StateMoved`, `InfranetApplication.process_locked`).

    SQLite: the service is the database's only process (it holds a lock on the file), so
    an in-process lock per user serialises the updates and this process's memory of the
    rows is the truth; the database is written for durability only, and read once per row.
    """

    CACHED_ROWS = 50_000

    def __init__(self, db: Database) -> None:
        self.db = db
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._rows: collections.OrderedDict[str, dict[str, Any] | None] = collections.OrderedDict()
        # PostgreSQL: a small pool of its own whose connections are autocommit from the
        # start. Borrowed from the service's pool and switched per use, a connection is
        # checked (pool_pre_ping) in a transaction: BEGIN, ping, ROLLBACK, three round
        # trips per update; an autocommit one is checked in one.
        self._engine = None if db.is_sqlite else create_async_engine(
            db.url, isolation_level="AUTOCOMMIT", pool_size=2, max_overflow=8, pool_pre_ping=True)
        self._autocommit = (None if self._engine is None
                            else async_sessionmaker(self._engine, expire_on_commit=False))

    async def dispose(self) -> None:
        """Close the connections of its own pool (PostgreSQL)."""
        if self._engine is not None:
            await self._engine.dispose()

    def _local_lock(self, user_id: int) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    @contextlib.asynccontextmanager
    async def held(self, user_id: int, keys: list[str]) -> AsyncIterator[Held]:
        """The rows `keys` of `user_id` (the first is the user's own row); on leaving the
        block without an error, `held.after`'s changes are in the database. An error (or a
        crash) writes nothing: the next update sees the state as it was. PostgreSQL:
        `StateMoved` on leaving if another instance moved the state meanwhile."""
        if self.db.is_sqlite:
            async with self._local_lock(user_id):
                held = Held(self, keys[0], await self._cached(keys), 0)
                token = WRITTEN.set(held.written)
                try:
                    yield held
                finally:
                    WRITTEN.reset(token)
                    for key in held.written:  # receipts: read again next time
                        self._rows.pop(key, None)
                changes = held.changes()
                if changes:
                    async with self.db.transaction() as session:
                        await write_rows(session, True, changes)
                    self._remember(changes)
            return
        assert self._autocommit is not None
        async with self._autocommit() as session:
            found = await session.execute(select(BotState.key, BotState.data, BotState.version)
                                          .where(BotState.key.in_(keys)))
            rows, version = {}, 0
            for key, data, row_version in found:
                rows[key] = data
                if key == keys[0]:
                    version = row_version
            held = Held(self, keys[0], rows, version, session)
            try:
                yield held
            except BaseException:
                if held.writer is not None:
                    await held.writer.rollback()
                    await held.writer.close()
                raise
            await self._write(session, held)

    async def _write(self, session: AsyncSession, held: Held) -> None:
        """PostgreSQL: the update's changes, in the save's transaction if a handler saved,
        else in one statement conditional on the version read."""
        changes = held.changes()
        if held.head in changes and changes[held.head] is None:
            changes[held.head] = {}  # the user's row stays: it carries the version
            if held.rows.get(held.head) in (None, {}):
                del changes[held.head]
        if held.writer is not None:
            try:
                if changes:
                    await write_rows(held.writer, False, changes)
                await held.writer.commit()
            finally:
                await held.writer.close()
            return
        if held.moved:
            raise StateMoved(held.head)
        if not changes:
            return
        head_data = changes.pop(held.head, held.rows.get(held.head)) or {}
        params = _claim_params(held.head, head_data, held.version, changes)
        if (await session.execute(_CLAIM_AND_WRITE, params)).scalar_one_or_none() is None:
            raise StateMoved(held.head)

    async def _cached(self, keys: list[str]) -> dict[str, Any]:
        """SQLite: the rows from memory, those not yet seen read from the database."""
        missing = [key for key in keys if key not in self._rows]
        if missing:
            async with self.db.read() as session:
                found = {key: data for key, data in await session.execute(
                    select(BotState.key, BotState.data).where(BotState.key.in_(missing)))}
            self._remember({key: found.get(key) for key in missing})
        out = {}
        for key in keys:
            self._rows.move_to_end(key)
            if self._rows[key] is not None:
                out[key] = self._rows[key]
        return out

    def _remember(self, rows: dict[str, dict[str, Any] | None]) -> None:
        self._rows.update(rows)
        for key in rows:
            self._rows.move_to_end(key)
        while len(self._rows) > self.CACHED_ROWS:
            self._rows.popitem(last=False)


async def record_receipt(session: AsyncSession, is_sqlite: bool, user_id: int, form_id: str,
                         text_shown: str, update_id: int) -> None:
    """Note, in the transaction that saved a form, that form `form_id` is saved, what the
    user was told, and by which update. A redelivered update or a form whose state write
    was lost in a crash finds it and answers "already saved" instead of saving again."""
    key = receipts_key(user_id)
    query = select(BotState.data).where(BotState.key == key)
    if not is_sqlite:
        query = query.with_for_update()
    found = dict((await session.execute(query)).scalar_one_or_none() or {})
    now = clock.time()
    found[form_id] = {"text": text_shown, "update": update_id, "at": now}
    kept = sorted(((k, v) for k, v in found.items()
                   if isinstance(v, dict) and now - float(v.get("at", 0)) < RECEIPT_MAX_AGE_S),
                  key=lambda kv: float(kv[1].get("at", 0)))[-RECEIPTS_KEPT:]
    await write_rows(session, is_sqlite, {key: dict(kept)})
    written = WRITTEN.get()
    if written is not None:
        written.add(key)


class DatabasePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """What python-telegram-bot needs to accept persistent conversations, and nothing more.

    The state itself is read and written per update by `ChatStore` (see the module
    docstring); PTB's periodic writes of what it holds in memory would overwrite what
    another instance wrote since, so they do nothing here, and nothing is loaded at start.
    """

    def __init__(self, db: Database, update_interval: float = UPDATE_INTERVAL_S) -> None:
        super().__init__(store_data=PersistenceInput(bot_data=False, chat_data=False,
                                                     user_data=False, callback_data=False),
                         update_interval=update_interval)
        self.db = db

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        """Written per update by ChatStore."""

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        """Written per update by ChatStore."""

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        """bot_data is not used."""

    async def drop_user_data(self, user_id: int) -> None:
        """Written per update by ChatStore."""

    async def drop_chat_data(self, chat_id: int) -> None:
        """Written per update by ChatStore."""

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        """Read per update by ChatStore, before the handlers are chosen."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        """Read per update by ChatStore, before the handlers are chosen."""

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        """bot_data is not used."""

    async def get_callback_data(self) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        """Unused: callback data are short strings (`ev:123:ok`)."""

    async def get_conversations(self, name: str) -> ConversationDict:
        return {}

    async def update_conversation(self, name: str, key: ConversationKey,
                                  new_state: object | None) -> None:
        """Written per update by ChatStore."""

    async def flush(self) -> None:
        """Nothing waits: every update's state was written before its answer."""
