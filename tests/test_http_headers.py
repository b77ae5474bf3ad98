"""Security headers on the assembled app, and redirects that ignore the Host header."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.responses import HTMLResponse
from starlette.routing import Route

from infranet.component import Component
from infranet.http import create_app
from tests.http_app import BASE, assembled, served
from tests.newsletter_support import newsletter_context

HTML_PAGES = ["/newsletter/subscribe", "/newsletter/subscribe?lang=en", "/newsletter/archive",
              "/newsletter/archive/12345", "/newsletter/confirm?s=1&t=x",
              "/newsletter/unsubscribe?s=x", "/newsletter/preferences", "/calendar"]
OTHER_ANSWERS = ["/healthz", "/api/events", "/calendar.ics", "/newsletter/archive/1.txt",
                 "/no/such/page"]


def assert_page_headers(response: httpx.Response) -> None:
    policy = response.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["script-src"] == ["'none'"]  # the pages have no script, not even inline
    assert "'unsafe-inline'" not in directives["default-src"]
    assert directives["form-action"] == ["'self'", BASE]
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_pages_and_every_other_answer_carry_the_security_headers(
        db_url: str, tmp_path: Path) -> None:
    ctx = await newsletter_context(db_url, tmp_path)
    try:
        async with assembled(ctx) as app, app.client() as client:
            for path in HTML_PAGES:
                page = await client.get(path)
                assert page.headers["content-type"].startswith("text/html"), path
                assert_page_headers(page)
                assert page.headers["X-Content-Type-Options"] == "nosniff"
                assert page.headers["Referrer-Policy"] in ("no-referrer",
                                                           "strict-origin-when-cross-origin")
            for path in OTHER_ANSWERS:
                answer = await client.get(path)
                assert answer.status_code < 500, path
                assert answer.headers["X-Content-Type-Options"] == "nosniff", path
                assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
            # refusals too: a method not allowed, a body over the cap, a budget spent
            assert (await client.put("/newsletter/subscribe")).headers["X-Content-Type-Options"] == "nosniff"
            big = await client.post("/newsletter/subscribe", content=b"x" * 70_000)
            assert big.status_code == 413 and big.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        await ctx.db.dispose()


async def test_a_page_with_its_own_policy_keeps_it(db_url: str, tmp_path: Path) -> None:
    """A page meant to be embedded on members' sites sets its own frame-ancestors."""
    ctx = await newsletter_context(db_url, tmp_path)
    own = "default-src 'self'; frame-ancestors https://partner.example.org"

    async def widget(_request: object) -> HTMLResponse:
        return HTMLResponse("<p>widget</p>", headers={"Content-Security-Policy": own})

    app = create_app(ctx, [Component("widget", routes=[Route("/widget", widget)])])
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            answer = await client.get("/widget")
        assert answer.headers["Content-Security-Policy"] == own
        assert "X-Frame-Options" not in answer.headers  # it could not be embedded otherwise
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        await ctx.db.dispose()


async def test_redirects_are_built_from_the_public_base_url_not_the_host_header(
        db_url: str, tmp_path: Path) -> None:
    ctx = await newsletter_context(db_url, tmp_path)
    try:
        async with assembled(ctx) as app, served(app.app) as url, httpx.AsyncClient(
                base_url=url, headers={"Host": "evil.example"}) as client:
            for path, target in (("/calendar/", "/calendar"),
                                 ("/newsletter/subscribe/?lang=en", "/newsletter/subscribe?lang=en"),
                                 ("/healthz/", "/healthz")):
                answer = await client.get(path)
                assert answer.status_code in (307, 308), (path, answer.status_code)
                assert answer.headers["Location"] == BASE + target, answer.headers["Location"]
            # a path no route has is still a plain 404, not a redirect
            missing = await client.get("/nothing/here/")
            assert missing.status_code == 404 and "Location" not in missing.headers
            forwarded = await client.get("/calendar/", headers={"X-Forwarded-Host": "evil.example"})
            assert forwarded.headers["Location"] == BASE + "/calendar"
    finally:
        await ctx.db.dispose()
