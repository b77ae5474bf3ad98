"""Rendered public pages, kept for a short while: most visitors read the same few pages
(the list, this week's events, the event everybody was sent a link to).

- Key: the path, the query string as sent and the page's language (which may come from
  Accept-Language, so answers say `Vary: Accept-Language`).
- Fresh: a change this process makes to events or to organisations and members
  (`ctx.changes`) drops everything at once; what another instance or the CLI changes
  shows within `max_age` seconds, the same bound the answers' `Cache-Control` gives
  browsers and proxies. A page rendered while a change was on its way is served, not kept.
- Bounded: bodies count against `max_bytes`; the least recently used go first; a body
  over a tenth of the budget is never kept. Only 200 answers to GET are kept.
- Validators: each kept page has an ETag (a hash of its body), and If-None-Match gets 304.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from infranet.changes import Changes

Endpoint = Callable[[Request], Awaitable[Response]]
# Headers a kept page is served with, besides its own content type.
KEPT_HEADERS = ("content-type", "content-security-policy", "content-disposition", "cache-control")


@dataclass(frozen=True)
class _Page:
    body: bytes
    headers: tuple[tuple[str, str], ...]
    etag: str
    made: float
    generation: tuple[int, int]


class PageCache:
    def __init__(self, changes: Changes, *, max_age: float = 30.0,
                 max_bytes: int = 32 * 2**20, clock: Callable[[], float] = time.monotonic) -> None:
        self.changes = changes
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.clock = clock
        self._pages: OrderedDict[tuple[str, str, str], _Page] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return self._bytes

    def _generation(self) -> tuple[int, int] | None:
        events, people = self.changes.events.token(), self.changes.people.token()
        return None if events is None or people is None else (events, people)

    def wrap(self, endpoint: Endpoint, language: Callable[[Request], str]) -> Endpoint:
        """`endpoint` answered from the cache when it can (GET and HEAD only)."""

        async def cached(request: Request) -> Response:
            if request.method not in ("GET", "HEAD"):
                return await endpoint(request)
            key = (request.url.path, request.url.query, language(request))
            generation = self._generation()
            page = self._pages.get(key)
            if page is not None and page.generation == generation \
                    and self.clock() - page.made < self.max_age:
                self._pages.move_to_end(key)
                self.hits += 1
                return self._answer(request, page)
            self.misses += 1
            response = await endpoint(request)
            body = getattr(response, "body", None)
            if response.status_code != 200 or not isinstance(body, bytes) \
                    or generation is None or generation != self._generation():
                return response
            page = _Page(body, tuple((k, v) for k, v in response.headers.items()
                                     if k in KEPT_HEADERS),
                         '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"',
                         self.clock(), generation)
            self._keep(key, page)
            return self._answer(request, page)

        return cached

    def _keep(self, key: tuple[str, str, str], page: _Page) -> None:
        if len(page.body) > self.max_bytes // 10:
            return
        old = self._pages.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._pages[key] = page
        self._bytes += len(page.body)
        while self._bytes > self.max_bytes:
            _, dropped = self._pages.popitem(last=False)
            self._bytes -= len(dropped.body)

    def _answer(self, request: Request, page: _Page) -> Response:
        headers = dict(page.headers)
        headers["ETag"] = page.etag
        headers["Vary"] = "Accept-Language"
        headers.setdefault("cache-control", f"public, max-age={int(self.max_age)}")
        if page.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers={k: v for k, v in headers.items()
                                                      if k.lower() != "content-type"})
        return Response(page.body, headers=headers)
