"""Shared helpers of the bot's handler modules (conventions in `handlers/__init__.py`).

The centre is the `@handler(...)` decorator: it opens one database transaction
for the update (a read-only one for handlers that only read, `writes=False`; none
for those that need no session, `db=False`), finds who is speaking (`Who`:
member, Actor, language; read in one query, or remembered for a while by
read-only handlers, see `people.py`), applies the access rule and the
private-chat rule, runs the handler with a `Turn`, and only after the
transaction has committed sends what the handler queued (replies, the edit of
the pressed message, then notifications to other people). A failed operation
therefore never announces success, and a refusal (`InfranetError`) is answered
in the user's language and leaves the database untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import html
import logging
import re
import secrets
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, joinedload
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import BaseHandler, CommandHandler, ConversationHandler, TypeHandler, filters

from infranet.bot.application import BotContext, current_scope
from infranet.bot.people import people
from infranet.bot.persistence import conv_key, record_receipt
from infranet.context import AppContext
from infranet.errors import InfranetError, PermissionDenied, ValidationFailed
from infranet.i18n import normalise_language, t
from infranet.region import AmbiguousDistrict, UnknownDistrict
from infranet.storage.actors import Actor
from infranet.storage.database import Database
from infranet.storage.models import Member, Organisation
from infranet.web.params import parse_id

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
MAX_CALLBACK = 64
END = ConversationHandler.END
# What a form step returns: the name of the next step, or END (python-telegram-bot's -1).
State = str | int

Access = Literal["anyone", "member", "admin"]
Chats = Literal["any", "private"]


# --- HTML -------------------------------------------------------------------------------


class Html(str):
    """Text that is already safe Telegram HTML: `tr()` does not escape it again."""

    __slots__ = ()


def esc(value: object) -> Html:
    """Escape user text (or anything) for parse_mode=HTML."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=False))


def tr(lang: str | None, key: str, **params: object) -> Html:
    """A registered message in `lang`, every parameter escaped unless it is `Html`."""
    return Html(t(lang, key, **{k: esc(v) for k, v in params.items()}))


_TAGS = re.compile(r"<[^>]+>")


def visible_length(text: str) -> int:
    """Length after Telegram's entity parsing (tags removed, entities decoded)."""
    return len(html.unescape(_TAGS.sub("", text)))


