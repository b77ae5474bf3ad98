"""Security headers on every answer, and redirects that never trust the `Host` header.

- Every response: `X-Content-Type-Options: nosniff` (a browser must not run a feed or a
  JSON answer as script or HTML) and `Referrer-Policy` (signed links in a page's URL must
  not leak to other sites through the Referer header).
- HTML pages: `Content-Security-Policy` with `default-src 'self'`, no script at all (the
  pages have none; an injected one would not run), inline styles allowed (the pages and
  the web version of an issue carry their CSS inline, as e-mail needs), and
  `frame-ancestors 'none'` against clickjacking of the subscribe and unsubscribe buttons;
  `X-Frame-Options: DENY` says the same to older browsers. A response that sets its own
  `Content-Security-Policy` (a page meant to be embedded) keeps it, and gets no
  `X-Frame-Options` either, so it can really be embedded.
- Starlette redirects `/calendar/` to `/calendar` with a URL built from the request's
  `Host` header, which a client chooses: a poisoned cache or a link in a crafted request
  would send people elsewhere. `slash_redirect` makes the same redirect from
  `[http] public_base_url`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REFERRER_POLICY = "strict-origin-when-cross-origin"


def content_security_policy(public_base_url: str) -> str:
    """The policy of the service's own HTML pages. Forms post to absolute URLs on
    `public_base_url`, which is 'self' behind the proxy but is named too, so a page
    reached on another address (a loopback port, say) still posts its forms."""
    parts = urlsplit(public_base_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return ("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            f"form-action 'self' {origin}; frame-ancestors 'none'")


class SecurityHeaders:
    """ASGI middleware adding the headers above to responses that do not set them."""

    def __init__(self, app: ASGIApp, *, public_base_url: str) -> None:
        self.app = app
        self.policy = content_security_policy(public_base_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", REFERRER_POLICY)
                html = headers.get("content-type", "").startswith("text/html")
                if html and "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = self.policy
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def slash_redirect(routes: Sequence[BaseRoute], public_base_url: str
                   ) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A 404 handler that redirects a path with or without a trailing slash to the route
    it misses, on `public_base_url`; install it with the router's own slash redirect off."""

    async def not_found(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            scope = {**request.scope, "path": other}
            if any(route.matches(scope)[0] is not Match.NONE for route in routes):
                query = request.url.query
                return RedirectResponse(public_base_url + other + (f"?{query}" if query else ""))
        detail = exc.detail if isinstance(exc, HTTPException) else "Not Found"
        return PlainTextResponse(detail, status_code=404)

    return not_found
