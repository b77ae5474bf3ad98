"""Hostile input on the public HTTP surface gets a 4xx with a message, never a 500.

The assembled app (calendar, newsletter, the bot's webhook with its secret, /healthz) is
sent what an attacker or a broken client sends: ids beyond 64 bits, Unicode digits that
`str.isdigit()` accepts, dates at year 1 and 9999, control characters, long strings, odd
methods and content types, malformed forms and JSON. The property test lists the routes
from the app itself, so a route added later is covered without touching this file."""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.routing import Route

from infranet.newsletter import tokens
from infranet.storage.models import Subscriber
from tests.botapi import BotApi
from tests.http_app import SECRET_HEADER, WEBHOOK_SECRET, AssembledApp, assembled
from tests.newsletter_support import add_subscribers, newsletter_context, seed_content

HUGE = "99999999999999999999"  # 20 digits: more than a signed 64-bit integer holds
JUST_OVER = str(2**63)
SPECIAL_VALUES = [
    HUGE, JUST_OVER, str(2**63 - 1), str(2**31), str(2**31 - 1), "²", "٣", "١٢", "-1", "0", "+5",
    " 7 ", "1e309", "NaN", "inf", "0x10", "1_000", "0001-01-01", "9999-12-31", "9999-12-31T23:59:59",
    "0001-01-01T00:00",
    "1970-01-01", "2200-12-31", "2201-01-01", "2026-02-30", "2026-13-01", "2026-12-05T25:00",
    "2026-12-05T10:00+25:00", "2026-12-05T10:00Z", "\x00", "\x1b[2J", "\u202etxt.exe", "\u0085",
    "\ud7ff", "%", "%00", "../../etc/passwd", "<script>alert(1)</script>", "' OR 1=1 --", '"',
    ",", ",,,", "1,2,²", "region", "olsztyński", "a" * 5000, "ł" * 1500, "\n\r\n", "",
]
PARAM_NAMES = ["s", "t", "lang", "area", "category", "audience", "org", "start", "end", "title",
               "next", "cursor", "page", "limit", "email", "x"]
FORM_NAMES = ["email", "consent", "language", "districts", "categories", "List-Unsubscribe", "x"]
CONTENT_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data",
                 "multipart/form-data; boundary=xyz", "application/json", "text/plain",
                 "application/octet-stream", "", "x/y; charset=bogus",
                 "application/x-www-form-urlencoded; charset=utf-16"]
ODD_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"]


def texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(SPECIAL_VALUES),
        st.text(max_size=40),
        st.text(alphabet=st.characters(codec="utf-8", categories=["Nd", "No", "Cc", "Cf", "Zs"]),
                max_size=25),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.dates().map(str),
        st.datetimes().map(lambda d: d.isoformat()),
        st.text(alphabet=string.digits, min_size=15, max_size=30),
    )


def deep_json(depth: int, opener: str) -> bytes:
    closer = "]" if opener == "[" else "}"
    if opener == "[":
        return (opener * depth + closer * depth).encode()
    return ('{"a":' * depth + "1" + closer * depth).encode()


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                        st.floats(allow_nan=False), texts())
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(
            ["update_id", "message", "text", "chat", "from", "id", "callback_query", "x"]),
            inner, max_size=4)), max_leaves=12)


