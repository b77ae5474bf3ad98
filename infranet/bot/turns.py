"""One update's turn: the @handler decorator, its transaction and the answers it queues."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from telegram import Update
from telegram.error import TelegramError

from infranet.bot.application import BotContext, current_scope
from infranet.bot.buttons import Buttons, parse_cb
from infranet.bot.common_base import END, MAX_MESSAGE, Access, Chats
from infranet.bot.html_text import Html, esc, tr, visible_length
from infranet.bot.persistence import record_receipt
from infranet.bot.sending import edit_html, send_html
from infranet.bot.speakers import Who, allows, identify
from infranet.context import AppContext
from infranet.errors import InfranetError, PermissionDenied
from infranet.i18n import normalise_language, t
from infranet.region import AmbiguousDistrict, UnknownDistrict
from infranet.storage.actors import Actor
from infranet.storage.database import Database
from infranet.storage.models import Member

log = logging.getLogger(__name__)


@dataclass
class Outgoing:
    chat_id: int | None  # None: edit the pressed message
    text: str
    buttons: Buttons = None


@dataclass
class Turn:
    """What a handler works with: the update, the session, who speaks, and an outbox
    flushed after commit."""

    update: Update
    context: BotContext
    session: AsyncSession
    who: Who
    access: Access = "anyone"  # the handler's rule, checked again by `writing()`
    outbox: list[Outgoing] = field(default_factory=list)
    toast_text: str | None = None
    background: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    refused: bool = False  # answered with an error: the form's question stays the one before

    @property
    def ctx(self) -> AppContext:
        return self.context.infra

    @property
    def lang(self) -> str:
        return self.who.lang

    @property
    def actor(self) -> Actor:
        return self.who.actor

    @property
    def chat_id(self) -> int:
        chat = self.update.effective_chat
        return chat.id if chat else self.who.telegram_id

    @property
    def is_private(self) -> bool:
        chat = self.update.effective_chat
        return chat is None or chat.type == "private"

    @property
    def args(self) -> list[str]:
        return list(self.context.args or [])

    @property
    def text(self) -> str:
        message = self.update.effective_message
        return (message.text or "").strip() if message and not self.update.callback_query else ""

    @property
    def data(self) -> list[str]:
        """The pressed button's callback data, split on ':' (e.g. ['ev', '123', 'ok'])."""
        query = self.update.callback_query
        return parse_cb(query.data if query else None)

    @property
    def user_data(self) -> dict[Any, Any]:
        return self.context.user_data if self.context.user_data is not None else {}

    def t(self, key: str, **params: object) -> Html:
        return tr(self.lang, key, **params)

    def reply(self, text: str, buttons: Buttons = None) -> None:
        """Answer in the current chat (queued until the transaction commits)."""
        self.outbox.append(Outgoing(self.chat_id, text, buttons))

    def say(self, key: str, buttons: Buttons = None, **params: object) -> None:
        """`reply(t(key, **params))`."""
        self.reply(self.t(key, **params), buttons)

    def edit(self, text: str, buttons: Buttons = None) -> None:
        """Replace the text of the message whose button was pressed (else: reply)."""
        if self.update.callback_query and self.update.callback_query.message:
            self.outbox.append(Outgoing(None, text, buttons))
        else:
            self.reply(text, buttons)

    def notify(self, chat_id: int, text: str, buttons: Buttons = None) -> None:
        """Send to someone else (a private chat id = their Telegram id)."""
        self.outbox.append(Outgoing(chat_id, text, buttons))

    def notify_member(self, member: Member, key: str, buttons: Buttons = None,
                      **params: object) -> None:
        """Tell another member, in their own language."""
        lang = member.language or "pl"
        self.notify(member.telegram_id, tr(lang, key, **params), buttons)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction for the path of a read-only handler (`writes=False`) that
        saves something, e.g. the confirmed /event form; `turn.session` is that
        transaction's session inside the block. It commits when the block ends: make it
        the handler's last step, so that nothing after it can fail and leave the user
        told nothing about a saved change.

        Who speaks is read again in it: a read-only handler may have had them from the
        memory of `people.py`, which hears of a block or a role change made elsewhere (the
        CLI, another instance) only within 30 seconds; a save must not wait for that."""
        async with write_transaction(self.ctx.db) as session:
            previous, self.session = self.session, session
            try:
                self.who = await identify(session, self.update, self.context.user_data)
                if not allows(self.who, self.access):
                    raise PermissionDenied("bot.need_admin" if self.access == "admin" else "bot.need_member")
                mark = len(self.outbox)
                yield session
                await self.note_saved(session, self.outbox[mark:])
            finally:
                self.session = previous

    async def note_saved(self, session: AsyncSession, told: list[Outgoing]) -> None:
        """Inside the transaction that saved a form: record the form's id with what the user
        is told, so that the same form confirmed again (a redelivered update after a crash)
        answers "already saved" instead of saving twice (`record_receipt`)."""
        scope = current_scope()
        if scope is None or scope.form is None:
            return
        text = "\n\n".join(str(item.text) for item in told) or self.t("bot.form.saved")
        await record_receipt(session, self.ctx.db.is_sqlite, self.who.telegram_id, scope.form[1],
                             text, self.update.update_id)

    def after_commit(self, work: Callable[[], Awaitable[Any]]) -> None:
        """Start `work()` as a background task once the transaction has committed
        (long work such as sending a newsletter; updates keep flowing meanwhile)."""
        self.background.append(work)

    def toast(self, text: str) -> None:
        """The small pop-up answer to a button press."""
        self.toast_text = text

    async def flush(self) -> None:
        """Send what the user waits for first: the messages in this chat (`_in_chat`),
        and beside them the answer to the button press, so that neither waits for the
        other's round trip to Telegram. Notifications to other people go out after
        that, in a task of their own, so that a long list of recipients delays neither
        this reply nor the user's next update."""
        outbox, self.outbox = self.outbox, []
        here = self.chat_id
        mine = _in_chat([item for item in outbox if item.chat_id is None or item.chat_id == here])
        others = [item for item in outbox if not (item.chat_id is None or item.chat_id == here)]
        if self.update.callback_query is None:
            await self._deliver(mine)
        else:
            await asyncio.gather(self._deliver(mine), self.answer_callback())
        application = self.context.application
        if others:
            application.create_task(self._deliver(others), update=self.update)
        background, self.background = self.background, []
        for work in background:
            application.create_task(work(), update=self.update)

    async def _deliver(self, items: list[Outgoing]) -> None:
        bot = self.context.bot
        for item in items:
            try:
                if item.chat_id is None:
                    assert self.update.callback_query is not None
                    await edit_html(self.update.callback_query.message, item.text, item.buttons)
                else:
                    await send_html(bot, item.chat_id, item.text, item.buttons)
            except TelegramError:
                log.exception("update %s: could not deliver a message to %s",
                              self.update.update_id, item.chat_id)

    async def answer_callback(self) -> None:
        query = self.update.callback_query
        if query is None:
            return
        try:
            await query.answer(self.toast_text[:200] if self.toast_text else None)
        except TelegramError as exc:  # an old query (over 15 min) cannot be answered
            log.info("update %s: callback not answered: %s", self.update.update_id, exc)


