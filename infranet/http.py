"""The Starlette application: the components' routes plus /healthz."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from infranet.component import Component
from infranet.context import AppContext


def create_app(ctx: AppContext, components: Sequence[Component]) -> Starlette:
    async def healthz(_request: Request) -> JSONResponse:
        database_ok = await ctx.db.ping()
        parts = {"database": {"ok": database_ok, "engine": ctx.db.dialect}, "http": {"ok": True}}
        for component in components:
            parts[component.name] = component.status() if component.status else {"ok": True}
        body = {"status": "ok" if database_ok else "unavailable", "parts": parts}
        return JSONResponse(body, status_code=200 if database_ok else 503)

    routes = [Route("/healthz", healthz)]
    for component in components:
        routes.extend(component.routes)
    app = Starlette(routes=routes)
    app.state.ctx = ctx
    return app
