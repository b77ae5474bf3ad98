"""A cap on request bodies, enforced while the body streams in.

Why: Starlette's `request.form()`, `request.body()` and `request.json()` read the whole
body into memory, and a cap that trusts `Content-Length` caps nothing, because a chunked
upload has none: one anonymous chunked POST of 1 GB made the process allocate about 1 GB.
`BodyLimit` wraps the ASGI `receive` channel, counts bytes as they arrive and stops the
request at the limit, whichever route reads the body and however it reads it. A declared
`Content-Length` over the limit is refused before the application runs at all.

The answer is 413 with a short message in the client's language (Polish unless `lang` or
`Accept-Language` asks for English) and `Connection: close`, so the server drops the rest
of the upload instead of reading it to keep the connection alive; so does any answer
given before the body was read to its end. Before answering, up to
DRAIN_BYTES more of the body are read and thrown away (for at most DRAIN_SECONDS): a
server that closes a connection with unread data makes the kernel reset it, and many
clients (browsers, asyncio-based ones) then lose the answer and show "connection reset"
instead of the message. A form somewhat over the cap is drained and answered cleanly; a
huge upload is cut off, and only clients that read after a failed write see the 413.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infranet.i18n import t
from infranet.web.params import preferred_language

# Web forms are a few hundred bytes; 64 KiB leaves room for any honest one.
FORM_MAX_BYTES = 64 * 1024
# Telegram's updates are larger than forms (long messages with entities, media captions,
# polls) but far below this.
WEBHOOK_MAX_BYTES = 1024 * 1024
# What is read and discarded past the cap before the 413, so that the client can read it.
DRAIN_BYTES = 1024 * 1024
DRAIN_SECONDS = 2.0



class BodyTooLarge(Exception):
    """Raised from `receive` once the body passes the limit; deliberately not a ValueError
    or an HTTPException, so no handler that catches those can mistake it for bad input."""


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


def too_large_response(scope: Scope, limit: int) -> PlainTextResponse:
    """The 413 answer, worded in the client's language."""
    query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
    lang = preferred_language(query.get("lang"), Headers(scope=scope).get("accept-language"))
    text = t(lang, "web.error.body_too_large", limit=_size(limit))
    return PlainTextResponse(text + "\n", status_code=413,
                             headers={"Connection": "close", "Cache-Control": "no-store"})


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not (value.isascii() and value.strip().isdigit()):
        return None
    return int(value)


async def _drain(receive: Receive, budget: int) -> None:
    """Read and discard the rest of the body, at most `budget` bytes and DRAIN_SECONDS."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while budget > 0:
                message = await receive()
                if message["type"] != "http.request":
                    return
                budget -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


class BodyLimit:
    """ASGI middleware: at most `default` bytes of request body, or `per_path[path]` for
    the paths listed there (the Telegram webhook takes larger bodies than the forms)."""

    def __init__(self, app: ASGIApp, *, default: int = FORM_MAX_BYTES,
                 per_path: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.default)
        headers = Headers(scope=scope)
        declared = _declared_length(headers)
        if declared is not None and declared > limit:
            # A client waiting for "100 Continue" has sent none of the body: nothing to drain.
            if declared <= limit + DRAIN_BYTES and "expect" not in headers:
                await _drain(receive, declared)
            await too_large_response(scope, limit)(scope, receive, send)
            return
        received = 0
        started = ended = False

        async def counting_receive() -> Message:
            nonlocal received, ended
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                ended = not message.get("more_body", False)
                if received > limit:
                    raise BodyTooLarge(f"request body over {limit} bytes")
            return message

        has_body = "transfer-encoding" in headers or bool(declared)

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if has_body and not ended:
                    # Answered without reading the whole body (a form posted with another
                    # content type, a refusal): without this the server would go on reading
                    # and discarding the rest, however long, to keep the connection alive.
                    MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except ClientDisconnect:
            # The client left in the middle of its upload: nobody to answer, nothing wrong
            # with the service (uncaught, it would be logged as a server error).
            if started:
                raise
        except BodyTooLarge:
            if started:  # a route that answers while it reads; nothing better can be sent
                raise
            if not ended:
                await _drain(receive, DRAIN_BYTES)
            await too_large_response(scope, limit)(scope, receive, send)