def split_html(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split HTML into messages of at most `limit` visible characters, on paragraph
    boundaries ("\\n\\n"), then lines; a single over-long line loses its markup and is
    cut plainly. Tags never span paragraphs in our messages, so no tag is cut."""
    if visible_length(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""

    def push(piece: str, sep: str) -> None:
        nonlocal current
        candidate = f"{current}{sep}{piece}" if current else piece
        if visible_length(candidate) <= limit:
            current = candidate
            return
        if current:
            chunks.append(current)
        current = ""
        if visible_length(piece) <= limit:
            current = piece
        elif "\n" in piece and sep == "\n\n":
            for line in piece.split("\n"):
                push(line, "\n")
        else:
            plain = html.unescape(_TAGS.sub("", piece))
            for start in range(0, len(plain), limit):
                push(html.escape(plain[start:start + limit], quote=False), sep)

    for paragraph in text.split("\n\n"):
        push(paragraph, "\n\n")
    if current:
        chunks.append(current)
    return [c for c in chunks if c.strip()]


# --- callback data and keyboards -----------------------------------------------------------


def cb(*parts: object) -> str:
    """Callback data such as `ev:123:ok` (at most 64 bytes; parts must not contain ':')."""
    data = ":".join(str(p) for p in parts)
    if len(data.encode()) > MAX_CALLBACK:
        raise ValueError(f"callback data {data!r} is over {MAX_CALLBACK} bytes")
    return data


def parse_cb(data: str | None) -> list[str]:
    return (data or "").split(":")


def int_part(parts: Sequence[str], index: int) -> int | None:
    """The integer at `parts[index]` (0 to `MAX_ID`, ASCII digits only, as the web's
    parameters), or None for a missing or forged value: a huge number would overflow the
    database driver, and "²" passes `str.isdigit()` but not `int()`."""
    if not 0 <= index < len(parts):
        return None
    try:
        return parse_id(parts[index], "callback", minimum=0)
    except ValidationFailed:
        return None


Buttons = Sequence[Sequence[tuple[str, str]]] | InlineKeyboardMarkup | None


def keyboard(buttons: Buttons) -> InlineKeyboardMarkup | None:
    """Rows of (label, callback data); a value starting with http(s):// becomes a URL button."""
    if buttons is None or isinstance(buttons, InlineKeyboardMarkup):
        return buttons
    rows = [[InlineKeyboardButton(label, url=value) if value.startswith(("http://", "https://"))
             else InlineKeyboardButton(label, callback_data=value) for label, value in row]
            for row in buttons if row]
    return InlineKeyboardMarkup(rows) if rows else None


def rows_of(items: Iterable[tuple[str, str]], per_row: int = 2) -> list[list[tuple[str, str]]]:
    items = list(items)
    return [items[i:i + per_row] for i in range(0, len(items), per_row)]


# --- sending ---------------------------------------------------------------------------------


async def send_html(bot: Bot, chat_id: int, text: str, buttons: Buttons = None) -> Message | None:
    """Send HTML text, split into several messages when needed; the keyboard goes
    with the last one. A user who blocked the bot is logged, not an error."""
    parts = split_html(text)
    message = None
    try:
        for index, part in enumerate(parts):
            message = await bot.send_message(
                chat_id, part, parse_mode=ParseMode.HTML, disable_web_page_preview=True,
                reply_markup=keyboard(buttons) if index == len(parts) - 1 else None)
    except Forbidden:
        log.info("chat %s cannot be reached (the user has not started the bot or blocked it)",
                 chat_id)
        return None
    return message


async def edit_html(message: Message | Any, text: str, buttons: Buttons = None) -> None:
    """Edit a message of the bot; "not modified" is not an error, and a message that
    can no longer be edited (too old, deleted) gets the text as a new message instead."""
    parts = split_html(text)
    try:
        await message.edit_text(parts[0], parse_mode=ParseMode.HTML,
                                disable_web_page_preview=True,
                                reply_markup=keyboard(buttons) if len(parts) == 1 else None)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            log.info("message %s not edited (%s): sent anew", message.message_id, exc)
            await send_html(message.get_bot(), message.chat.id, text, buttons)
            return
    for index, part in enumerate(parts[1:], start=2):
        await message.get_bot().send_message(
            message.chat.id, part, parse_mode=ParseMode.HTML, disable_web_page_preview=True,
            reply_markup=keyboard(buttons) if index == len(parts) else None)


# --- who is speaking ---------------------------------------------------------------------------


@dataclass
class Who:
    """The Telegram user of an update, as the network knows them."""

    telegram_id: int
    member: Member | None
    lang: str
    display_name: str = ""
    username: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor.of(self.member) if self.member else Actor("member", None)

    @property
    def is_member(self) -> bool:
        return self.member is not None and self.member.is_approved

    @property
    def is_admin(self) -> bool:
        return self.member is not None and self.member.is_admin

    @property
    def role(self) -> Access:
        return "admin" if self.is_admin else "member" if self.is_member else "anyone"


# The member with the organisation in one statement (the default, selectin, loading takes
# three: member, organisation, its districts). Handlers never read the districts of the
# speaker's organisation; a query that loads that organisation again (a directory search)
# fills them in as usual, and a direct read raises instead of querying behind our back.
_MEMBER = select(Member).options(joinedload(Member.organisation).raiseload(Organisation.districts))


async def load_member(session: AsyncSession, telegram_id: int) -> Member | None:
    """The member speaking, read from the database in one query."""
    result = await session.scalars(_MEMBER.where(Member.telegram_id == telegram_id))
    return result.first()


async def identify(session: AsyncSession | None, update: Update,
                   user_data: dict[Any, Any] | None = None, *, db: Database | None = None) -> Who:
    """Member (or None) and language: the member's choice, else /lang of a non-member
    (kept in user_data), else Telegram's language_code.

    With `db` (read-only handlers) the member may come from the short-lived memory of
    `people.py`; otherwise (and on a miss) it is read in `session`, or in a read
    transaction of its own when `session` is None."""
    user = update.effective_user
    if user is None:
        return Who(0, None, normalise_language(None))
    member = await _member(session, user.id, db)
    chosen = member.language if member and member.language else (user_data or {}).get("lang")
    lang = chosen or normalise_language(user.language_code)
    return Who(user.id, member, lang, user.full_name, user.username)


async def _member(session: AsyncSession | None, telegram_id: int, db: Database | None) -> Member | None:
    if db is None:
        assert session is not None
        return await load_member(session, telegram_id)
    memory = people(db)
    found, member = memory.get(telegram_id)
    if found:
        return member
    token = memory.token()  # before reading: a change committed meanwhile voids what we read
    if session is None:
        async with db.read() as own:
            member = _detached(own, await load_member(own, telegram_id))
    else:
        member = _detached(session, await load_member(session, telegram_id))
    memory.keep(telegram_id, member, token)
    return member


def _detached(session: AsyncSession, member: Member | None) -> Member | None:
    """Take a remembered member (and organisation) out of the session it was read in: a
    rollback there (a refused request) would expire it, and the next update reading it
    from memory would fail."""
    if member is not None:
        if member.organisation is not None:
            session.expunge(member.organisation)
        session.expunge(member)
    return member


def allows(who: Who, access: Access) -> bool:
    return (access == "anyone" or (access == "member" and who.is_member)
            or (access == "admin" and who.is_admin))


# --- one update's turn -------------------------------------------------------------------------


@dataclass
class _Outgoing:
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
    outbox: list[_Outgoing] = field(default_factory=list)
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
        self.outbox.append(_Outgoing(self.chat_id, text, buttons))

    def say(self, key: str, buttons: Buttons = None, **params: object) -> None:
        """`reply(t(key, **params))`."""
        self.reply(self.t(key, **params), buttons)

    def edit(self, text: str, buttons: Buttons = None) -> None:
        """Replace the text of the message whose button was pressed (else: reply)."""
        if self.update.callback_query and self.update.callback_query.message:
            self.outbox.append(_Outgoing(None, text, buttons))
        else:
            self.reply(text, buttons)

    def notify(self, chat_id: int, text: str, buttons: Buttons = None) -> None:
        """Send to someone else (a private chat id = their Telegram id)."""
        self.outbox.append(_Outgoing(chat_id, text, buttons))

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

    async def note_saved(self, session: AsyncSession, told: list[_Outgoing]) -> None:
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

    async def _deliver(self, items: list[_Outgoing]) -> None:
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


def _in_chat(items: list[_Outgoing]) -> list[_Outgoing]:
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
            return [_Outgoing(None, merged, sends[0].buttons), *sends[1:]]
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
            known = None if writes and db else context.infra.db  # writers read afresh
            who = await identify(session, update, context.user_data, db=known)
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
                turn.outbox = [_Outgoing(turn.chat_id, esc(message))]
                turn.background = []
                turn.refused = True
                result = None
            if turn is not None:
                await _queue(turn)  # sent once the update's form state is in the database
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
        session.sync_session.info["wrote"] = False
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


@event.listens_for(Session, "after_flush")
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


# --- conversations ------------------------------------------------------------------------------


def form(turn: Turn, name: str) -> dict[str, Any]:
    """The conversation's form in user_data (created on first use)."""
    data = turn.user_data
    return data.setdefault(name, {})



NAV = "_nav"        # user_data: the open form's id, history of steps and current question
SWITCH = "_switch"  # user_data: a second form asked for while one is open
NAV_PREFIX = "fm"


def _rows(buttons: Buttons) -> list[list[list[str]]]:
    """Buttons as JSON-friendly rows of [label, data or URL] (kept in a form's history)."""
    if buttons is None:
        return []
    if isinstance(buttons, InlineKeyboardMarkup):
        return [[[b.text, str(b.callback_data or b.url or "")] for b in row]
                for row in buttons.inline_keyboard]
    return [[[label, value] for label, value in row] for row in buttons if row]


def _with_nav(lang: str, nav: dict[str, Any], buttons: list[list[list[str]]]) -> Buttons:
    """The step's buttons with « Wstecz (not on the first question) next to Anuluj: the
    step's own Anuluj where it has one, else the form layer's."""
    rows: list[list[tuple[str, str]]] = [[(label, value) for label, value in r] for r in buttons]
    depth = len(nav.get("steps", []))
    back = [(t(lang, "bot.prev"), cb(NAV_PREFIX, "b", nav["id"], depth))] if depth else []
    cancel = t(lang, "bot.cancel")
    for row in rows:
        if any(label == cancel for label, _value in row):
            at = next(i for i, (label, _value) in enumerate(row) if label == cancel)
            row[at:at] = back
            return rows
    rows.append([*back, (cancel, cb(NAV_PREFIX, "x", nav["id"], depth))])
    return rows


def _undo(before: Any, after: Any) -> dict[str, Any]:
    """What « Wstecz needs to put a step's answers back: only the answers the step changed
    (a whole form per step would make every later write of the state grow)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return {"whole": before}
    return {"set": {k: v for k, v in before.items() if after.get(k, v) != v or k not in after},
            "unset": [k for k in after if k not in before]}


def _apply_undo(user_data: dict[Any, Any], name: str, undo: dict[str, Any]) -> None:
    if "whole" in undo or "set" not in undo:
        whole = undo.get("whole")
        if whole is None:
            user_data.pop(name, None)
        else:
            user_data[name] = whole
        return
    answers = user_data.setdefault(name, {})
    for key in undo.get("unset", []):
        answers.pop(key, None)
    answers.update(undo["set"])


def _on_screen(turn: Turn, item: _Outgoing) -> bool:
    """Whether the edit `item` would leave the pressed message as it is (Telegram refuses it)."""
    message = turn.update.callback_query.message if turn.update.callback_query else None
    if message is None:
        return False
    markup = getattr(message, "reply_markup", None)
    old = [[(b.text, str(b.callback_data or b.url or "")) for b in row]
           for row in (markup.inline_keyboard if markup else [])]
    new = [[(label, value) for label, value in row] for row in _rows(item.buttons)]
    visible = html.unescape(_TAGS.sub("", str(item.text)))
    return getattr(message, "text", None) == visible and old == new


def _receipt_text(receipt: dict[str, Any]) -> Html:
    return Html(str(receipt.get("text") or ""))


class Form(ConversationHandler[Any]):
    """A persistent ConversationHandler that every step can leave: « Wstecz and Anuluj.

    Around each step it keeps, in user_data[NAV], the open form's id (its idempotency key:
    a save records it, see `record_receipt`), the questions asked so far with the answers
    as they were before each (so « Wstecz restores both), and adds the two buttons to the
    question the step asks. A form whose save is already recorded (its state write was
    lost in a crash) answers "already saved" to any step instead of saving again.
    Starting a form while another is open asks first whether to abandon the open one.
    """

    def __init__(self, ctx: AppContext, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.name:
            raise ValueError("a Form needs a name: its state and receipts are stored under it")
        self.form_name: str = self.name

    async def handle_update(self, update: Any, application: Any, check_result: Any,
                            context: Any) -> object | None:
        state, key, matched, _check = check_result
        scope = current_scope()
        user_data = context.user_data if context.user_data is not None else {}
        nav = user_data.get(NAV) if isinstance(user_data.get(NAV), dict) else None
        mine = nav if nav is not None and nav.get("form") == self.form_name else None
        entry = matched in self.entry_points
        receipts = scope.receipts if scope is not None else {}
        if mine is not None and mine.get("id") in receipts and not entry:
            await self._already_saved(update, context, receipts[mine["id"]], key, user_data)
            return None
        if entry and (scope is None or scope.replay is not update):
            other = open_form(application, update, but=None)
            if other is not None:
                await _ask_switch(update, context, other, self, user_data)
                return None
        before = copy.deepcopy(user_data.get(self.form_name))
        form_id = mine["id"] if mine is not None and not entry else secrets.token_hex(4)
        turns_before = len(scope.turns) if scope is not None else 0
        if scope is not None:
            scope.form = (self.form_name, form_id)
            scope.touched.add(self.form_name)
        result = await super().handle_update(update, application, check_result, context)
        after = self._conversations.get(key)
        if after is None:
            if mine is not None or entry:
                user_data.pop(NAV, None)
            return result
        if entry or mine is None:
            mine = {"form": self.form_name, "id": form_id, "steps": [], "prompt": None}
        elif after != state:
            mine["steps"].append({"state": state, "undo": _undo(before, user_data.get(self.form_name)),
                                  "prompt": mine.get("prompt")})
        user_data[NAV] = mine
        if scope is not None:
            self._decorate(scope.turns[turns_before:], mine)
        return result

    async def _trigger_timeout(self, context: Any) -> None:
        """A timeout scheduled here, run only if the form has not moved since on any
        instance (the time it last moved is stored with its state), and with the user's
        state read and written as for an update."""
        job = context.job
        data = job.data
        application = data.application
        if not hasattr(application, "process_locked"):
            await super()._trigger_timeout(context)
            return
        key = data.conversation_key
        limit = float(self.conversation_timeout or 0)  # type: ignore[arg-type]

        async def work(scope: Any) -> None:
            row = scope.rows.get(conv_key(self.form_name or "", key))
            moved = float(row.get("at") or 0) if isinstance(row, dict) else None
            if moved is None or time.time() - moved < limit - min(1.0, limit / 4):
                async with self._timeout_jobs_lock:  # ended or moved on (maybe elsewhere)
                    if self.timeout_jobs.get(key) is job:
                        del self.timeout_jobs[key]
                return
            scope_touch(self.form_name)
            await super(Form, self)._trigger_timeout(context)

        await application.process_locked(data.update, work)

    @staticmethod
    def _decorate(turns: list[Any], nav: dict[str, Any]) -> None:
        """Note the question this step asked and give it « Wstecz / Anuluj."""
        for turn in reversed(turns):
            own = [item for item in turn.outbox if item.chat_id is None or item.chat_id == turn.chat_id]
            if not own:
                continue
            item = own[-1]
            rows = _rows(item.buttons)
            if not turn.refused:
                nav["prompt"] = [str(item.text), rows]
            item.buttons = _with_nav(turn.lang, nav, rows)
            if item.chat_id is None and _on_screen(turn, item):  # a second press: no empty edit
                turn.outbox.remove(item)
                turn.toast_text = turn.toast_text or turn.t("bot.button_expired")
            return

    async def _already_saved(self, update: Update, context: BotContext, receipt: dict[str, Any],
                             key: Any, user_data: dict[Any, Any]) -> None:
        """The form was saved, but its end was not written (a crash in between): end it now
        and say what was saved; save nothing again."""
        user_data.pop(self.form_name, None)
        user_data.pop(NAV, None)
        self._update_state(END, key)
        who = await identify(None, update, user_data, db=context.infra.db)
        query = update.callback_query
        message = update.effective_message
        parts = parse_cb(query.data) if query is not None else []
        cancel = (parts[-1:] == ["x"] or parts[:2] == [NAV_PREFIX, "x"]) or (
            query is None and message is not None and (message.text or "").startswith("/cancel"))
        text = tr(who.lang, "bot.form.saved_not_cancelled" if cancel else "bot.form.already_saved",
                  what=_receipt_text(receipt))
        await _answer_plainly(update, context, text)


async def _form_turn(update: Update, context: BotContext) -> Turn:
    """A Turn for the form layer's own answers (no session: it only moves the form)."""
    who = await identify(None, update, context.user_data, db=context.infra.db)
    return Turn(update, context, None, who)  # type: ignore[arg-type]


