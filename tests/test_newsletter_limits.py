"""Abuse limits on subscriptions, through the real Starlette app (httpx), the real bot
(Bot API emulator) and the CLI, with a real SMTP server: one confirmation e-mail per
address per cool-down and a daily cap, answers that never differ, and a per-client
token bucket on the form answering 429 with Retry-After."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from infranet.cli import build_parser
from infranet.http import create_app
from infranet.newsletter import service
from infranet.newsletter.limits import ClientLimiter, client_key, mask_address
from infranet.storage.models import Subscriber
from tests.bot_fixtures import start_bot
from tests.botapi import BotApi
from tests.newsletter_support import newsletter_context
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401

BASE = "https://newsletter.example.org"
FORM = "/newsletter/subscribe"
LOGGER = "infranet.newsletter.subscribers"


def client_for(ctx: Any, ip: str = "198.51.100.7") -> httpx.AsyncClient:
    """The service's HTTP app, reached from `ip` (the socket peer the ASGI server reports)."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    app = create_app(ctx, [service.build(ctx, AsyncIOScheduler())])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
                             base_url=BASE)


class Clock:
    """Moves the context's clock forward; everything else stays real."""

    def __init__(self, ctx: Any) -> None:
        self.real: Callable[[], datetime] = ctx.clock
        self.offset = timedelta()
        ctx.clock = lambda: self.real() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def subscribe_form(email: str, **extra: Any) -> dict[str, Any]:
    return {"email": email, "consent": "yes", "language": "pl", **extra}


async def rows(ctx: Any) -> list[Subscriber]:
    async with ctx.db.transaction() as session:
        return list((await session.scalars(select(Subscriber).order_by(Subscriber.id))).all())


