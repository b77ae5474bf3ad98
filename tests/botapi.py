"""A Bot API emulator on loopback, as strict as Telegram where it matters.

The real python-telegram-bot Application talks HTTP to it exactly as it would to
api.telegram.org (`[telegram] base_url = "http://127.0.0.1:<port>/bot"`). Tests
inject what users do (a text message, a button press) and await what the bot
sends back. Everything the bot calls is recorded in `calls`.

Strictness (each of these is a 400 "Bad Request" like Telegram's):
- `parse_mode=HTML` with an unknown tag, unbalanced tags, a bare `<` or `&`;
- text longer than 4096 characters after entity parsing, or empty;
- `callback_data` longer than 64 bytes;
- an edit that changes neither text nor keyboard ("message is not modified");
- an edit or delete of a message that does not exist.
`flood(...)` makes the next calls of a method answer 429 with `retry_after`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import itertools
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN = "123456:TEST-token-for-the-emulator"
BOT_ID = 123456
BOT_USERNAME = "infranet_test_bot"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64

# Parameters that are strings even when they look like JSON (PTB sends strings unencoded).
_STRING_PARAMS = {"text", "caption", "parse_mode", "url", "secret_token", "callback_query_id",
                  "language_code", "action", "inline_message_id", "name", "description",
                  "short_description", "ip_address"}
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                "tg-spoiler", "span", "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_SPECIAL = re.compile(r"[<&]")  # a bare '>' is plain text to Telegram


class ApiError(Exception):
    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def parse_html(text: str) -> str:
    """Telegram's HTML parse: return the visible text or raise ApiError(400)."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        special = _SPECIAL.search(text, i)  # plain text up to the next '<' or '&' is copied as is
        if special is None:
            out.append(text[i:])
            break
        out.append(text[i:special.start()])
        i = special.start()
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            if not m:
                raise ApiError(400, f"Bad Request: can't parse entities: unexpected '<' at "
                                    f"byte offset {len(text[:i].encode())}")
            closing, name, attrs = m.group(1), m.group(2).lower(), m.group(3)
            if name not in ALLOWED_TAGS:
                raise ApiError(400, f'Bad Request: can\'t parse entities: unsupported start tag '
                                    f'"{name}" at byte offset {len(text[:i].encode())}')
            if closing:
                if not stack or stack[-1] != name:
                    raise ApiError(400, f'Bad Request: can\'t parse entities: can\'t find end tag '
                                        f'corresponding to start tag "{stack[-1] if stack else name}"')
                stack.pop()
            else:
                if name == "a" and "href=" not in attrs:
                    raise ApiError(400, "Bad Request: can't parse entities: <a> without href")
                if name == "span" and "tg-spoiler" not in attrs:
                    raise ApiError(400, 'Bad Request: can\'t parse entities: unsupported start tag '
                                        '"span"')
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if not m:
                raise ApiError(400, f"Bad Request: can't parse entities: character '&' is reserved "
                                    f"and must be escaped at byte offset {len(text[:i].encode())}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
    if stack:
        raise ApiError(400, f'Bad Request: can\'t parse entities: can\'t find end tag corresponding '
                            f'to start tag "{stack[-1]}"')
    return "".join(out)


# BotCommandScope types the Bot API knows.
_SCOPES = ("default", "all_private_chats", "all_group_chats", "all_chat_administrators", "chat",
           "chat_administrators", "chat_member")


@dataclass
class Sent:
    """One message as the bot last left it (edits update it in place)."""

    chat_id: int
    message_id: int
    text: str  # visible text, after entity parsing
    raw: str  # as sent
    reply_markup: dict[str, Any] | None = None
    parse_mode: str | None = None
    kind: str = "send"  # send | edit (in the reply queue: what happened)

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data or url) of every inline button, row by row."""
        if not self.reply_markup:
            return []
        return [(b["text"], b.get("callback_data") or b.get("url") or "")
                for row in self.reply_markup.get("inline_keyboard", []) for b in row]

    def button(self, label_part: str) -> str:
        """The callback data of the button whose label contains `label_part`."""
        for label, data in self.buttons:
            if label_part.lower() in label.lower():
                return data
        raise AssertionError(f"no button {label_part!r} in {self.buttons}")

    def as_message(self, bot_user: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"message_id": self.message_id, "date": int(time.time()),
                                "chat": chat, "from": bot_user, "text": self.text}
        if self.reply_markup:
            body["reply_markup"] = self.reply_markup
        return body


@dataclass
class User:
    id: int
    first_name: str = "Test"
    username: str | None = None
    language_code: str | None = "pl"

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            body["username"] = self.username
        if self.language_code:
            body["language_code"] = self.language_code
        return body


@dataclass
class BotApi:
    """The emulator. Start with `async with BotApi() as api:`; `api.base_url` for the bot."""

    token: str = TOKEN
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self.pushed: dict[int, dict[str, Any]] = {}  # every update offered, by update_id
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._callback_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self.messages: dict[int, dict[int, Sent]] = defaultdict(dict)
        self.chats: dict[int, dict[str, Any]] = {}
        self._replies: dict[int, asyncio.Queue[Sent]] = defaultdict(asyncio.Queue)
        self._floods: dict[str, list[int]] = defaultdict(list)
        self.answered_callbacks: list[dict[str, Any]] = []
        self._answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._last_query_id = ""
        self.errors: list[tuple[str, str]] = []  # (method, description) of every refusal
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.bot_user = {"id": BOT_ID, "is_bot": True, "first_name": "Infranet",
                         "username": BOT_USERNAME, "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.chats_blocked: set[int] = set()  # users who never started the bot (403)
        # (chat id, file name, bytes, caption) of every document sent
        self.documents: list[tuple[int, str, bytes, str]] = []
        self._new_document = asyncio.Event()

    # --- server ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    async def __aenter__(self) -> BotApi:
        app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])
        config = uvicorn.Config(app, host=self.host, port=self.port, lifespan="off",
                                log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        self._new_update.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self._task, timeout=5)

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"},
                                status_code=401)
        method = request.path_params["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        try:
            if self._floods[method.lower()]:
                retry_after = self._floods[method.lower()].pop(0)
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}",
                               retry_after=retry_after)
            handler = getattr(self, "m_" + method.lower(), None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(params)
        except ApiError as exc:
            self.errors.append((method, exc.description))
            body: dict[str, Any] = {"ok": False, "error_code": exc.code,
                                    "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return JSONResponse(body, status_code=exc.code)
        return JSONResponse({"ok": True, "result": result})

    @staticmethod
    async def _params(request: Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        if body:
            if request.headers.get("content-type", "").startswith("application/json"):
                raw.update(json.loads(body))
                return raw
            form = await request.form()
            raw.update({k: v for k, v in form.items() if isinstance(v, str)})
            for key, value in form.items():  # files (sendDocument): their name and bytes
                if not isinstance(value, str):
                    raw[key] = {"filename": value.filename, "content": await value.read()}
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if key in _STRING_PARAMS or not isinstance(value, str):
                params[key] = value
                continue
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        return params

    # --- the test side --------------------------------------------------------------------

    def flood(self, method: str = "sendMessage", *, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get 429 Too Many Requests."""
        self._floods[method.lower()].extend([retry_after] * times)

    def _push(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        update["update_id"] = update_id
        self._updates.append(update)
        self.pushed[update_id] = copy.deepcopy(update)
        self._new_update.set()
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Offer an update again, as Telegram does when the bot did not confirm it (a crash
        while handling it): the same update_id, the same message or button press."""
        self._updates.append(copy.deepcopy(self.pushed[update_id]))
        self._new_update.set()

    def chat_for(self, user: User, chat_id: int | None, chat_type: str) -> dict[str, Any]:
        if chat_type == "private":
            chat = {"id": user.id, "type": "private", "first_name": user.first_name}
        else:
            assert chat_id is not None and chat_id < 0, "group chats have negative ids"
            chat = {"id": chat_id, "type": chat_type, "title": "Sieć organizacji"}
        self.chats[chat["id"]] = chat
        return chat

    def message_update(self, user: User | int, text: str, *, chat_id: int | None = None,
                       chat_type: str = "private") -> dict[str, Any]:
        user = user if isinstance(user, User) else User(user)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": self.chat_for(user, chat_id, chat_type), "from": user.as_dict(), "text": text}
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(command.group(0))}]
        return {"message": message}

    def send_text(self, user: User | int, text: str, *, chat_id: int | None = None,
                  chat_type: str = "private", language_code: str | None = None) -> int:
        """A user writes `text` (commands get their bot_command entity). Returns the update id."""
        if isinstance(user, int):
            user = User(user, language_code=language_code or "pl")
        elif language_code:
            user.language_code = language_code
        return self._push(self.message_update(user, text, chat_id=chat_id, chat_type=chat_type))

    def press(self, user: User | int, message: Sent, data: str, *,
              language_code: str | None = None) -> int:
        """A user presses a button carrying `data` under the bot's `message`
        (any data: a forged one too). Returns the update id."""
        if isinstance(user, int):
            user = User(user, language_code=language_code or "pl")
        chat = self.chats.get(message.chat_id) or {"id": message.chat_id, "type": "private",
                                                    "first_name": user.first_name}
        self._last_query_id = str(next(self._callback_ids))
        query = {"id": self._last_query_id, "from": user.as_dict(),
                 "message": message.as_message(self.bot_user, chat),
                 "chat_instance": f"ci{message.chat_id}", "data": data}
        return self._push({"callback_query": query})

    async def next_reply(self, chat_id: int, wait: float = 10.0) -> Sent:
        """The next message the bot sends (or edits) in `chat_id`."""
        try:
            return await asyncio.wait_for(self._replies[chat_id].get(), wait)
        except TimeoutError:
            raise AssertionError(f"the bot sent nothing to chat {chat_id} within {wait} s "
                                 f"(refusals so far: {self.errors})") from None

    async def replies(self, chat_id: int, count: int, wait: float = 10.0) -> list[Sent]:
        return [await self.next_reply(chat_id, wait) for _ in range(count)]

    async def ask(self, user: User | int, text: str, *, wait: float = 10.0, **kwargs: Any) -> Sent:
        """Send `text` from the user in a private chat and return the bot's next reply there."""
        uid = user.id if isinstance(user, User) else user
        chat = kwargs.get("chat_id") or uid
        self.send_text(user, text, **kwargs)
        return await self.next_reply(chat, wait)

    async def click(self, user: User | int, message: Sent, data: str, *,
                    wait: float = 10.0) -> Sent:
        self.press(user, message, data)
        return await self.next_reply(message.chat_id, wait)

    async def step(self, user: User | int, message: Sent, data: str, *,
                   wait: float = 10.0) -> tuple[Sent, Sent]:
        """Press a form's button: the bot turns the pressed message into the answer given
        and asks the next question, in that one message or, when both do not fit in one,
        in a new message sent first. Returns (question, edit): the same message, or two."""
        self.press(user, message, data)
        first = await self.next_reply(message.chat_id, wait)
        if first.kind == "edit":
            assert first.message_id == message.message_id, first
            return first, first
        edit = await self.next_reply(message.chat_id, wait)
        assert edit.kind == "edit" and edit.message_id == message.message_id, (first, edit)
        return first, edit

    async def answer(self, user: User | int, message: Sent, data: str, *, wait: float = 10.0) -> Sent:
        """`step`, for the next question only."""
        question, _edit = await self.step(user, message, data, wait=wait)
        return question

    async def next_answer(self, wait: float = 10.0) -> str:
        """The text (maybe empty) of the bot's answer to the last button press."""
        async def find() -> dict[str, Any]:
            while True:
                answer = await self._answers.get()
                if str(answer.get("callback_query_id")) == self._last_query_id:
                    return answer

        try:
            answer = await asyncio.wait_for(find(), wait)
        except TimeoutError:
            raise AssertionError(f"no callback answer within {wait} s") from None
        return str(answer.get("text") or "")

    async def silence(self, chat_id: int, seconds: float = 0.5) -> None:
        """Assert the bot sends nothing to `chat_id` for `seconds`."""
        try:
            sent = await asyncio.wait_for(self._replies[chat_id].get(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message to {chat_id}: {sent.text!r}")

    async def refusal(self, method: str, part: str, wait: float = 10.0) -> str:
        """A refusal of `method` whose description holds `part`, once the bot made that call:
        notifications to other people go out after the user's own answer."""
        deadline = time.monotonic() + wait
        while not (found := [d for m, d in self.errors if m == method and part in d]):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {method} refused with {part!r} within {wait} s "
                                     f"(refusals so far: {self.errors})")
            await asyncio.sleep(0.01)
        return found[0]

    def drain(self, chat_id: int) -> list[Sent]:
        queue, out = self._replies[chat_id], []
        while not queue.empty():
            out.append(queue.get_nowait())
        return out

    def sent_texts(self) -> list[str]:
        return [m.text for chat in self.messages.values() for m in chat.values()]

    # --- Bot API methods ----------------------------------------------------------------

    async def m_getme(self, _p: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    async def m_logout(self, _p: dict[str, Any]) -> bool:
        return True

    async def m_close(self, _p: dict[str, Any]) -> bool:
        return True

    async def m_getupdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(p.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = int(p.get("limit") or 100)
        deadline = time.monotonic() + float(p.get("timeout") or 0)
        while not self._updates:
            left = deadline - time.monotonic()
            if left <= 0 or (self._server and self._server.should_exit):
                break
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), left)
        return self._updates[:limit]

    async def m_deletewebhook(self, p: dict[str, Any]) -> bool:
        self.webhook = {}
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def m_setwebhook(self, p: dict[str, Any]) -> bool:
        if not str(p.get("url", "")).startswith(("https://", "http://")):
            raise ApiError(400, "Bad Request: bad webhook: an HTTPS URL must be provided")
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = p
        return True

    async def m_getwebhookinfo(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    async def m_setmycommands(self, p: dict[str, Any]) -> bool:
        for command in p["commands"]:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"]):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"]) <= 256:
                raise ApiError(400, "Bad Request: command description is invalid")
        self.commands[self._commands_key(p)] = p["commands"]
        return True

    def _commands_key(self, p: dict[str, Any]) -> str:
        """"" / "en" for the default scope; "chat:<id>:<lang>" for one chat's menu."""
        scope = p.get("scope") or {"type": "default"}
        if isinstance(scope, str):
            scope = json.loads(scope)
        if scope.get("type") not in _SCOPES:
            raise ApiError(400, "Bad Request: unsupported bot command scope type")
        lang = p.get("language_code") or ""
        if lang and not re.fullmatch(r"[a-z]{2}", lang):  # ISO 639-1, two letters, or empty
            raise ApiError(400, "Bad Request: invalid language code specified")
        if scope.get("type") == "chat":
            chat_id = int(scope["chat_id"])
            if chat_id not in self.chats and chat_id in self.chats_blocked:
                raise ApiError(400, "Bad Request: chat not found")
            return f"chat:{chat_id}:{lang}"
        return lang

    async def m_getmycommands(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands.get(self._commands_key(p), [])

    async def m_deletemycommands(self, p: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(p), None)
        return True

    async def m_setmydescription(self, _p: dict[str, Any]) -> bool:
        return True

    async def m_setmyshortdescription(self, _p: dict[str, Any]) -> bool:
        return True

    async def m_sendchataction(self, _p: dict[str, Any]) -> bool:
        return True

    def _check_markup(self, markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if isinstance(markup, str):
            markup = json.loads(markup)
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if data is None and not button.get("url"):
                    raise ApiError(400, "Bad Request: inline keyboard button has no action")
        return markup

    def _check_text(self, p: dict[str, Any]) -> str:
        raw = p.get("text")
        if raw is None or raw == "":
            raise ApiError(400, "Bad Request: message text is empty")
        raw = str(raw)
        visible = parse_html(raw) if str(p.get("parse_mode", "")).upper() == "HTML" else raw
        if not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(visible) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return visible

    def _chat_id(self, p: dict[str, Any]) -> int:
        try:
            chat_id = int(p["chat_id"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None
        if chat_id in self.chats_blocked:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat_id

    def _chat(self, chat_id: int) -> dict[str, Any]:
        return self.chats.get(chat_id) or {"id": chat_id, "type": "private" if chat_id > 0 else "group"}

    async def m_sendmessage(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(p)
        visible = self._check_text(p)
        markup = self._check_markup(p.get("reply_markup"))
        sent = Sent(chat_id, next(self._message_ids), visible, str(p["text"]), markup,
                    p.get("parse_mode"))
        self.messages[chat_id][sent.message_id] = sent
        self._replies[chat_id].put_nowait(replace(sent))  # a snapshot: later edits do not change it
        return sent.as_message(self.bot_user, self._chat(chat_id))

    async def m_senddocument(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(p)
        document = p.get("document")
        if not isinstance(document, dict) or not document.get("content"):
            raise ApiError(400, "Bad Request: there is no document in the request")
        caption = str(p.get("caption") or "")
        if len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        self.documents.append((chat_id, str(document["filename"]), document["content"], caption))
        self._new_document.set()
        message_id = next(self._message_ids)
        return {"message_id": message_id, "date": 0, "chat": self._chat(chat_id),
                "from": self.bot_user, "caption": caption,
                "document": {"file_id": f"doc{message_id}", "file_unique_id": f"u{message_id}",
                             "file_name": str(document["filename"]),
                             "file_size": len(document["content"])}}

    async def next_document(self, wait: float = 30.0) -> tuple[int, str, bytes, str]:
        """The oldest document not yet taken, waiting for it up to `wait` seconds."""
        async def first() -> tuple[int, str, bytes, str]:
            while not self.documents:
                self._new_document.clear()
                await self._new_document.wait()
            return self.documents.pop(0)
        return await asyncio.wait_for(first(), timeout=wait)

    def _existing(self, p: dict[str, Any]) -> Sent:
        chat_id = self._chat_id(p)
        sent = self.messages.get(chat_id, {}).get(int(p.get("message_id") or 0))
        if sent is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return sent

    async def m_editmessagetext(self, p: dict[str, Any]) -> dict[str, Any]:
        sent = self._existing(p)
        visible = self._check_text(p)
        markup = self._check_markup(p.get("reply_markup"))
        if visible == sent.text and markup == sent.reply_markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same as a current "
                                "content and reply markup of the message")
        sent.text, sent.raw, sent.reply_markup = visible, str(p["text"]), markup
        edited = Sent(sent.chat_id, sent.message_id, visible, sent.raw, markup, p.get("parse_mode"),
                      kind="edit")
        self._replies[sent.chat_id].put_nowait(edited)
        return sent.as_message(self.bot_user, self._chat(sent.chat_id))

    async def m_editmessagereplymarkup(self, p: dict[str, Any]) -> dict[str, Any]:
        sent = self._existing(p)
        markup = self._check_markup(p.get("reply_markup"))
        if markup == sent.reply_markup or (not markup and not sent.reply_markup):
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same as a current "
                                "content and reply markup of the message")
        sent.reply_markup = markup
        edited = Sent(sent.chat_id, sent.message_id, sent.text, sent.raw, markup, kind="edit")
        self._replies[sent.chat_id].put_nowait(edited)
        return sent.as_message(self.bot_user, self._chat(sent.chat_id))

    async def m_deletemessage(self, p: dict[str, Any]) -> bool:
        sent = self._existing(p)
        del self.messages[sent.chat_id][sent.message_id]
        return True

    async def m_answercallbackquery(self, p: dict[str, Any]) -> bool:
        if len(str(p.get("text") or "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.answered_callbacks.append(p)
        self._answers.put_nowait(p)
        return True
