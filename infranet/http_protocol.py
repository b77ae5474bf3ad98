"""The HTTP server's connection handling: uvicorn, bounded against slow and hostile clients.

uvicorn (0.55) has a keep-alive timeout and a concurrency cap, but nothing bounds the time or the
bytes a client takes to send a request head: a client that sends "GET / HTTP/1.1\\r\\nHost: x"
and then nothing keeps its connection (and a slot under `limit_concurrency`) forever, and
httptools buffers a header value of any size before it calls back. Thousands of such
connections exhaust file descriptors and memory ("slowloris"). The protocol below closes a
connection whose request head is not complete within `[http] header_timeout_s` (408) or grows
beyond `[http] max_header_bytes` (431).

It subclasses uvicorn's httptools protocol and relies on some of its private attributes
(`transport`, `cycle`, `server_state`, the parser callbacks); tests/test_dependency_internals.py
fails, naming them, when an upgrade changes them, and pyproject.toml bounds uvicorn.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from infranet.config import Settings

_REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n")
_HEAD_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                   b"content-type: text/plain; charset=utf-8\r\ncontent-length: 26\r\n"
                   b"connection: close\r\n\r\nrequest headers too large\n")


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on every request head.

    The deadline runs from the connection's first moment (or, on a kept-alive connection, from
    the first byte of the next request) to the end of its headers; a body is the application's
    business (infranet/web bounds and times it per route)."""

    def __init__(self, *args: Any, head_timeout: float, max_head_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        self._max_head_bytes = max_head_bytes
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_bytes = 0
            self._head_deadline = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Still inside a head after the whole chunk was parsed: every byte of it was head.
        if self._head_deadline is not None and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head_bytes:
                self._refuse(_HEAD_TOO_LARGE)

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self._refuse(_REQUEST_TIMEOUT)

    def _refuse(self, response: bytes) -> None:
        self._disarm_head_deadline()
        if self.cycle is None or self.cycle.response_complete:  # no response is on its way
            self.transport.write(response)
        self.transport.close()


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration of the service: its address, proxy trust and client bounds."""
    http = settings.http
    protocol = functools.partial(BoundedHttpToolsProtocol, head_timeout=http.header_timeout_s,
                                 max_head_bytes=http.max_header_bytes)
    return uvicorn.Config(
        app, host=http.host, port=http.port, lifespan="off", log_config=None,
        http=protocol,  # type: ignore[arg-type]
        proxy_headers=True, forwarded_allow_ips=http.trusted_proxies,
        timeout_keep_alive=http.keep_alive_timeout_s, limit_concurrency=http.max_connections,
        timeout_graceful_shutdown=max(1, int(settings.service.shutdown_timeout_s) - 2),
        access_log=False)