async def test_repeated_posts_send_one_confirmation_per_cooldown(
        db_url: str, tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    clock = Clock(ctx)
    caplog.set_level(logging.INFO, logger=LOGGER)
    try:
        async with client_for(ctx) as client:
            first = await client.post(FORM, data=subscribe_form("ofiara@example.org",
                                                                districts=["ełcki"]))
            assert first.status_code == 200 and "wysłaliśmy" in first.text
            answers = [first]
            for variant in (" Ofiara@Example.ORG", "ofiara@example.org", "OFIARA@example.org"):
                clock.advance(minutes=3)  # 9 minutes after the first: still within the cool-down
                answers.append(await client.post(FORM, data=subscribe_form(variant, districts=["piski"])))
            assert {(a.status_code, a.text) for a in answers} == {(200, first.text)}
            assert {a.headers["content-type"] for a in answers} == {first.headers["content-type"]}
            # held in English, it reads like a first request in English
            held_en = await client.post(FORM, data=subscribe_form("ofiara@example.org", language="en"))
            fresh_en = await client.post(FORM, data=subscribe_form("inna@example.org", language="en"))
            assert (held_en.status_code, held_en.text) == (fresh_en.status_code, fresh_en.text)
            assert "we have sent it" in fresh_en.text
            assert smtp.recipients() == ["ofiara@example.org", "inna@example.org"]
            # a held request changes nothing: the pending row keeps what the first one chose
            row = (await rows(ctx))[0]
            assert row.language == "pl" and row.districts == ["elcki"] and row.confirm_sends == 1
            held = [r for r in caplog.records if "no confirmation e-mail" in r.getMessage()]
            assert len(held) == 4 and all(r.levelno == logging.INFO for r in held)
            assert "o***@example.org" in held[0].getMessage() and "cool-down" in held[0].getMessage()
            assert not any("ofiara@example.org" in r.getMessage().lower() for r in caplog.records)

            clock.advance(minutes=2)  # 11 minutes after the first e-mail
            again = await client.post(FORM, data=subscribe_form("ofiara@example.org", language="en"))
            assert (again.status_code, again.text) == (200, fresh_en.text)
            assert smtp.recipients() == ["ofiara@example.org", "inna@example.org", "ofiara@example.org"]
            second = smtp.parsed()[2]
            assert second["Subject"].startswith("Please confirm")  # this request's choices apply
            row = (await rows(ctx))[0]
            assert row.language == "en" and row.confirm_sends == 2
    finally:
        await ctx.db.dispose()


async def test_daily_cap_then_a_day_later(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(),
                                   newsletter={"confirm_cooldown_minutes": 10, "confirm_daily_max": 2})
    clock = Clock(ctx)
    caplog.set_level(logging.INFO, logger=LOGGER)
    try:
        async with client_for(ctx) as client:
            answers = []
            for _ in range(4):  # at 0, 11, 22 and 33 minutes: the third and fourth are capped
                answers.append(await client.post(FORM, data=subscribe_form("cel@example.org")))
                clock.advance(minutes=11)
            assert len(smtp.messages) == 2
            assert len({(a.status_code, a.text) for a in answers}) == 1
            assert sum("daily cap" in r.getMessage() for r in caplog.records) == 2

            clock.advance(hours=23, minutes=20)  # a day after the first e-mail, not after the last
            answers.append(await client.post(FORM, data=subscribe_form("cel@example.org")))
            assert len(smtp.messages) == 2
            clock.advance(minutes=10)  # over a day since the last e-mail: a new run starts
            answers.append(await client.post(FORM, data=subscribe_form("cel@example.org")))
            assert len(smtp.messages) == 3
            assert len({(a.status_code, a.text) for a in answers}) == 1
            [row] = await rows(ctx)
            assert row.confirm_sends == 1
    finally:
        await ctx.db.dispose()


async def test_concurrent_posts_for_a_new_address(db_url: str, tmp_path: Path,
                                                  smtp: SmtpServer) -> None:
    """Requests racing for one new address (on PostgreSQL truly in parallel, each on its
    own connection) create one row and send one e-mail, and all get the same answer."""
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        async with client_for(ctx) as client:
            answers = await asyncio.gather(*(client.post(FORM, data=subscribe_form("wyscig@example.org"))
                                             for _ in range(5)))
        assert {(a.status_code, a.text) for a in answers} == {(200, answers[0].text)}
        assert smtp.recipients() == ["wyscig@example.org"]
        assert [r.email for r in await rows(ctx)] == ["wyscig@example.org"]
    finally:
        await ctx.db.dispose()


async def test_form_posts_per_client_get_429_with_retry_after(db_url: str, tmp_path: Path,
                                                               smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(),
                                   newsletter={"form_burst": 3, "form_per_minute": 1})
    try:
        async with client_for(ctx, "198.51.100.7") as flood:
            for n in range(3):
                ok = await flood.post(FORM, data=subscribe_form(f"osoba{n}@example.org"))
                assert ok.status_code == 200
            limited = await flood.post(FORM, data=subscribe_form("osoba3@example.org"))
            assert limited.status_code == 429 and "Zbyt wiele prób" in limited.text
            assert 55 <= int(limited.headers["Retry-After"]) <= 60 and "1 min" in limited.text
            assert limited.headers["Cache-Control"] == "no-store"
            english = await flood.post(FORM, data=subscribe_form("osoba3@example.org"),
                                       headers={"Accept-Language": "en-GB,en;q=0.8"})
            assert english.status_code == 429 and "Too many attempts" in english.text
            assert "Retry-After" in english.headers
            # a header cannot buy a new bucket: only the connection's peer address counts
            spoofed = await flood.post(FORM, data=subscribe_form("osoba3@example.org"),
                                       headers={"X-Forwarded-For": "192.0.2.1", "X-Real-IP": "192.0.2.1"})
            assert spoofed.status_code == 429
            # the form itself (GET) stays readable
            assert (await flood.get(FORM)).status_code == 200
        async with client_for(ctx, "203.0.113.9") as neighbour:
            assert (await neighbour.post(FORM, data=subscribe_form("osoba3@example.org"))).status_code == 200
        assert sorted(smtp.recipients()) == [f"osoba{n}@example.org" for n in range(4)]
    finally:
        await ctx.db.dispose()


async def delivered(smtp: SmtpServer, count: int, within: float = 5.0) -> list[str]:
    """The recipients once `count` messages have arrived (confirmations go out after the
    answer), or as they are after `within` seconds."""
    for _ in range(int(within / 0.05)):
        if len(smtp.messages) >= count:
            break
        await asyncio.sleep(0.05)
    return smtp.recipients()


async def test_bot_subscribe_obeys_the_address_limit(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                                     botapi: BotApi) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    clock = Clock(ctx)
    bot = await start_bot(ctx, botapi)
    try:
        first = await botapi.ask(9201, "/subscribe ktos@example.org")
        assert "Sprawdź skrzynkę" in first.text
        assert await delivered(smtp, 1) == ["ktos@example.org"]
        clock.advance(minutes=5)
        repeated = [await botapi.ask(user, "/subscribe Ktos@Example.org") for user in (9201, 9202)]
        assert {r.text for r in repeated} == {first.text}
        # the form shares the limit: the address is the same whoever asks
        async with client_for(ctx) as client:
            answer = await client.post(FORM, data=subscribe_form("ktos@example.org"))
            assert answer.status_code == 200
        assert await delivered(smtp, 2, within=0.5) == ["ktos@example.org"]  # none of the three
        clock.advance(minutes=6)
        assert (await botapi.ask(9202, "/subscribe ktos@example.org")).text == first.text
        assert await delivered(smtp, 2) == ["ktos@example.org", "ktos@example.org"]
    finally:
        await bot.stop()
        await ctx.db.dispose()


async def test_import_sends_one_confirmation_per_address(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("email\nraz@example.org\nRAZ@example.org\ndwa@example.org\n", encoding="utf-8")
    try:
        args = build_parser().parse_args(["newsletter", "import", str(csv_file), "--not-consented"])
        assert await args.handler(ctx, args) == 0
        out, _ = capsys.readouterr()
        assert "2 sent a confirmation e-mail, 1 not sent one (one went out too recently)" in out
        assert sorted(smtp.recipients()) == ["dwa@example.org", "raz@example.org"]
        # what the limits keep about an address is part of its data (right of access)
        args = build_parser().parse_args(["newsletter", "export", "raz@example.org"])
        assert await args.handler(ctx, args) in (0, None)
        exported = json.loads(capsys.readouterr().out)["confirmation_emails"]
        assert exported["recent_count"] == 1 and exported["last_sent_at"]
    finally:
        await ctx.db.dispose()


def test_client_limiter_refills_and_stays_bounded() -> None:
    now = [1000.0]
    limiter = ClientLimiter(2, 6, max_clients=3, clock=lambda: now[0])  # a token every 10 s
    assert [limiter.retry_after("192.0.2.1") for _ in range(3)] == [0, 0, 10]
    now[0] += 4
    assert limiter.retry_after("192.0.2.1") == 6
    now[0] += 6
    assert limiter.retry_after("192.0.2.1") == 0
    # one IPv6 subscriber line (/64) is one client; another /64 is another
    assert limiter.retry_after("2001:db8:1:2::1") == 0
    assert limiter.retry_after("2001:db8:1:2:ffff::9") == 0
    assert limiter.retry_after("2001:db8:1:2:abcd::5") == 10
    assert limiter.retry_after("2001:db8:1:3::1") == 0
    for n in range(10):
        limiter.retry_after(f"198.51.100.{n}")
    assert len(limiter._buckets) == 3
    assert ClientLimiter(1, 0).retry_after("192.0.2.1") == 0  # form_per_minute = 0: no limit
    assert ClientLimiter(1, 0).enabled is False


def test_keys_and_masks() -> None:
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("2001:db8::1") == "2001:db8::/64"
    assert client_key(None) == "unknown" and client_key("testclient") == "testclient"
    assert mask_address("ala.kowalska@example.org") == "a***@example.org"
    assert mask_address("nonsense") == "***"
