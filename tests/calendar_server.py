"""A real HTTP server on a loopback port serving fixture calendars that tests change between
fetches: a calendar with an ETag (answering 304 to its own ETag), an error status, a slow
answer, a huge body (with or without Content-Length), a redirect. It counts what it sent,
so that a test can tell a body cut off at the cap from one read to its end."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.http_app import free_port

Handler = Callable[[Request], Any]


@dataclass
class CalendarServer:
    base: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # path, headers
    sent: dict[str, int] = field(default_factory=dict)  # path: body bytes produced

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def count(self, path: str) -> int:
        return sum(1 for hit, _ in self.hits if hit == path)

    def ics(self, path: str, text: str, *, etag: bool = True, last_modified: str | None = None) -> None:
        """Serve `text` as a calendar; with `etag`, answer 304 when asked with the same one."""
        body = text.encode()
        tag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'

        async def answer(request: Request) -> Response:
            headers = {"Content-Type": "text/calendar; charset=utf-8"}
            if etag:
                headers["ETag"] = tag
                if request.headers.get("if-none-match") == tag:
                    return Response(status_code=304, headers=headers)
            if last_modified:
                headers["Last-Modified"] = last_modified
                if request.headers.get("if-modified-since") == last_modified:
                    return Response(status_code=304, headers=headers)
            self.sent[path] = self.sent.get(path, 0) + len(body)
            return Response(body, headers=headers)

        self.routes[path] = answer

    def raw(self, path: str, body: bytes, **headers: str) -> None:
        """`body` as it is, with `headers` (e.g. a Content-Encoding of our own making)."""
        def answer(request: Request) -> Response:
            self.sent[path] = self.sent.get(path, 0) + len(body)
            return Response(body, headers={k.replace("_", "-"): v for k, v in headers.items()})

        self.routes[path] = answer

    def status(self, path: str, code: int) -> None:
        self.routes[path] = lambda request: Response("broken", status_code=code)

    def redirect(self, path: str, location: str, code: int = 302) -> None:
        self.routes[path] = lambda request: Response(status_code=code, headers={"Location": location})

    def slow(self, path: str, seconds: float) -> None:
        async def answer(request: Request) -> Response:
            loop = asyncio.get_running_loop()
            until = loop.time() + seconds
            while loop.time() < until and not await request.is_disconnected():  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # polling the disconnect is the point
            return Response("late", media_type="text/calendar")

        self.routes[path] = answer

    def huge(self, path: str, size: int, *, declared: bool) -> None:
        """`size` bytes in 64 KiB chunks, produced only as fast as the client reads them and
        until it hangs up; with `declared`, a Content-Length says how much comes."""
        chunk = b"X" * 65536

        async def produce(request: Request) -> AsyncIterator[bytes]:
            left = size
            # uvicorn takes what is sent after the client went away without complaint: stop
            # at the disconnect, so that `sent` counts what was produced while it listened.
            while left > 0 and not await request.is_disconnected():
                piece = chunk[:min(left, len(chunk))]
                left -= len(piece)
                self.sent[path] = self.sent.get(path, 0) + len(piece)
                yield piece

        async def answer(request: Request) -> Response:
            headers = {"Content-Length": str(size)} if declared else {}
            return StreamingResponse(produce(request), media_type="text/calendar", headers=headers)

        self.routes[path] = answer

    async def dispatch(self, request: Request) -> Response:
        path = request.path_params["path"]
        self.hits.append((path, dict(request.headers)))
        handler = self.routes.get(path)
        if handler is None:
            return Response("not found", status_code=404)
        result = handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, Response)
        return result


@contextlib.asynccontextmanager
async def calendar_server() -> AsyncIterator[CalendarServer]:
    server = CalendarServer()
    app = Starlette(routes=[Route("/{path:path}", server.dispatch)])
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                       log_config=None, access_log=False,
                                       timeout_graceful_shutdown=1))
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        if task.done():
            await task
            raise AssertionError("uvicorn did not start")
        await asyncio.sleep(0.01)
    server.base = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        uv.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=10)
