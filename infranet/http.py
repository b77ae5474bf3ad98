"""The Starlette application: the components' routes plus /healthz, behind the
middleware every public answer needs: a cap on request bodies counted while they stream
in (infranet.web.body), security headers (infranet.web.headers), and trailing-slash
redirects built from `[http] public_base_url`, never from the client's Host header."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from infranet.component import Component
from infranet.context import AppContext
from infranet.web.body import FORM_MAX_BYTES, WEBHOOK_MAX_BYTES, BodyLimit
from infranet.web.headers import SecurityHeaders, slash_redirect


def create_app(ctx: AppContext, components: Sequence[Component]) -> Starlette:
    async def healthz(_request: Request) -> JSONResponse:
        database_ok = await ctx.db.ping()
        parts = {"database": {"ok": database_ok, "engine": ctx.db.dialect}, "http": {"ok": True}}
        for component in components:
            parts[component.name] = component.status() if component.status else {"ok": True}
        # A part not ok (the newsletter's SMTP server refusing connections, the bot unable to
        # reach Telegram) makes the service "degraded", still 200: it serves and recovers by
        # itself, so a health check must not restart it; only a lost database is 503.
        degraded = any(isinstance(p, dict) and p.get("ok") is False for p in parts.values())
        status = "unavailable" if not database_ok else "degraded" if degraded else "ok"
        body = {"status": status, "parts": parts}
        return JSONResponse(body, status_code=200 if database_ok else 503)

    routes: list[BaseRoute] = [Route("/healthz", healthz)]
    for component in components:
        routes.extend(component.routes)
    base_url = ctx.settings.http.public_base_url
    middleware = [
        Middleware(SecurityHeaders, public_base_url=base_url),  # also on the 413 below
        Middleware(BodyLimit, default=FORM_MAX_BYTES,
                   per_path={ctx.settings.telegram.webhook_path: WEBHOOK_MAX_BYTES}),
    ]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={404: slash_redirect(routes, base_url)})
    app.router.redirect_slashes = False  # Starlette's would build the URL from Host
    app.state.ctx = ctx
    return app
