"""The site's page cache: repeated visits are answered from memory with an ETag (and 304),
a change made in this process shows at once, one made elsewhere within `max_age`, each
language is kept apart, and the cache stays within its byte budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event
from infranet.changes import Changes
from infranet.context import AppContext
from infranet.site.page_cache import PageCache
from infranet.storage.actors import Actor
from tests.http_app import assembled

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def _add(ctx: AppContext, title: str) -> None:
    start = datetime(2026, 12, 2, 10, tzinfo=ctx.tz)
    async with ctx.db.transaction() as session:
        await add_event(session, ctx, Actor.cli(), EventInput(
            title, start, start + timedelta(hours=2), district="ełcki", category="meeting"))


async def _site_status(client: httpx.AsyncClient) -> dict[str, int]:
    return (await client.get("/healthz")).json()["parts"]["site"]  # type: ignore[no-any-return]


async def test_repeated_visits_come_from_the_cache_and_changes_show_at_once(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    await _add(ctx, "Pierwsze spotkanie")
    async with assembled(ctx) as app, app.client() as client:
        first = await client.get("/events")
        assert first.status_code == 200 and "Pierwsze spotkanie" in first.text
        etag = first.headers["etag"]
        again = await client.get("/events")
        assert again.text == first.text and again.headers["etag"] == etag
        assert (await _site_status(client))["page_cache_hits"] == 1
        assert again.headers["cache-control"] == "public, max-age=30"
        assert again.headers["content-security-policy"].endswith("frame-ancestors 'none'")
        unchanged = await client.get("/events", headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and unchanged.content == b""

        await _add(ctx, "Drugie spotkanie")  # a change in this process: seen at once
        after = await client.get("/events")
        assert "Drugie spotkanie" in after.text and after.headers["etag"] != etag

        english = await client.get("/events", headers={"Accept-Language": "en"})
        assert 'lang="en"' in english.text and "Vary" in english.headers
        polish = await client.get("/events", headers={"Accept-Language": "pl"})
        assert 'lang="pl"' in polish.text


async def test_another_instances_change_shows_within_max_age() -> None:
    now = [0.0]
    changes = Changes()
    cache = PageCache(changes, max_age=30, clock=lambda: now[0])
    stored = {"text": "old"}

    async def page(_request: Request) -> Response:
        return HTMLResponse(f"<p>{stored['text']}</p>")

    app = Starlette(routes=[Route("/p", cache.wrap(page, lambda _r: "pl"))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/p")).text == "<p>old</p>"
        stored["text"] = "new"  # written by another process: no change signal here
        now[0] = 29.0
        assert (await client.get("/p")).text == "<p>old</p>"
        now[0] = 30.5
        assert (await client.get("/p")).text == "<p>new</p>"
        assert (await client.post("/p")).status_code == 405  # only GET and HEAD are routed


async def test_the_cache_keeps_within_its_byte_budget() -> None:
    cache = PageCache(Changes(), max_bytes=10_000)

    async def page(request: Request) -> Response:
        return HTMLResponse("x" * 900 + request.url.query)

    app = Starlette(routes=[Route("/p", cache.wrap(page, lambda _r: "pl"))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for i in range(50):
            assert (await client.get(f"/p?n={i}")).status_code == 200
    assert cache.size <= 10_000
    big = PageCache(Changes(), max_bytes=10_000)

    async def large(_request: Request) -> Response:
        return HTMLResponse("y" * 5_000)  # over a tenth of the budget: served, never kept

    app = Starlette(routes=[Route("/big", big.wrap(large, lambda _r: "pl"))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert len((await client.get("/big")).text) == 5_000
    assert big.size == 0
