"""Building the python-telegram-bot Application for this service.

The Application carries the AppContext (`context.infra` in every callback), so
handlers reach settings, region, database and clock without globals.

Each update is handled inside `UpdateScope`: the user's bot state (user_data, chat_data,
every conversation's state) is read from the database before the handlers are chosen,
written back once they are done, and only then are the answers the handlers queued sent
(`common.Turn`). So the screen never shows a step the database does not hold, and any
instance can take the user's next update. Two updates of one user handled at once on two
instances: the write of the second finds the state moved (a version check, see
`persistence.ChatStore`) and that update runs again on the state the first left.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackContext,
    ContextTypes,
    ConversationHandler,
    ExtBot,
    JobQueue,
)
from telegram.warnings import PTBUserWarning

from infranet.bot.people import People
from infranet.bot.persistence import (
    UPDATE_INTERVAL_S,
    ChatStore,
    DatabasePersistence,
    StateMoved,
    chat_key,
    conv_key,
    receipts_key,
    user_key,
)
from infranet.bot.state_codec import decode, encode_data
from infranet.context import AppContext
from infranet.i18n import normalise_language, t

log = logging.getLogger(__name__)

# Conversations mix text and button steps; per_message=False is what we want.
warnings.filterwarnings("ignore", message=r".*per_message.*", category=PTBUserWarning)


@dataclass
class UpdateScope:
    """What one update's handling shares beyond PTB's context: the answers queued by the
    handlers (sent once the state is written), the receipts of saved forms read with the
    state, the form (name, id) handling the update, and the conversations that moved."""

    rows: dict[str, Any] = field(default_factory=dict)
    turns: list[Any] = field(default_factory=list)
    form: tuple[str, str] | None = None
    touched: set[str] = field(default_factory=set)
    replay: Any = None  # an update the form layer re-runs (a form started after "abandon")
    session: Any = None  # PostgreSQL: where handlers read, autocommit (see Held)
    # PostgreSQL: a handler's write transaction (Held.transaction); None: one of its own.
    write: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None
    committed: bool = False  # a transaction other than the state's committed meanwhile
    open: bool = True

    @property
    def receipts(self) -> dict[str, Any]:
        for key, data in self.rows.items():
            if key.startswith("done:") and isinstance(data, dict):
                return data
        return {}


SCOPE: ContextVar[UpdateScope | None] = ContextVar("infranet_update_scope", default=None)
ATTEMPTS = 3  # runs of an update whose user's state keeps moving on another instance



def _committed(connection: Any) -> None:
    """Note that an update's run committed something beside its state (it must not be run
    again). Read-only transactions do not count."""
    scope = SCOPE.get()
    if scope is not None and scope.open and not connection.get_execution_options().get(
            "postgresql_readonly"):
        scope.committed = True


def current_scope() -> UpdateScope | None:
    """The scope of the update being handled, or None (a job, a task started by a handler)."""
    scope = SCOPE.get()
    return scope if scope is not None and scope.open else None


class InfranetApplication(Application):
    """An Application that knows the service's AppContext and reads and writes each
    user's bot state around each update (see the module docstring)."""

    __slots__ = ("chat_store", "infra", "people", "start_sending")

    def __init__(self, *, infra: AppContext, start_sending: Callable[[], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.infra = infra
        # Who speaks, remembered between updates (see people.py); forgets on `infra.changes.people`.
        self.people = People(infra.db, infra.changes.people)
        # Commits on this application's database during an update's run (see UpdateScope).
        if not event.contains(infra.db.engine.sync_engine, "commit", _committed):
            event.listen(infra.db.engine.sync_engine, "commit", _committed)
        # The newsletter service's "send what is pending now", when one runs in this process
        # (app.py passes it in); without one the bot's handlers send by themselves.
        self.start_sending = start_sending
        self.chat_store: ChatStore | None = None

    def forms(self) -> list[ConversationHandler[Any]]:
        return [h for group in self.handlers.values() for h in group
                if isinstance(h, ConversationHandler) and h.persistent and h.name]

    async def process_update(self, update: object) -> None:
        await self.process_locked(update, lambda _scope: super(InfranetApplication, self)
                                  .process_update(update))

    async def process_locked(self, update: object,
                             work: Callable[[UpdateScope], Awaitable[Any]]) -> None:
        """`work` (handling the update, or a conversation's timeout) with the user's state
        read before and written after it, then the queued answers sent.

        PostgreSQL: if another instance moved the user's state while this one worked
        (`StateMoved`; nothing of this run was written), it runs again on the new state,
        its first answers dropped; at most ATTEMPTS times, and not if anything else was
        committed in the run (it must not happen twice): then the user is told plainly."""
        user = update.effective_user if isinstance(update, Update) else None
        if self.chat_store is None or user is None:
            scope = UpdateScope()
            token = SCOPE.set(scope)
            try:
                await work(scope)
            finally:
                scope.open = False
                SCOPE.reset(token)
            await self._send(scope)
            return
        assert isinstance(update, Update)
        chat = update.effective_chat
        chat_id = chat.id if chat is not None else user.id
        forms = [(form, self._conversation_key(form, update)) for form in self.forms()]
        keys = [user_key(user.id), chat_key(chat_id), receipts_key(user.id)]
        keys += [conv_key(f.name, k) for f, k in forms if k is not None]  # type: ignore[arg-type]
        for attempt in range(1, ATTEMPTS + 1):
            scope = UpdateScope()
            token = SCOPE.set(scope)
            try:
                async with self.chat_store.held(user.id, keys) as held:
                    scope.rows = held.rows
                    scope.session = held.session
                    scope.write = None if self.infra.db.is_sqlite else held.transaction
                    self._fill(held.rows, user.id, chat_id, forms)
                    await work(scope)
                    held.after = self._collect(held.rows, user.id, chat_id, forms, scope.touched)
            except StateMoved:
                log.info("update %s: user %s's state moved on another instance (run %d%s)",
                         update.update_id, user.id, attempt,
                         ", something committed: not run again" if scope.committed else "")
                if attempt < ATTEMPTS and not scope.committed:
                    continue
                await self._moved_elsewhere(update, user.language_code)
                return
            finally:
                scope.open = False
                SCOPE.reset(token)
            await self._send(scope)
            return

    @staticmethod
    async def _send(scope: UpdateScope) -> None:
        for turn in scope.turns:
            await turn.flush()

    async def _moved_elsewhere(self, update: Update, language_code: str | None) -> None:
        """The user's state kept moving elsewhere while this update was handled: say so
        plainly rather than answer from a state that is no longer there."""
        chat = update.effective_chat
        if chat is None:
            return
        lang = self._user_data.get(update.effective_user.id, {}).get("lang") if (
            update.effective_user) else None
        text = t(lang or normalise_language(language_code), "bot.state_moved")
        try:
            await self.bot.send_message(chat.id, text)
            if update.callback_query is not None:
                await update.callback_query.answer()
        except TelegramError:
            log.warning("update %s: could not tell the user their form moved on", update.update_id)

    async def shutdown(self) -> None:
        await super().shutdown()
        if self.chat_store is not None:
            await self.chat_store.dispose()

    async def process_error(self, update: object | None, error: Exception,
                            job: Any = None, coroutine: Any = None) -> bool:
        """A save that found the user's state moved on elsewhere (`StateMoved`) is no
        error to report: the update stops here and runs again (`process_locked`)."""
        if isinstance(error, StateMoved):
            return True
        return await super().process_error(update, error, job, coroutine)

    @staticmethod
    def _conversation_key(form: ConversationHandler[Any], update: Update) -> tuple[Any, ...] | None:
        try:
            return form._get_key(update)  # PTB's own key (chat, user)
        except (RuntimeError, AttributeError):
            return None

    def _fill(self, rows: dict[str, Any], user_id: int, chat_id: int,
              forms: list[tuple[ConversationHandler[Any], tuple[Any, ...] | None]]) -> None:
        """Put the stored state where PTB and the handlers look for it."""
        self._user_data[user_id] = decode(rows.get(user_key(user_id)) or {})
        self._chat_data[chat_id] = decode(rows.get(chat_key(chat_id)) or {})
        for form, key in forms:
            if key is None:
                continue
            stored = rows.get(conv_key(form.name, key))  # type: ignore[arg-type]
            conversations = form._conversations
            if isinstance(stored, dict) and stored.get("state") is not None:
                conversations[key] = stored["state"]
            else:
                conversations.pop(key, None)

    def _collect(self, rows: dict[str, Any], user_id: int, chat_id: int,
                 forms: list[tuple[ConversationHandler[Any], tuple[Any, ...] | None]],
                 touched: set[str]) -> dict[str, dict[str, Any] | None]:
        """The rows as this update left them."""
        after: dict[str, dict[str, Any] | None] = {
            user_key(user_id): encode_data(self._user_data.get(user_id, {}), f"user_data[{user_id}]") or None,
            chat_key(chat_id): encode_data(self._chat_data.get(chat_id, {}), f"chat_data[{chat_id}]") or None,
        }
        for form, key in forms:
            if key is None:
                continue
            row = conv_key(form.name, key)  # type: ignore[arg-type]
            state = form._conversations.get(key)
            before = rows.get(row)
            if state is None:
                after[row] = None
            elif form.name in touched or not isinstance(before, dict) or before.get("state") != state:
                after[row] = {"state": state, "at": time.time()}
            else:
                after[row] = before
        return after


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """`context.infra` is the AppContext; everything else is PTB's CallbackContext."""

    @property
    def infra(self) -> AppContext:
        return self.application.infra  # type: ignore[attr-defined]

    @property
    def people(self) -> People:
        """See `InfranetApplication.people`."""
        return self.application.people  # type: ignore[attr-defined]

    @property
    def start_sending(self) -> Callable[[], None] | None:
        """See `InfranetApplication.start_sending`."""
        return self.application.start_sending  # type: ignore[attr-defined]


def build_application(
    ctx: AppContext, *, webhook: bool | None = None, rate_limiter: BaseRateLimiter[Any] | None = None,
    persistence: bool = True, start_sending: Callable[[], None] | None = None,
) -> InfranetApplication:
    """The Application, not yet initialised and without handlers.

    `webhook=None` follows `[telegram] mode`. Outgoing calls go through the
    AIORateLimiter, which retries flood-control answers `max_retries` times
    (PTB's default is no retry at all).
    """
    settings = ctx.settings.telegram
    if settings.token is None:
        raise ValueError("no [telegram] token")
    if webhook is None:
        webhook = settings.mode == "webhook"
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .application_class(InfranetApplication, kwargs={"infra": ctx, "start_sending": start_sending})
        .token(settings.token.get_secret_value())
        .context_types(ContextTypes(context=BotContext))
        .rate_limiter(rate_limiter or AIORateLimiter(max_retries=settings.max_retries))
        .job_queue(JobQueue())
        .concurrent_updates(False)
    )
    if settings.base_url:
        builder = builder.base_url(settings.base_url)
    if persistence:
        builder = builder.persistence(DatabasePersistence(ctx.db, UPDATE_INTERVAL_S))
    if webhook:
        builder = builder.updater(None)
    application: InfranetApplication = builder.build()  # type: ignore[assignment]
    if persistence:
        application.chat_store = ChatStore(ctx.db)
    return application