def _in_chat(items: list[Outgoing]) -> list[Outgoing]:
    """The messages for the user's own chat, in the order they go out.

    A button answered in a form gives an edit of the pressed message (its keyboard turned
    into the answer given) and the next question. The two become one edit: "✓ answer"
    above the question, with the question's buttons. That is one round trip to Telegram
    instead of two, and a run of button answers keeps one message in the chat instead of
    adding one per question; the summary at the end shows every answer. When they do not
    fit in one message, the new messages go first: the question is what the user waits for.
    """
    edits = [item for item in items if item.chat_id is None]
    sends = [item for item in items if item.chat_id is not None]
    if len(edits) == 1 and sends and edits[0].buttons is None:
        merged = Html(f"✓ {edits[0].text}\n\n{sends[0].text}")
        if visible_length(merged) <= MAX_MESSAGE:
            return [Outgoing(None, merged, sends[0].buttons), *sends[1:]]
    return [*sends, *edits]


HandlerFn = Callable[[Turn], Awaitable[Any]]


def private_link(context: BotContext, start: str) -> str:
    return f"https://t.me/{context.bot.username}?start={start}"


def handler(*, access: Access = "anyone", chat: Chats = "any", deep_link: str | None = None,
            db: bool = True, writes: bool = True,
            ) -> Callable[[HandlerFn], Callable[[Update, BotContext], Coroutine[Any, Any, Any]]]:
    """Wrap a handler: transaction, identity, access rule, private-chat rule, outbox.

    - `access="member"`: approved members only; others get one line on /join.
      `access="admin"`: network admins only. Business functions check again.
    - `chat="private"`: in a group the user is sent to a private chat (personal data
      and multi-step forms never happen in a group). `deep_link` is the /start
      payload of that link (default: the handler's name).
    - An `InfranetError` raised by the handler rolls the transaction back and is
      answered in the user's language; the conversation stays in its state.
    - The handler's return value is returned (conversation states).
    - `writes=False`: the handler only reads (listings, /check). It gets a read-only
      transaction (`read_transaction`): on SQLite it neither waits in the write queue nor
      holds the write lock; on PostgreSQL it reads in the autocommit session the user's
      state was read in (no BEGIN and COMMIT of its own). A handler that writes only on some
      paths uses `turn.writing()` there.
      Who speaks may come from the short-lived memory of `people.py` (forgotten on any
      change of a member or organisation in this process).
    - `db=False`: the handler needs no session of ours and `turn.session` is None: the
      steps of a form that keep their answers in user_data, calls that manage their own
      transactions (they would wait for ours on SQLite) or take long (a newsletter).
      Who speaks is found as for `writes=False`, without a transaction when remembered.
    - Default (`writes=True`): one write transaction, and the speaker is read in it.
    """

    def wrap(fn: HandlerFn) -> Callable[[Update, BotContext], Coroutine[Any, Any, Any]]:
        name = fn.__name__

        def admit(turn: Turn) -> bool:
            """The private-chat and access rules; a refusal is queued as the answer."""
            if chat == "private" and not turn.is_private:
                link = private_link(turn.context, deep_link or name.removeprefix("cmd_"))
                turn.reply(turn.t("bot.private_only"), [[(turn.t("bot.open_private"), link)]])
                return False
            if not allows(turn.who, access):
                blocked = turn.who.member is not None and turn.who.member.status == "blocked"
                turn.say("membership.blocked" if blocked  # told so, not sent to /join
                         else "bot.need_admin" if access == "admin" and turn.who.is_member
                         else "bot.need_member")
                return False
            return True

        async def turn_in(session: AsyncSession | None, update: Update, context: BotContext) -> Turn:
            known = None if writes and db else context.people  # writers read afresh
            who = await identify(session, update, context.user_data, memory=known)
            return Turn(update, context, session, who, access)  # type: ignore[arg-type]

        @functools.wraps(fn)
        async def run(update: Update, context: BotContext) -> Any:
            infra = context.infra
            turn: Turn | None = None
            result: Any = None
            try:
                if not db:
                    turn = await turn_in(None, update, context)
                    result = await fn(turn) if admit(turn) else END
                else:
                    opened = write_transaction(infra.db) if writes else read_transaction(infra.db)
                    async with opened as session:
                        turn = await turn_in(session, update, context)
                        result = await fn(turn) if admit(turn) else END
                        if writes and result == END and await _wrote(session):
                            await turn.note_saved(session, turn.outbox)  # a form ended by a save
            except (InfranetError, UnknownDistrict) as exc:
                lang = turn.lang if turn else normalise_language(
                    update.effective_user.language_code if update.effective_user else None)
                message = exc.localized(lang) if isinstance(exc, InfranetError) else _district_error(
                    lang, exc)
                if turn is None:
                    where = update.effective_chat
                    await send_html(context.bot, where.id if where else 0, esc(message))
                    return None
                turn.outbox = [Outgoing(turn.chat_id, esc(message))]
                turn.background = []
                turn.refused = True
                result = None
            if turn is not None:
                await queue_answer(turn)  # sent once the update's form state is in the database
            return result

        return run

    return wrap