async def _queue(turn: Turn) -> None:
    """Send after the state is written, as every handler's answer (`handler`)."""
    scope = current_scope()
    if scope is not None:
        scope.turns.append(turn)
    else:
        await turn.flush()


async def _answer_plainly(update: Update, context: BotContext, text: str, buttons: Buttons = None) -> None:
    """Edit the pressed message (or reply), once the state is written."""
    turn = await _form_turn(update, context)
    turn.edit(text, buttons)
    await _queue(turn)


def open_form(application: Any, update: Update, but: Form | None) -> tuple[Form, Any] | None:
    """The form open for this update's user and chat (and its key), if any."""
    for handler_ in application.handlers.get(0, []):
        if isinstance(handler_, Form) and handler_ is not but:
            try:
                key = handler_._get_key(update)
            except RuntimeError:
                continue
            if handler_._conversations.get(key) is not None:
                return handler_, key
    return None


def _form_label(lang: str, name: str) -> str:
    key = f"bot.form.name.{name}"
    label = t(lang, key)
    return f"/{name}" if label == key else label


async def _ask_switch(update: Update, context: BotContext, other: tuple[Form, Any], new: Form,
                      user_data: dict[Any, Any]) -> None:
    """A second form while one is open: ask whether to go on with the first or abandon it."""
    first, _key = other
    nonce = secrets.token_hex(4)
    user_data[SWITCH] = {"id": nonce, "to": new.name, "update": update.to_dict()}
    who = await identify(None, update, user_data, db=context.infra.db)
    lang = who.lang
    old_label, new_label = _form_label(lang, first.name or ""), _form_label(lang, new.name or "")
    text = tr(lang, "bot.form.switch_ask", old=old_label, new=new_label)
    buttons = [[(t(lang, "bot.form.switch_keep", old=old_label), cb(NAV_PREFIX, "k", nonce))],
               [(t(lang, "bot.form.switch_new", old=old_label, new=new_label),
                 cb(NAV_PREFIX, "n", nonce))]]
    turn = await _form_turn(update, context)
    turn.reply(text, buttons)
    await _queue(turn)


