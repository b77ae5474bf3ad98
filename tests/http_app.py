"""The assembled HTTP app of the service for tests: every component's routes (calendar,
newsletter, the bot in webhook mode against the Bot API emulator, /healthz), reached
through httpx's ASGI transport or served by a real uvicorn server on a loopback socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.applications import Starlette

from infranet.app import build_components
from infranet.component import Component
from infranet.context import AppContext
from infranet.http import create_app
from tests.bot_fixtures import telegram_settings
from tests.botapi import BotApi

BASE = "https://newsletter.example.org"
WEBHOOK_SECRET = "hostile-test-secret_1"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class AssembledApp:
    app: Starlette
    components: list[Component]

    def client(self, ip: str = "198.51.100.7", **options: Any) -> httpx.AsyncClient:
        """A client of the app as reached from `ip` (the peer the ASGI server reports)."""
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url=BASE, **options)


@contextlib.asynccontextmanager
async def assembled(ctx: AppContext, botapi: BotApi | None = None) -> AsyncIterator[AssembledApp]:
    """The service's app with its real components, started as `Service` starts them; with
    `botapi`, the bot runs in webhook mode (secret WEBHOOK_SECRET) on the emulator."""
    if botapi is not None:
        current = ctx.settings.telegram
        ctx.settings.telegram = type(current).model_validate({
            **current.model_dump(), **telegram_settings(botapi, mode="webhook",
                                                        webhook_secret=WEBHOOK_SECRET)})
    components = build_components(ctx, AsyncIOScheduler(timezone=ctx.tz))
    app = create_app(ctx, components)
    started: list[Component] = []
    try:
        for component in components:
            # The newsletter's start runs its sender and schedule: not part of the HTTP surface.
            if component.start and component.name != "newsletter":
                await component.start()
                started.append(component)
        yield AssembledApp(app, components)
    finally:
        for component in reversed(started):
            if component.stop:
                await component.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[str]:
    """`app` served by uvicorn (as `Service` configures it) on a loopback port; yields the
    base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise AssertionError("uvicorn did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