@contextlib.asynccontextmanager
async def write_transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """A handler's write transaction. On PostgreSQL, inside an update, the update's own
    (`UpdateScope.write`): it claims the user's state at the version read and writes the
    form's new state too, so what the handler saves and the form's new state commit
    together and no crash can leave one without the other. Elsewhere (SQLite, a job) a
    transaction of its own."""
    scope = current_scope()
    opened = scope.write() if scope is not None and scope.write is not None else db.transaction()
    async with opened as session:
        sync = session.sync_session
        sync.info["wrote"] = False
        if not event.contains(sync, "after_flush", _flushed):
            event.listen(sync, "after_flush", _flushed)
        yield session


@contextlib.asynccontextmanager
async def read_transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """A read-only handler's session. On PostgreSQL, inside an update, the session the
    user's state was read in (autocommit): a read transaction of its own would cost a BEGIN
    and a COMMIT, two round trips to the server, on every /check and listing (bench/bot.py
    counts them). It is not READ ONLY, so a stray write would commit at once instead of
    failing; handlers that save use `turn.writing()`.
    Elsewhere (SQLite, where reads take no lock and no BEGIN; a job) `Database.read()`."""
    scope = current_scope()
    session = scope.session if scope is not None else None
    if session is None:
        async with db.read() as own:
            yield own
        return
    yield session


def _flushed(session: Session, _context: Any) -> None:
    session.info["wrote"] = True


async def _wrote(session: AsyncSession) -> bool:
    """Whether this transaction has written anything (then a form that ends here saved)."""
    await session.flush()
    return bool(session.sync_session.info.get("wrote"))


def _district_error(lang: str, exc: UnknownDistrict) -> str:
    if exc.outside:  # nothing like it in the region: say so rather than "did you mean —"
        return t(lang, "bot.district.outside_plain", query=exc.query)
    if isinstance(exc, AmbiguousDistrict):  # known, but two districts bear the name
        return t(lang, "bot.district.which_plain", query=exc.query,
                 options=" / ".join(d.name for d in exc.suggestions))
    hint = ", ".join(d.name for d in exc.suggestions)
    return t(lang, "bot.unknown_district", query=exc.query, hint=hint or "—")


async def queue_answer(turn: Turn) -> None:
    """Send after the state is written, as every handler's answer (`handler`)."""
    scope = current_scope()
    if scope is not None:
        scope.turns.append(turn)
    else:
        await turn.flush()



