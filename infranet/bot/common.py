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
import functools
import html
import logging
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
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

from infranet.bot.application import BotContext
from infranet.bot.people import people
from infranet.context import AppContext
from infranet.errors import InfranetError, PermissionDenied, ValidationFailed
from infranet.i18n import normalise_language, t
from infranet.region import UnknownDistrict
from infranet.storage.actors import Actor
from infranet.storage.database import Database
from infranet.storage.models import Member, Organisation
from infranet.web.params import parse_id

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
MAX_CALLBACK = 64
END = ConversationHandler.END

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
        async with self.ctx.db.transaction() as session:
            previous, self.session = self.session, session
            try:
                self.who = await identify(session, self.update, self.context.user_data)
                if not allows(self.who, self.access):
                    raise PermissionDenied("bot.need_admin" if self.access == "admin" else "bot.need_member")
                yield session
            finally:
                self.session = previous

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
            ) -> Callable[[HandlerFn], Callable[[Update, BotContext], Awaitable[Any]]]:
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
      transaction (`Database.read()`): on SQLite it neither waits in the write queue nor
      holds the write lock, and on PostgreSQL a write slipped in by mistake fails
      loudly. A handler that writes only on some paths uses `turn.writing()` there.
      Who speaks may come from the short-lived memory of `people.py` (forgotten on any
      change of a member or organisation in this process).
    - `db=False`: the handler needs no session of ours and `turn.session` is None: the
      steps of a form that keep their answers in user_data, calls that manage their own
      transactions (they would wait for ours on SQLite) or take long (a newsletter).
      Who speaks is found as for `writes=False`, without a transaction when remembered.
    - Default (`writes=True`): one write transaction, and the speaker is read in it.
    """

    def wrap(fn: HandlerFn) -> Callable[[Update, BotContext], Awaitable[Any]]:
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
                    opened = infra.db.transaction() if writes else infra.db.read()
                    async with opened as session:
                        turn = await turn_in(session, update, context)
                        result = await fn(turn) if admit(turn) else END
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
                result = None
            if turn is not None:
                await turn.flush()
            return result

        return run

    return wrap


def _district_error(lang: str, exc: UnknownDistrict) -> str:
    if exc.outside:  # nothing like it in the region: say so rather than "did you mean —"
        return t(lang, "bot.district.outside_plain", query=exc.query)
    hint = ", ".join(d.name for d in exc.suggestions)
    return t(lang, "bot.unknown_district", query=exc.query, hint=hint or "—")


# --- conversations ------------------------------------------------------------------------------


def form(turn: Turn, name: str) -> dict[str, Any]:
    """The conversation's form in user_data (created on first use)."""
    data = turn.user_data
    return data.setdefault(name, {})  # type: ignore[no-any-return]


# (id of the AppContext, conversation key) -> name of the form the user started last.
_LAST_FORM: dict[tuple[int, object], str] = {}


class Form(ConversationHandler[Any]):
    """A ConversationHandler that yields to the form its user started last.

    Without this, a form abandoned without /cancel (say /event, stopped at its date)
    would keep answering: a later /refer's answers would go to the /event question,
    because conversations are tried in registration order. Only entry points and the
    steps of the last started form are handled; an older one waits, inert, for its
    timeout.
    """

    def __init__(self, ctx: AppContext, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ctx_id = id(ctx)

    def check_update(self, update: object) -> Any:
        result = super().check_update(update)
        if result is None:
            return None
        _state, key, matched, _check = result
        if matched in self.entry_points:
            return result
        last = _LAST_FORM.get((self._ctx_id, key))
        if last is not None and last != self.name:
            return None
        return result

    async def handle_update(self, update: Any, application: Any, check_result: Any,
                            context: Any) -> object | None:
        _state, key, matched, _check = check_result
        result = await super().handle_update(update, application, check_result, context)
        if matched in self.entry_points and self.name and key in self._conversations:
            _LAST_FORM[(self._ctx_id, key)] = self.name  # started (not refused at the door)
        return result


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
        chat = update.effective_chat
        if chat is None:
            return
        who = await identify(None, update, context.user_data, db=context.infra.db)
        await send_html(context.bot, chat.id, tr(who.lang, "bot.timed_out"))

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


async def notify_admins(turn: Turn, key: str,
                        buttons: Buttons | Callable[[str], Buttons] = None, **params: object) -> int:
    """Tell every admin (each in their language); `buttons` may be a function of the
    language. Returns how many admins there are."""
    from infranet.storage.members import admins

    found = await admins(turn.session)
    for admin in found:
        lang = admin.language or "pl"
        turn.notify(admin.telegram_id, tr(lang, key, **params),
                    buttons(lang) if callable(buttons) else buttons)
    return len(found)


def check_length(text: str, limit: int) -> str:
    """The stripped text, or ValidationFailed with the length and the limit."""
    from infranet.errors import ValidationFailed

    text = text.strip()
    if len(text) > limit:
        raise ValidationFailed("bot.text_too_long", length=len(text), limit=limit)
    return text