async def on_form_nav(update: Update, context: BotContext) -> None:
    """The form layer's buttons: « Wstecz and Anuluj of a step (`fm:b|x:<form id>:<depth>`),
    and the answer to "abandon the open form?" (`fm:k|n:<nonce>`). Each acts only on the
    form and step it was shown with; an outdated one says so and changes nothing."""
    query = update.callback_query
    assert query is not None
    parts = parse_cb(query.data)
    action = parts[1] if len(parts) > 1 else ""
    user_data = context.user_data if context.user_data is not None else {}
    who = await identify(None, update, user_data, db=context.infra.db)
    lang = who.lang
    application = context.application
    opened = open_form(application, update, but=None)
    nav = user_data.get(NAV) if isinstance(user_data.get(NAV), dict) else None

    async def outdated() -> None:
        turn = await _form_turn(update, context)
        turn.toast(tr(lang, "bot.button_expired"))
        await _queue(turn)

    if action in ("k", "n"):
        switch = user_data.get(SWITCH) if isinstance(user_data.get(SWITCH), dict) else None
        if switch is None or len(parts) < 3 or switch.get("id") != parts[2]:
            await outdated()
            return
        user_data.pop(SWITCH, None)
        if action == "k" or opened is None:
            if opened is None:  # the first form ended meanwhile: nothing to keep
                await outdated()
                return
            prompt = (nav or {}).get("prompt") or [tr(lang, "bot.form.continue"), []]
            await _answer_plainly(update, context, Html(prompt[0]),
                                  _with_nav(lang, nav or {"steps": [], "id": "-"}, prompt[1]))
            return
        first, key = opened
        first._update_state(END, key)
        user_data.pop(first.name, None)
        user_data.pop(NAV, None)
        await _answer_plainly(update, context, tr(lang, "bot.form.abandoned",
                                                  old=_form_label(lang, first.name or "")))
        replay = Update.de_json(switch["update"], context.bot)
        scope = current_scope()
        if scope is not None:
            scope.replay = replay  # the form it starts does not ask again
        target = next((h for h in application.handlers.get(0, [])
                       if isinstance(h, Form) and h.name == switch.get("to")), None)
        check = target.check_update(replay) if target is not None else None
        if target is not None and check:
            await target.handle_update(replay, application, check, context)
        return
    form_id = parts[2] if len(parts) > 2 else ""
    depth = int_part(parts, 3)
    if opened is None or nav is None or nav.get("id") != form_id or nav.get("form") != opened[0].name:
        await outdated()
        return
    current, key = opened
    steps = nav.setdefault("steps", [])
    if action == "x":
        current._update_state(END, key)
        user_data.pop(current.name, None)
        user_data.pop(NAV, None)
        await _answer_plainly(update, context, tr(lang, "bot.cancelled"))
        return
    if action != "b" or depth != len(steps) or not steps:
        await outdated()
        return
    step = steps.pop()
    _apply_undo(user_data, current.name or "", step.get("undo") or {})
    current._update_state(step["state"], key)
    nav["prompt"] = step.get("prompt")
    prompt = nav["prompt"] or [tr(lang, "bot.form.continue"), []]
    scope_touch(current.name)
    await _answer_plainly(update, context, Html(prompt[0]), _with_nav(lang, nav, prompt[1]))