def bodies() -> st.SearchStrategy[bytes]:
    form = st.lists(st.tuples(st.sampled_from(FORM_NAMES), texts()), max_size=6).map(
        lambda pairs: urlencode(pairs).encode())
    return st.one_of(
        st.just(b""),
        form,
        st.binary(max_size=300),
        json_values().map(lambda v: json.dumps(v).encode()),
        st.tuples(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", "{"])).map(
            lambda a: deep_json(*a)),
        st.sampled_from([b"--xyz\r\nContent-Disposition: form-data\r\n\r\n", b"--xyz--",
                         b"--xyz\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nx",
                         b"%ff%fe=%00&&==&email=%", b"{\"update_id\": 1e400}", b"\xff\xfe\x00"]),
    )


@dataclass
class Target:
    path: str
    methods: list[str]
    webhook: bool


def targets(app: AssembledApp, webhook_path: str) -> list[Target]:
    """Every route of the assembled app, as the app lists them."""
    found = []
    for route in app.app.routes:
        assert isinstance(route, Route), f"a route of an unknown kind: {route!r}"
        found.append(Target(route.path_format, sorted(route.methods or {"GET"}),
                            route.path_format == webhook_path))
    return found


@st.composite
def requests(draw: st.DrawFn, routes: list[Target], links: list[tuple[int, str]]) -> dict[str, Any]:
    target = draw(st.sampled_from(routes))
    path = target.path
    while "{" in path:
        head, _, rest = path.partition("{")
        _, _, tail = rest.partition("}")
        value = draw(st.one_of(texts(), st.just("1")))
        path = head + quote(value, safe="") + tail
    if draw(st.integers(0, 9)) == 0:
        path += "/"
    names = st.sampled_from(PARAM_NAMES)
    query = draw(st.lists(st.tuples(names, texts()), max_size=5))
    if links and draw(st.booleans()):  # a real signed link, so the forms behind it are reached
        sid, token = draw(st.sampled_from(links))
        query += [("s", str(sid)), ("t", token)]
    method = draw(st.one_of(st.sampled_from(target.methods), st.sampled_from(ODD_METHODS)))
    headers: dict[str, Any] = {}
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers["Content-Type"] = content_type
    if target.webhook and draw(st.integers(0, 4)):
        headers[SECRET_HEADER] = WEBHOOK_SECRET
    for name in draw(st.lists(st.sampled_from(
            ["Accept-Language", "If-Modified-Since", "If-None-Match", "Accept-Encoding", "Range"]),
            max_size=3, unique=True)):
        value = draw(texts()).encode("utf-8", "replace")[:300]
        headers[name] = bytes(b for b in value if b not in b"\r\n\x00")  # raw UTF-8 bytes
    body = draw(bodies()) if method not in ("GET", "HEAD") or draw(st.integers(0, 9)) == 0 else b""
    url = path + ("?" + urlencode(query) if query else "")
    return {"method": method, "url": url, "headers": headers, "content": body}


@pytest.fixture
async def hostile_app(db_url: str, tmp_path: Path, botapi: BotApi) -> AsyncIterator[
        tuple[AssembledApp, list[Target], list[tuple[int, str]]]]:
    ctx = await newsletter_context(db_url, tmp_path, newsletter={"form_per_minute": 0})
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {f"osoba{n}@example.org": {} for n in range(3)})
        async with ctx.db.transaction() as session:
            people = list((await session.scalars(select(Subscriber))).all())
            links = [(row.id, tokens.make_token(ctx, purpose, row))
                     for row in people for purpose in tokens.PURPOSES]
        async with assembled(ctx, botapi) as app:
            routes = targets(app, ctx.settings.telegram.webhook_path)
            yield app, routes, links
    finally:
        await ctx.db.dispose()


def assert_no_server_error(response: httpx.Response, request: dict[str, Any]) -> None:
    shown = {**request, "content": request["content"][:200]}
    assert response.status_code < 500, (shown, response.status_code, response.text[:500])
    assert "Traceback" not in response.text, (shown, response.text[:500])


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
async def test_every_route_answers_hostile_input_without_a_server_error(
        hostile_app: tuple[AssembledApp, list[Target], list[tuple[int, str]]],
        data: st.DataObject) -> None:
    """One app for all examples (the fixture is set up once per test, not per example)."""
    app, routes, links = hostile_app
    # the routes come from the app: all three components and /healthz are there
    assert {"/healthz", "/newsletter/subscribe", "/calendar.ics", "/telegram/webhook"} <= {
        r.path for r in routes}
    request = data.draw(requests(routes, links), label="request")
    async with app.client() as client:
        response = await client.request(**request)
    assert_no_server_error(response, request)


