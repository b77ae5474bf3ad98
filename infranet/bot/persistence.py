"""python-telegram-bot persistence in the `bot_state` table.

Why: a conversation in progress (a half-filled /event form) must survive a
restart of the service, on SQLite and PostgreSQL alike, without a pickle file
beside the database. One row per user, per chat, per conversation key and one
for bot_data, so that a write touches only what changed and concurrent writes
never collide on one row.

Keys: `user:<id>`, `chat:<id>`, `bot`, `conv:<name>:<json key>`.

Stored values are JSON. Handler modules keep JSON-friendly values in
user_data/chat_data; dates, datetimes, times, Decimals, tuples, sets and dicts
with non-string keys are tagged and restored. Anything else (an ORM object, say)
is dropped with a warning rather than breaking the save of everything else.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import ConversationDict, ConversationKey

from infranet.storage.database import Database
from infranet.storage.models import BotState
from infranet.storage.types import utcnow

log = logging.getLogger(__name__)

UPDATE_INTERVAL_S = 2.0


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


class DatabasePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Conversations, user_data, chat_data and bot_data in `bot_state` rows.

    PTB reports every user and chat of every update, changed or not, every
    `update_interval` seconds, each in a coroutine of its own and all at once. Unchanged
    data is not written again, and what did change is written in ONE short transaction
    per round (one upsert, one delete), so that the background write takes SQLite's
    write lock once and briefly instead of queueing one transaction per row in front of
    the handlers' own writes.
    """

    def __init__(self, db: Database, update_interval: float = UPDATE_INTERVAL_S) -> None:
        super().__init__(store_data=PersistenceInput(callback_data=False),
                         update_interval=update_interval)
        self.db = db
        self._conversations: dict[str, ConversationDict] = {}
        # What each row holds now (None: no row).
        self._stored: dict[str, dict[str, Any] | None] = {}
        # Changes waiting for the next write (None: delete the row).
        self._pending: dict[str, dict[str, Any] | None] = {}
        self._writing = asyncio.Lock()

    async def _rows(self, prefix: str) -> dict[str, Any]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(BotState.key, BotState.data).where(BotState.key.startswith(prefix)))
            found = {key: data for key, data in rows}
        self._stored.update(found)
        return found

    async def _put(self, key: str, data: dict[str, Any] | None) -> None:
        known = self._pending if key in self._pending else self._stored
        if key in known and known[key] == data:
            return
        self._pending[key] = data
        # Let the other coroutines of this round note their changes first: one write for all.
        await asyncio.sleep(0)
        await self._write_pending()

    async def _write_pending(self) -> None:
        async with self._writing:
            batch, self._pending = self._pending, {}
            if not batch:
                return
            try:
                async with self.db.transaction() as session:
                    await self._write(session, batch)
            except BaseException:
                for key, data in batch.items():  # written next round, unless changed since
                    self._pending.setdefault(key, data)
                raise
            self._stored.update(batch)

    async def _write(self, session: AsyncSession, batch: dict[str, dict[str, Any] | None]) -> None:
        gone = [key for key, data in batch.items() if data is None]
        if gone:
            await session.execute(delete(BotState).where(BotState.key.in_(gone)))
        now = utcnow()
        rows = [{"key": key, "data": data, "updated_at": now}
                for key, data in batch.items() if data is not None]
        if rows:
            insert = sqlite_insert if self.db.is_sqlite else pg_insert
            statement = insert(BotState).values(rows)
            await session.execute(statement.on_conflict_do_update(
                index_elements=[BotState.key],
                set_={"data": statement.excluded.data, "updated_at": statement.excluded.updated_at}))

    # --- user / chat / bot data ------------------------------------------------------

    async def _load_ids(self, prefix: str) -> dict[int, dict[Any, Any]]:
        out: dict[int, dict[Any, Any]] = {}
        for key, data in (await self._rows(prefix)).items():
            try:
                out[int(key.removeprefix(prefix))] = decode(data)
            except ValueError:
                log.warning("bot persistence: ignoring malformed row %s", key)
        return out

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        return await self._load_ids("user:")

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return await self._load_ids("chat:")

    async def get_bot_data(self) -> dict[Any, Any]:
        rows = await self._rows("bot")
        return decode(rows.get("bot", {}))

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        await self._put(f"user:{user_id}", encode_data(data, f"user_data[{user_id}]") or None)

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        await self._put(f"chat:{chat_id}", encode_data(data, f"chat_data[{chat_id}]") or None)

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        await self._put("bot", encode_data(data, "bot_data"))

    async def drop_user_data(self, user_id: int) -> None:
        await self._put(f"user:{user_id}", None)

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._put(f"chat:{chat_id}", None)

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        """Nothing to do: this process is the only writer of its rows."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        """Nothing to do: this process is the only writer of its rows."""

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        """Nothing to do: this process is the only writer of its rows."""

    # --- callback data (arbitrary_callback_data is not used) -------------------------------

    async def get_callback_data(self) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        """Unused: callback data are short strings (`ev:123:ok`)."""

    # --- conversations ------------------------------------------------------------------

    async def get_conversations(self, name: str) -> ConversationDict:
        prefix = f"conv:{name}:"
        states: ConversationDict = {}
        for key, data in (await self._rows(prefix)).items():
            try:
                states[tuple(json.loads(key.removeprefix(prefix)))] = data["state"]
            except (ValueError, KeyError, TypeError):
                log.warning("bot persistence: ignoring malformed row %s", key)
        self._conversations[name] = states
        return dict(states)

    async def update_conversation(self, name: str, key: ConversationKey,
                                  new_state: object | None) -> None:
        states = self._conversations.setdefault(name, {})
        if states.get(key) == new_state and (new_state is not None or key not in states):
            return
        if new_state is None:
            states.pop(key, None)
        else:
            states[key] = new_state
        row_key = f"conv:{name}:{json.dumps(list(key), separators=(',', ':'))}"
        await self._put(row_key, None if new_state is None else {"state": new_state})

    async def flush(self) -> None:
        """Write anything a failed round left waiting (called when the Application stops)."""
        await self._write_pending()