def scope_touch(name: str | None) -> None:
    """Mark a conversation as moved in this update (its "last moved" time is written)."""
    scope = current_scope()
    if scope is not None and name:
        scope.touched.add(name)


def _end_saved_form(context: BotContext, update: Update, receipt: dict[str, Any]) -> None:
    """End the open form that `receipt` shows saved (its end was lost in a crash)."""
    user_data = context.user_data if context.user_data is not None else {}
    nav = user_data.get(NAV)
    opened = open_form(context.application, update, but=None)
    if opened is None or not isinstance(nav, dict) or nav.get("form") != opened[0].name:
        return
    if current_scope() is not None and nav.get("id") in current_scope().receipts:  # type: ignore[union-attr]
        form_, key = opened
        form_._update_state(END, key)
        user_data.pop(form_.name, None)
        user_data.pop(NAV, None)


def redelivery_guard() -> TypeHandler[Update, BotContext, Any]:
    """Telegram redelivers an update whose handling it did not see finish (a crash right
    after a save): if that update saved a form, say it is already saved, do nothing else."""
    from telegram.ext import ApplicationHandlerStop

    async def check(update: Update, context: BotContext) -> None:
        scope = current_scope()
        if scope is None:
            return
        for receipt in scope.receipts.values():
            if isinstance(receipt, dict) and receipt.get("update") == update.update_id:
                _end_saved_form(context, update, receipt)
                who = await identify(None, update, context.user_data, db=context.infra.db)
                await _answer_plainly(update, context, tr(who.lang, "bot.form.already_saved",
                                                          what=_receipt_text(receipt)))
                raise ApplicationHandlerStop
        return

    return TypeHandler(Update, check)


