"""Request bodies are capped while they stream in, on a real uvicorn server over a socket,
and every state-changing form has a per-client budget.

A chunked upload has no Content-Length, so a cap that reads only that header caps
nothing: one such POST of 1 GB made the process allocate about 1 GB. Here the server must
answer 413 (in the client's language) long before the client has sent everything, and a
form over the cap must never be answered as if a field were missing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from infranet.newsletter import tokens
from infranet.storage.models import Subscriber
from tests.botapi import BotApi
from tests.http_app import SECRET_HEADER, WEBHOOK_SECRET, assembled, served
from tests.newsletter_support import add_subscribers, newsletter_context

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MiB = 1024 * 1024


class Upload:
    """A chunked request body of up to `total` bytes that counts what was taken from it;
    iterable by an async client and, in a thread, by a blocking one."""

    def __init__(self, total: int, prefix: bytes = b"consent=yes&email=", chunk: int = 64 * 1024) -> None:
        self.total, self.prefix, self.chunk, self.sent = total, prefix, chunk, 0

    def blocks(self) -> Iterator[bytes]:
        yield self.prefix
        self.sent = len(self.prefix)
        block = b"a" * self.chunk
        while self.sent < self.total:
            yield block
            self.sent += len(block)

    async def async_blocks(self) -> AsyncIterator[bytes]:
        for block in self.blocks():
            yield block


async def post_blocking(url: str, upload: Upload, **options: Any) -> httpx.Response:
    """POST with httpx's blocking client (in a thread, the server runs in this loop): on a
    plain socket it reads the answer after the server stopped reading and the write failed,
    as a browser does; an asyncio transport drops what was received once a write fails."""
    return await asyncio.to_thread(httpx.post, url, content=upload.blocks(), timeout=60, **options)


async def links(ctx: object, email: str) -> dict[str, str]:
    """The signed links (path and query) of one confirmed subscriber."""
    async with ctx.db.transaction() as session:  # type: ignore[attr-defined]
        row = (await session.scalars(select(Subscriber).where(Subscriber.email == email))).one()
        return {purpose: f"/newsletter/{purpose}?s={row.id}&t={quote(tokens.make_token(ctx, purpose, row))}"
                for purpose in tokens.PURPOSES}


async def test_chunked_forms_over_the_cap_are_refused_while_they_stream(
        db_url: str, tmp_path: Path) -> None:
    ctx = await newsletter_context(db_url, tmp_path)
    try:
        await add_subscribers(ctx, {"anna@example.org": {}})
        signed = await links(ctx, "anna@example.org")
        paths = ["/newsletter/subscribe", signed["preferences"], signed["unsubscribe"],
                 signed["confirm"]]
        async with (assembled(ctx) as app, served(app.app) as url,
                    httpx.AsyncClient(base_url=url, timeout=60) as client):
            for path in paths:
                upload = Upload(64 * MiB)
                answer = await post_blocking(url + path, upload, headers=FORM)
                assert answer.status_code == 413, (path, answer.status_code, answer.text[:200])
                assert "Przesłane dane są za duże (najwyżej 64 KiB)" in answer.text
                # the server stopped reading: the client could not push the whole body
                assert upload.sent < 16 * MiB, (path, upload.sent)
            # a route that answers without reading the body (not a form's content type, a
            # method the route does not take) does not let the upload go on either
            for path, status in (("/newsletter/subscribe", 400), ("/healthz", 405),
                                 ("/newsletter/archive", 405)):
                upload = Upload(64 * MiB)
                answer = await post_blocking(url + path, upload)
                assert answer.status_code == status, (path, answer.status_code)
                assert answer.headers["Connection"] == "close" and upload.sent < 16 * MiB, path
            english = await post_blocking(url + "/newsletter/subscribe", Upload(64 * MiB),
                                          headers={**FORM, "Accept-Language": "en-GB,en;q=0.8"})
            assert english.status_code == 413 and "The data sent is too large" in english.text
            # a body somewhat over the cap is read to its end and answered cleanly, also
            # to a client that cannot read after a failed write
            for size in (65 * 1024, 300 * 1024):
                upload = Upload(size)
                answer = await client.post("/newsletter/subscribe?lang=en", content=upload.async_blocks(),
                                           headers=FORM)
                assert answer.status_code == 413 and "too large" in answer.text
                assert upload.sent >= size
            # the server is fine afterwards, and a form under the cap still works
            small = await client.post("/newsletter/subscribe",
                                      data={"email": "nowy@example.org", "consent": "yes"})
            assert small.status_code == 200 and "Dziękujemy" in small.text
        async with ctx.db.transaction() as session:
            rows = {r.email: r.status for r in (await session.scalars(select(Subscriber))).all()}
        assert rows == {"anna@example.org": "confirmed", "nowy@example.org": "pending"}
    finally:
        await ctx.db.dispose()


async def test_a_declared_body_over_the_cap_is_413_never_a_missing_field(
        db_url: str, tmp_path: Path) -> None:
    ctx = await newsletter_context(db_url, tmp_path)
    try:
        await add_subscribers(ctx, {"anna@example.org": {}})
        signed = await links(ctx, "anna@example.org")
        big = "consent=yes&language=pl&email=" + "a" * (70 * 1024)
        async with assembled(ctx) as app, app.client() as client:
            for path in ("/newsletter/subscribe", signed["preferences"], signed["unsubscribe"],
                         signed["confirm"]):
                answer = await client.post(path, content=big, headers=FORM)
                assert answer.status_code == 413, (path, answer.status_code)
                assert "za duże" in answer.text and "zgodę" not in answer.text
                assert answer.headers["Connection"] == "close"
            # just under the cap is read as the form it is
            fits = await client.post("/newsletter/subscribe", headers=FORM,
                                     content="consent=yes&email=" + "a" * (60 * 1024))
            assert fits.status_code == 400 and "nie wygląda na adres e-mail" in fits.text
        async with ctx.db.transaction() as session:
            [anna] = (await session.scalars(select(Subscriber))).all()
        assert anna.status == "confirmed" and anna.districts in (None, [])
    finally:
        await ctx.db.dispose()


async def test_the_webhook_has_its_own_larger_cap(db_url: str, tmp_path: Path, botapi: BotApi) -> None:
    ctx = await newsletter_context(db_url, tmp_path)
    try:
        async with (assembled(ctx, botapi) as app, served(app.app) as url,
                    httpx.AsyncClient(base_url=url, timeout=60) as client):
            update = botapi.message_update(8101, "/start")
            update["update_id"] = 77
            update["padding"] = "x" * (300 * 1024)  # Telegram adds fields we do not know
            await botapi.silence(8101, 0.3)
            taken = await client.post("/telegram/webhook", content=json.dumps(update),
                                      headers={SECRET_HEADER: WEBHOOK_SECRET,
                                               "Content-Type": "application/json"})
            assert taken.status_code == 200, taken.text[:200]
            assert "Cześć" in (await botapi.next_reply(8101)).text
            upload = Upload(64 * MiB, prefix=b'{"update_id": 1, "x": "')
            refused = await post_blocking(url + "/telegram/webhook", upload,
                                          headers={SECRET_HEADER: WEBHOOK_SECRET})
            assert refused.status_code == 413 and "najwyżej 1 MiB" in refused.text
            assert upload.sent < 16 * MiB
    finally:
        await ctx.db.dispose()


async def test_every_state_changing_form_has_a_client_budget(db_url: str, tmp_path: Path) -> None:
    ctx = await newsletter_context(db_url, tmp_path,
                                   newsletter={"form_burst": 2, "form_per_minute": 1})
    try:
        await add_subscribers(ctx, {f"osoba{n}@example.org": {} for n in range(4)})
        signed = [await links(ctx, f"osoba{n}@example.org") for n in range(4)]
        async with assembled(ctx) as app:
            for n, purpose in enumerate(("confirm", "preferences", "unsubscribe")):
                # each purpose from its own address, so the budgets do not mix in the test
                async with app.client(ip=f"198.51.100.{n + 1}") as flood:
                    statuses = []
                    for k in range(3):
                        answer = await flood.post(signed[k][purpose], data={"language": "pl"})
                        statuses.append(answer.status_code)
                    assert statuses == [200, 200, 429], (purpose, statuses)
                    assert "Zbyt wiele prób" in answer.text
                    assert 55 <= int(answer.headers["Retry-After"]) <= 60
                    # a forged link costs the same
                    assert (await flood.post(signed[3][purpose] + "x")).status_code == 429
                    # reading the pages is not limited
                    assert (await flood.get(signed[3][purpose])).status_code in (200, 400)
            # signing up has a budget of its own, untouched by the forms above
            async with app.client(ip="198.51.100.1") as client:
                answer = await client.post("/newsletter/subscribe",
                                           data={"email": "nowa@example.org", "consent": "yes"})
                assert answer.status_code == 200
    finally:
        await ctx.db.dispose()


async def test_one_click_unsubscribes_are_never_refused_for_want_of_budget(
        db_url: str, tmp_path: Path) -> None:
    """RFC 8058 one-click POSTs come from the mail provider's servers for many readers at
    once: a valid one always goes through; forged ones use up the sender's budget."""
    ctx = await newsletter_context(db_url, tmp_path,
                                   newsletter={"form_burst": 2, "form_per_minute": 1})
    try:
        people = [f"osoba{n}@example.org" for n in range(5)]
        await add_subscribers(ctx, {email: {} for email in people})
        signed = [await links(ctx, email) for email in people]
        one_click = {"List-Unsubscribe": "One-Click"}
        async with assembled(ctx) as app, app.client(ip="192.0.2.25") as provider:
            for link in signed:
                assert (await provider.post(link["unsubscribe"], data=one_click)).status_code == 200
            forged = [(await provider.post(signed[0]["unsubscribe"].replace("t=", "t=x"),
                                           data=one_click)).status_code for _ in range(3)]
            assert forged == [400, 400, 429]
        async with ctx.db.transaction() as session:
            statuses = {r.status for r in (await session.scalars(select(Subscriber))).all()}
        assert statuses == {"unsubscribed"}
    finally:
        await ctx.db.dispose()


async def test_a_client_leaving_in_the_middle_of_an_upload_is_no_server_error(
        db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ctx = await newsletter_context(db_url, tmp_path)
    try:
        async with assembled(ctx) as app, served(app.app) as url:
            host, port = url.removeprefix("http://").split(":")
            _reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"POST /newsletter/subscribe HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n5\r\nemail\r\n")
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.close()  # gone before the body ends
            await asyncio.sleep(0.5)
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/healthz")).status_code == 200
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, [r.getMessage() for r in errors]
    finally:
        await ctx.db.dispose()
