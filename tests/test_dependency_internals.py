"""The private internals of our dependencies that the code relies on, one check each.

pyproject.toml puts an upper bound on each library below, and requirements.lock pins its exact
version; to move a bound, upgrade in a venv and run this file. A failure names the library, its
installed version, the internal and the module of ours that uses it: that module must be
adapted (or the bound kept) before the upgrade lands. These are not behaviour tests of the
modules (their own tests do that); they make an upgrade fail here, loudly, instead of somewhere
deep in a feature test or, worse, silently (an override of a renamed private method is simply
never called).
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import pytest


def require(ok: object, library: str, internal: str, used_by: str, detail: str = "") -> None:
    if not ok:
        raise AssertionError(
            f"{library} {version(library)}: the internal {internal}, used by {used_by}, has changed"
            f"{': ' + detail if detail else ''}. Adapt {used_by} or keep the upper bound on "
            f"{library} in pyproject.toml.")


def has_method(owner: type, name: str) -> bool:
    return callable(getattr(owner, name, None))


# --- aiosqlite: infranet/storage/sqlite_driver.py -------------------------------------------------

async def test_aiosqlite_runs_a_function_in_its_thread_on_the_sqlite3_connection() -> None:
    import aiosqlite

    where = "infranet/storage/sqlite_driver.py"
    conn = await aiosqlite.connect(":memory:")
    try:
        require(isinstance(getattr(conn, "_conn", None), sqlite3.Connection),
                "aiosqlite", "Connection._conn (the sqlite3 connection)", where)
        require(inspect.iscoroutinefunction(getattr(aiosqlite.Connection, "_execute", None)),
                "aiosqlite", "async Connection._execute(fn, *args)", where)

        def in_thread(connection: sqlite3.Connection, value: int) -> tuple[int, bool]:
            return connection.execute("select ?", (value,)).fetchone()[0], \
                connection.in_transaction

        result = await conn._execute(in_thread, conn._conn, 7)
        require(result == (7, False), "aiosqlite", "Connection._execute(fn, *args)", where,
                f"returned {result!r}")
        try:
            conn._infranet_in_transaction = True  # type: ignore[attr-defined]
        except AttributeError:
            require(False, "aiosqlite", "Connection without __slots__ (a note is set on it)",
                    where)
    finally:
        await conn.close()


# --- SQLAlchemy: infranet/storage/sqlite_driver.py, infranet/storage/hotpath.py --------------------

def test_sqlalchemy_aiosqlite_adapter_has_what_the_one_trip_driver_overrides() -> None:
    from sqlalchemy.dialects.sqlite import aiosqlite as adapter

    where = "infranet/storage/sqlite_driver.py"
    cursor = adapter.AsyncAdapt_aiosqlite_cursor
    for name in ("_execute_async", "_executemany_async"):
        require(inspect.iscoroutinefunction(getattr(cursor, name, None)), "SQLAlchemy",
                f"async AsyncAdapt_aiosqlite_cursor.{name}", where,
                "OneTripCursor overrides it; renamed, the override would never run")
    slots = set()
    for klass in cursor.__mro__:
        slots |= set(getattr(klass, "__slots__", ()))
    expected = {"_adapt_connection", "_connection", "_cursor", "_rows", "_soft_closed_memoized"}
    require(slots == expected, "SQLAlchemy", "the slots of AsyncAdapt_aiosqlite_cursor", where,
            f"OneTripCursor.__init__ sets {sorted(expected)}, the class now has {sorted(slots)}")
    require(hasattr(cursor, "_awaitable_cursor_close"), "SQLAlchemy",
            "AsyncAdapt_aiosqlite_cursor._awaitable_cursor_close", where)

    connection = adapter.AsyncAdapt_aiosqlite_connection
    require(getattr(connection, "_cursor_cls", None) is not None, "SQLAlchemy",
            "AsyncAdapt_aiosqlite_connection._cursor_cls", where)
    conn_slots = set()
    for klass in connection.__mro__:
        conn_slots |= set(getattr(klass, "__slots__", ()))
    require({"_execute_mutex", "_connection"} <= conn_slots, "SQLAlchemy",
            "AsyncAdapt_aiosqlite_connection._execute_mutex / ._connection (the aiosqlite one)",
            where, f"the class now has {sorted(conn_slots)}")
    require(has_method(connection, "commit") and has_method(connection, "rollback"),
            "SQLAlchemy", "AsyncAdapt_aiosqlite_connection.commit/rollback", where)
    require(has_method(adapter.AsyncAdapt_aiosqlite_dbapi, "connect"), "SQLAlchemy",
            "AsyncAdapt_aiosqlite_dbapi.connect", where)
    from sqlalchemy import util

    require(getattr(util, "EMPTY_DICT", None) == {}, "SQLAlchemy", "sqlalchemy.util.EMPTY_DICT",
            where)


def test_sqlalchemy_compiled_statements_expose_what_the_hot_path_reads() -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select
    from sqlalchemy.dialects import sqlite

    where = "infranet/storage/hotpath.py"
    table = Table("t", MetaData(), Column("id", Integer), Column("name", String))
    statement = select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True)),
                                         table.c.name == bindparam("name"),
                                         table.c.id > 3)
    dialect = sqlite.dialect()
    compiled = statement.compile(dialect=dialect)
    binds = getattr(compiled, "binds", None)
    require(isinstance(binds, dict) and {"ids", "name"} <= set(binds), "SQLAlchemy",
            "SQLCompiler.binds", where)
    require(binds["ids"].expanding and binds["name"].required, "SQLAlchemy",
            "BindParameter.expanding / .required", where)
    constants = {n: b.value for n, b in binds.items() if not b.required and not b.expanding}
    require(set(constants.values()) == {3} and "id_1" in constants, "SQLAlchemy",
            "BindParameter.value of a literal", where, repr(constants))
    state = compiled.construct_expanded_state({"ids": [0, 0], "name": None, **constants})
    require(tuple(getattr(state, "positiontup", None) or ()) == ("ids_1", "ids_2", "name", "id_1"),
            "SQLAlchemy", "ExpandedState.positiontup (names ids_1, ids_2, ...)", where,
            repr(getattr(state, "positiontup", None)))
    require(isinstance(state.statement, str) and state.statement.count("?") == 4, "SQLAlchemy",
            "ExpandedState.statement", where)
    processor = binds["name"].type.dialect_impl(dialect).bind_processor(dialect)
    require(processor is None or callable(processor), "SQLAlchemy",
            "TypeEngine.dialect_impl(...).bind_processor(...)", where)


# --- aiosmtplib: infranet/newsletter/outbound.py -------------------------------------------------

def test_aiosmtplib_protocol_writes_and_reads_replies_directly() -> None:
    import aiosmtplib
    from aiosmtplib.protocol import SMTPProtocol

    where = "infranet/newsletter/outbound.py (send_message_text)"
    require("protocol" in inspect.signature(aiosmtplib.SMTP.__init__).parameters
            or "protocol" in aiosmtplib.SMTP().__dict__, "aiosmtplib", "SMTP.protocol", where)
    require(has_method(SMTPProtocol, "write"), "aiosmtplib", "SMTPProtocol.write(data)", where)
    read = getattr(SMTPProtocol, "read_response", None)
    require(inspect.iscoroutinefunction(read)
            and "timeout" in inspect.signature(read).parameters,
            "aiosmtplib", "async SMTPProtocol.read_response(timeout=...)", where)
    require(isinstance(aiosmtplib.SMTP(timeout=7).timeout, float | int), "aiosmtplib",
            "SMTP.timeout", where)


# --- python-telegram-bot: infranet/bot/persistence.py, infranet/bot/common.py ----------------------

def test_telegram_private_conversation_types_exist() -> None:
    where = "infranet/bot/persistence.py"
    try:
        from telegram.ext._utils import types
    except ImportError as exc:
        require(False, "python-telegram-bot", "telegram.ext._utils.types", where, str(exc))
    for name in ("ConversationDict", "ConversationKey"):
        require(hasattr(types, name), "python-telegram-bot", f"telegram.ext._utils.types.{name}",
                where)


def test_telegram_conversation_handler_check_result_and_conversations() -> None:
    from telegram import Chat, Message, Update, User
    from telegram.ext import ConversationHandler, MessageHandler, filters

    where = "infranet/bot/common.py (Form)"
    entry = MessageHandler(filters.TEXT, lambda *_: None)  # type: ignore[arg-type,return-value]
    conversation = ConversationHandler(entry_points=[entry], states={}, fallbacks=[])
    message = Message(message_id=1, date=datetime.now(UTC), chat=Chat(id=5, type="private"),
                      from_user=User(id=5, first_name="A", is_bot=False), text="hello")
    result: Any = conversation.check_update(Update(update_id=1, message=message))
    require(isinstance(result, tuple) and len(result) == 4, "python-telegram-bot",
            "ConversationHandler.check_update's (state, key, handler, check) tuple", where,
            repr(result))
    require(result[2] is entry and result[1] == (5, 5), "python-telegram-bot",
            "ConversationHandler.check_update: the matched handler third, the key second",
            where, repr(result))
    require(isinstance(getattr(conversation, "_conversations", None), dict),
            "python-telegram-bot", "ConversationHandler._conversations", where)
    params = list(inspect.signature(ConversationHandler.handle_update).parameters)
    require(params[1:5] == ["update", "application", "check_result", "context"],
            "python-telegram-bot", "ConversationHandler.handle_update's parameters", where,
            repr(params))


# --- uvicorn: infranet/http_protocol.py ----------------------------------------------------------

def test_uvicorn_httptools_protocol_has_what_the_bounded_protocol_extends() -> None:
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    where = "infranet/http_protocol.py"
    params = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
    require(params[1:5] == ["config", "server_state", "app_state", "_loop"], "uvicorn",
            "HttpToolsProtocol.__init__(config, server_state, app_state, _loop)", where,
            repr(params))
    for name in ("connection_made", "connection_lost", "on_message_begin", "on_headers_complete",
                 "data_received"):
        require(has_method(HttpToolsProtocol, name), "uvicorn", f"HttpToolsProtocol.{name}",
                where)
    source = inspect.getsource(uvicorn.server.Server.startup)
    require("http_protocol_class(" in source and "config=config" in source, "uvicorn",
            "Server.startup creating config.http_protocol_class(config=..., ...)", where)

    config = uvicorn.Config(app=lambda *_: None, http=HttpToolsProtocol)  # type: ignore[arg-type]
    config.load()
    require(config.http_protocol_class is HttpToolsProtocol, "uvicorn",
            "Config(http=<protocol class>)", where)
    protocol = HttpToolsProtocol(config=config, server_state=uvicorn.server.ServerState(),
                                 app_state={}, _loop=asyncio.new_event_loop())
    try:
        for name in ("transport", "cycle", "loop", "connections"):
            require(hasattr(protocol, name), "uvicorn", f"HttpToolsProtocol.{name}", where)
    finally:
        protocol.loop.close()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))