async def test_each_route_and_method_answers_every_special_value(
        hostile_app: tuple[AssembledApp, list[Target], list[tuple[int, str]]]) -> None:
    """Deterministically, beside the random search: every listed value in every path
    parameter and every query parameter of every route."""
    app, routes, _links = hostile_app
    async with app.client() as client:
        for target in routes:
            for value in SPECIAL_VALUES:
                quoted = quote(value, safe="")
                path = target.path
                while "{" in path:
                    head, _, rest = path.partition("{")
                    path = head + quoted + rest.partition("}")[2]
                names = PARAM_NAMES if len(value) < 500 else PARAM_NAMES[::5]  # URL < 64 KiB
                query = urlencode([(name, value) for name in names])
                for method in target.methods:
                    headers = {SECRET_HEADER: WEBHOOK_SECRET} if target.webhook else {}
                    request = {"method": method, "url": f"{path}?{query}", "headers": headers,
                               "content": b""}
                    assert_no_server_error(await client.request(**request), request)


# --- the cases found before, one by one -------------------------------------------------

async def test_ids_beyond_64_bits_or_in_unicode_digits_are_a_bad_link(
        hostile_app: tuple[AssembledApp, list[Target], list[tuple[int, str]]]) -> None:
    app, _routes, _links = hostile_app
    async with app.client() as client:
        for page in ("confirm", "preferences", "unsubscribe"):
            for sid in (HUGE, JUST_OVER, str(2**31), "²", "-1", "1" * 400):
                for method in ("GET", "POST"):
                    response = await client.request(method, f"/newsletter/{page}?s={quote(sid)}&t=x")
                    assert response.status_code == 400, (page, sid, method, response.status_code)
                    assert "Ten link jest nieprawidłowy" in response.text
        english = await client.get(f"/newsletter/confirm?s={HUGE}&t=x&lang=en")
        assert english.status_code == 400 and "This link is invalid" in english.text


async def test_archive_ids_beyond_64_bits_are_not_found(
        hostile_app: tuple[AssembledApp, list[Target], list[tuple[int, str]]]) -> None:
    app, _routes, _links = hostile_app
    async with app.client() as client:
        for tail in (HUGE, JUST_OVER, str(2**31), "²", "0", "-3", "x"):
            page = await client.get(f"/newsletter/archive/{quote(tail)}")
            assert page.status_code == 404 and "Brak wydania" in page.text, (tail, page.status_code)
            text = await client.get(f"/newsletter/archive/{quote(tail)}.txt")
            assert text.status_code == 404, (tail, text.status_code)


async def test_preferences_post_without_its_fields_keeps_the_page(
        hostile_app: tuple[AssembledApp, list[Target], list[tuple[int, str]]]) -> None:
    app, _routes, links = hostile_app
    sid, token = links[1]  # preferences link of the first subscriber
    async with app.client() as client:
        for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=b",
                             "application/json", "text/plain"):
            answer = await client.post(f"/newsletter/preferences?s={sid}&t={quote(token)}",
                                       content=b"", headers={"Content-Type": content_type})
            assert answer.status_code in (200, 400), (content_type, answer.status_code)
            assert "osoba0@example.org" in answer.text


NOT_UPDATES = [b"[1, 2]", b'"update"', b"17", b"null", deep_json(100_000, "["), deep_json(5_000, "{"),
               b'{"update_id": 1, "message": 5}', b'{"update_id": "x"}', b'{"update_id": true}',
               b'{"update_id": 99999999999999999999999}', b'{"update_id": -1}', b"{", b"\xff\xfe"]


async def test_webhook_with_the_secret_refuses_json_that_is_not_an_update(
        hostile_app: tuple[AssembledApp, list[Target], list[tuple[int, str]]]) -> None:
    app, _routes, _links = hostile_app
    async with app.client() as client:
        for body in NOT_UPDATES:
            answer = await client.post("/telegram/webhook", content=body,
                                       headers={SECRET_HEADER: WEBHOOK_SECRET,
                                                "Content-Type": "application/json"})
            assert answer.status_code == 400, (body[:40], answer.status_code, answer.text[:200])
            assert answer.json() == {"ok": False, "detail": "not an update"}