def conversation(
    ctx: AppContext, name: str, entry_points: list[BaseHandler[Any, Any, Any]],
    states: dict[object, list[BaseHandler[Any, Any, Any]]],
    fallbacks: Sequence[BaseHandler[Any, Any, Any]] = (),
) -> ConversationHandler[Any]:
    """A persistent conversation with `/cancel` as fallback and a timeout that says so.

    The form lives in `user_data[name]`; cancel and timeout clear it.
    """

    @handler(db=False)
    async def cancel(turn: Turn) -> int:
        turn.user_data.pop(name, None)
        turn.say("bot.cancelled")
        return END

    async def timed_out(update: Update, context: BotContext) -> None:
        if context.user_data is not None:
            context.user_data.pop(name, None)
            nav = context.user_data.get(NAV)
            if isinstance(nav, dict) and nav.get("form") == name:
                context.user_data.pop(NAV, None)
        if update.effective_chat is None:
            return
        turn = await _form_turn(update, context)
        turn.reply(turn.t("bot.timed_out"))
        await _queue(turn)

    all_states = dict(states)
    all_states[ConversationHandler.TIMEOUT] = [TypeHandler(Update, timed_out)]
    # The private-chat link a group gets (t.me/<bot>?start=<command>) starts the form.
    entries = list(entry_points)
    for entry in entry_points:
        if isinstance(entry, CommandHandler):
            for command in sorted(entry.commands):
                entries.append(CommandHandler(
                    "start", entry.callback,
                    filters=filters.ChatType.PRIVATE & filters.Regex(rf"^/start(@\w+)? {command}$")))
    with warnings.catch_warnings():
        # Text and button steps mixed: per_message=False is intended.
        warnings.filterwarnings("ignore", message=r".*per_message.*")
        return Form(
            ctx, entry_points=entries, states=all_states,
            fallbacks=[CommandHandler("cancel", cancel), *fallbacks],
            name=name, persistent=True, allow_reentry=True,
            conversation_timeout=ctx.settings.telegram.conversation_timeout_s,
        )


# --- commands ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A command a handler module offers; its description is the message `bot.cmd.<name>`.

    `access` decides who sees it in /help; `menu` whether it is in Telegram's menu.
    """

    name: str
    access: Access = "anyone"
    menu: bool = True


def check_length(text: str, limit: int) -> str:
    """The stripped text, or ValidationFailed with the length and the limit."""
    from infranet.errors import ValidationFailed

    text = text.strip()
    if len(text) > limit:
        raise ValidationFailed("bot.text_too_long", length=len(text), limit=limit)
    return text
