"""The bot's conversation state in the `bot_state` table, read and written per update.

Why: a form in progress (a half-filled /event) must survive a crash of the service and
must be seen by whichever instance gets the user's next update (several instances in
webhook mode behind a load balancer, without sticky routing). python-telegram-bot's own
persistence loads everything once at start and writes every few seconds, so neither
holds. `ChatStore` instead reads one user's rows when an update arrives, under a lock on
that user (PostgreSQL: a transaction-scoped advisory lock, so the instances take turns;
SQLite: one process is the only writer, so an in-process lock), and writes what changed
before the bot answers (`InfranetApplication.process_update`).

Keys: `user:<id>` (user_data), `chat:<id>` (chat_data), `conv:<name>:<json key>`
(a conversation's state and when it last moved), `done:<user id>` (receipts of forms
already saved: see `record_receipt`).

Stored values are JSON. Handler modules keep JSON-friendly values in
user_data/chat_data; dates, datetimes, times, Decimals, tuples, sets and dicts
with non-string keys are tagged and restored. Anything else (an ORM object, say)
is dropped with a warning rather than breaking the save of everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time as clock
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import ConversationDict, ConversationKey

from infranet.storage.database import Database
from infranet.storage.models import BotState
from infranet.storage.types import utcnow

log = logging.getLogger(__name__)

# PTB's periodic persistence round; its writes do nothing here (see DatabasePersistence).
UPDATE_INTERVAL_S = 60.0


class NotStorable(TypeError):
    pass


def encode(value: Any) -> Any:
    """Plain data to JSON-able data, with tags for the types JSON lacks."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {"__dt__": value.isoformat()}
    if isinstance(value, date):
        return {"__date__": value.isoformat()}
    if isinstance(value, time):
        return {"__time__": value.isoformat()}
    if isinstance(value, Decimal):
        return {"__dec__": str(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, set | frozenset):
        return {"__set__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"__map__": [[encode(k), encode(v)] for k, v in value.items()]}
    raise NotStorable(f"{type(value).__name__} cannot be stored in bot persistence")


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "__dt__": datetime.fromisoformat,
    "__date__": date.fromisoformat,
    "__time__": time.fromisoformat,
    "__dec__": Decimal,
    "__tuple__": lambda v: tuple(decode(x) for x in v),
    "__set__": lambda v: {decode(x) for x in v},
    "__map__": lambda v: {_hashable(decode(k)): decode(x) for k, x in v},
}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag in _DECODERS:
                return _DECODERS[tag](inner)
        return {k: decode(v) for k, v in value.items()}
    return value


def encode_data(data: dict[Any, Any], where: str) -> dict[str, Any]:
    """Encode a user/chat/bot data dict key by key, dropping what cannot be stored."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        try:
            encoded_key = key if isinstance(key, str) else json.dumps(encode(key))
            out[encoded_key] = encode(value)
        except (NotStorable, TypeError) as exc:
            log.warning("bot persistence: %s[%r] not stored: %s", where, key, exc)
    return out


LOCK_NAMESPACE = "infranet:bot-user:"
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
        insert = sqlite_insert if is_sqlite else pg_insert
        statement = insert(BotState).values(rows)
        await session.execute(statement.on_conflict_do_update(
            index_elements=[BotState.key],
            set_={"data": statement.excluded.data, "updated_at": statement.excluded.updated_at}))


class Held:
    """One user's rows as read when the update arrived (`rows`) and as the update left
    them (`after`, set by the caller); only the difference is written."""

    def __init__(self, rows: dict[str, Any], session: AsyncSession | None = None) -> None:
        self.rows = rows
        self.after: dict[str, dict[str, Any] | None] = {}
        # PostgreSQL: the transaction holding the lock, where the state is written; the
        # update's handler saves in it too (a savepoint), so both commit as one.
        self.session = session

    def changes(self) -> dict[str, dict[str, Any] | None]:
        return {key: data for key, data in self.after.items() if self.rows.get(key) != data}


class ChatStore:
    """Per-update reads and writes of one user's bot state, one update of a user at a time.

    The lock is on the user, not the chat: user_data (where forms keep their answers)
    belongs to the user in every chat, and every conversation key holds the user.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def _local_lock(self, user_id: int) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    @staticmethod
    async def _load(session: AsyncSession, keys: list[str]) -> dict[str, Any]:
        rows = await session.execute(select(BotState.key, BotState.data).where(BotState.key.in_(keys)))
        return {key: data for key, data in rows}

    @contextlib.asynccontextmanager
    async def held(self, user_id: int, keys: list[str]) -> AsyncIterator[Held]:
        """The rows `keys` of `user_id`, read under the user's lock; on leaving the block
        without an error, `held.after`'s changes are committed before the lock is let go.
        An error (or a crash) writes nothing: the next update sees the state as it was."""
        if self.db.is_sqlite:
            async with self._local_lock(user_id):
                async with self.db.read() as session:
                    held = Held(await self._load(session, keys))
                yield held
                changes = held.changes()
                if changes:
                    async with self.db.transaction() as session:
                        await write_rows(session, True, changes)
            return
        async with self.db.sessionmaker() as session, session.begin():
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                  {"k": f"{LOCK_NAMESPACE}{user_id}"})
            held = Held(await self._load(session, keys), session)
            yield held
            changes = held.changes()
            if changes:
                await write_rows(session, False, changes)


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
