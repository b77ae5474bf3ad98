"""Delivery against a real SMTP server: exactly once across a killed sender, retries and
slow-down on 4xx, hard bounces on 5xx, an unreachable server, concurrent senders,
connection reuse and the rate limit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from infranet.newsletter.issues import add_note, build_issue, issue_status, resend, send_pending
from infranet.newsletter.sender import Sender
from infranet.storage.actors import Actor
from infranet.storage.models import Subscriber
from tests.newsletter_support import (
    deliveries,
    issue_with,
    newsletter_context,
    spawn_sender,
)
from tests.smtp_server import SmtpServer, free_port, smtp_fixture  # noqa: F401


async def test_killed_sender_resumes_exactly_once(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    sections = {"smtp": smtp.smtp_settings(concurrency=3),
                "http": {"public_base_url": "https://newsletter.example.org"}}
    ctx = await newsletter_context(db_url, tmp_path, sections["smtp"])
    emails = [f"user{i:03d}@example.org" for i in range(40)]
    try:
        issue_id = await issue_with(ctx, emails)
        kill_after = 12
        child = spawn_sender(db_url, tmp_path / "data", sections)

        def kill(count: int) -> None:
            if count == kill_after:
                os.kill(child.pid, signal.SIGKILL)  # before the server answers 250

        smtp.handler.on_message = kill
        rc = await asyncio.to_thread(child.wait, 60)
        assert rc == -signal.SIGKILL
        smtp.handler.on_message = None
        before = Counter(smtp.recipients())
        assert kill_after <= sum(before.values()) < len(emails)

        # restart: leftovers become unknown, the pending rest is sent once
        child = spawn_sender(db_url, tmp_path / "data", sections)
        out, err = await asyncio.to_thread(child.communicate, None, 60)
        assert child.returncode == 0, err.decode()
        received = Counter(smtp.recipients())
        assert max(received.values()) == 1  # nobody got two copies
        rows = await deliveries(ctx, issue_id)
        unknown = {e for e, d in rows.items() if d.status == "unknown"}
        sent = {e for e, d in rows.items() if d.status == "sent"}
        assert unknown | sent == set(emails)
        assert 1 <= len(unknown) <= 6  # at most one in flight and one claimed ahead per connection
        assert sent <= set(received)  # every "sent" really arrived
        assert set(received) | unknown == set(emails)
        assert json.loads(out)["sent"] == len(emails) - sum(before.values()) - len(
            unknown - set(before))
        async with ctx.db.transaction() as session:
            [status] = await issue_status(session, ctx, issue_id)
        assert status.status == "done" and status.counts["unknown"] == len(unknown)

        # an admin decides to resend the unknown ones
        async with ctx.db.transaction() as session:
            assert await resend(session, ctx, Actor.cli(), issue_id, "unknown") == len(unknown)
        report = await send_pending(ctx)
        assert report.sent == len(unknown)
        assert set(smtp.recipients()) == set(emails)
    finally:
        await ctx.db.dispose()


async def test_temporary_and_permanent_answers(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(
        concurrency=2, retry_base_s=0.05, max_attempts=3))
    smtp.reject(lambda r: r.endswith("@slow.example"), 451, times=2)
    smtp.reject(lambda r: r == "gone@example.org", 550)
    smtp.reject(lambda r: r.endswith("@never.example"), 451)
    smtp.reject(lambda r: r == "datafail@example.org", 554, "5.2.1 mailbox disabled",
                stage="data")
    emails = ["ok@example.org", "a@slow.example", "gone@example.org", "x@never.example",
              "datafail@example.org"]
    try:
        issue_id = await issue_with(ctx, emails)
        report = await send_pending(ctx)
        rows = await deliveries(ctx, issue_id)
        assert rows["ok@example.org"].status == "sent"
        assert rows["a@slow.example"].status == "sent" and rows["a@slow.example"].attempts == 3
        assert rows["gone@example.org"].status == "failed"
        assert rows["gone@example.org"].last_error.startswith("550")
        assert rows["datafail@example.org"].status == "failed"
        assert rows["x@never.example"].status == "failed"
        assert "gave up after 3 attempts" in rows["x@never.example"].last_error
        assert report.sent == 2 and report.failed == 3
        assert sorted(smtp.recipients()) == ["a@slow.example", "ok@example.org"]
        async with ctx.db.transaction() as session:
            bounces = {s.email: s.hard_bounces for s in (await session.scalars(select(Subscriber))).all()}
        assert bounces["gone@example.org"] == 1 and bounces["datafail@example.org"] == 1
        assert bounces["x@never.example"] == 0  # temporary failures are not bounces

        # two more issues: the third hard bounce disables the address
        for key in ("k2", "k3"):
            async with ctx.db.transaction() as session:
                await add_note(session, ctx, Actor.cli(), key)
                await build_issue(session, ctx, Actor.cli(), period_key=key)
            await send_pending(ctx)
        async with ctx.db.transaction() as session:
            gone = await session.scalar(select(Subscriber).where(Subscriber.email == "gone@example.org"))
            assert gone.status == "disabled" and gone.hard_bounces == 3
            await add_note(session, ctx, Actor.cli(), "k4")
            built = await build_issue(session, ctx, Actor.cli(), period_key="k4")
        assert "gone@example.org" not in await deliveries(ctx, built.issue.id)
    finally:
        await ctx.db.dispose()


async def test_421_slows_down_that_domain_only(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(concurrency=2, retry_base_s=1.0))
    smtp.reject(lambda r: r.endswith("@busy.example"), 421, times=1)
    emails = ["first@busy.example"] + [f"u{i}@fast.example" for i in range(30)]
    try:
        issue_id = await issue_with(ctx, emails)
        report = await send_pending(ctx)
        assert report.sent == 31 and report.retried == 1
        order = smtp.recipients()
        # paused while the others went on: a loaded machine may send fewer than 30 in the pause,
        # never none of them
        assert order.index("first@busy.example") >= 10
        assert len(order) == len(set(order)) == 31
        assert (await deliveries(ctx, issue_id))["first@busy.example"].attempts == 2
    finally:
        await ctx.db.dispose()


async def test_smtp_down_keeps_issue_in_progress_and_tells_admins(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    settings = {"host": "127.0.0.1", "port": port, "tls": "none", "timeout_s": 2,
                "from_address": "newsletter@example.org", "reply_to": "biuro@example.org"}
    ctx = await newsletter_context(db_url, tmp_path, settings)
    told: list[tuple[str, str]] = []

    async def tell(en: str, pl: str) -> None:
        told.append((en, pl))

    ctx.alerts.register(tell)
    try:
        issue_id = await issue_with(ctx, ["a@example.org", "b@example.org"])
        started = time.monotonic()
        report = await Sender(ctx, give_up_after=1.0).run()
        assert report.stalled and report.sent == 0
        assert time.monotonic() - started < 10
        assert told and "SMTP" in told[0][0] and "SMTP" in told[0][1]
        rows = await deliveries(ctx, issue_id)
        assert {d.status for d in rows.values()} == {"pending"}
        async with ctx.db.transaction() as session:
            [status] = await issue_status(session, ctx, issue_id)
        assert status.status == "sending"
        # the server comes back: the same issue goes out
        server = SmtpServer()
        server.port = port
        from aiosmtpd.controller import Controller

        server.controller = Controller(server.handler, hostname="127.0.0.1", port=port)
        with server:
            report = await send_pending(ctx)
        assert report.sent == 2 and sorted(server.recipients()) == ["a@example.org", "b@example.org"]
    finally:
        ctx.alerts.unregister(tell)
        await ctx.db.dispose()


async def test_two_concurrent_senders_never_duplicate(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    settings = smtp.smtp_settings(concurrency=4)
    ctx = await newsletter_context(db_url, tmp_path, settings)
    other = await newsletter_context(db_url, tmp_path / "other", settings)
    emails = [f"p{i:03d}@example.org" for i in range(150)]
    try:
        await issue_with(ctx, emails)
        one, two = await asyncio.gather(Sender(ctx).run(), Sender(other).run())
        received = Counter(smtp.recipients())
        assert set(received) == set(emails) and max(received.values()) == 1
        assert one.sent + two.sent == 150
        if ctx.db.dialect == "postgresql":
            assert one.sent > 0 and two.sent > 0  # both really worked
    finally:
        await ctx.db.dispose()
        await other.db.dispose()


async def test_connections_are_reused_and_rate_is_limited(db_url: str, tmp_path: Path,
                                                         smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(concurrency=2, max_rate=40))
    emails = [f"r{i}@example.org" for i in range(30)]
    try:
        await issue_with(ctx, emails)
        started = time.monotonic()
        report = await send_pending(ctx)
        elapsed = time.monotonic() - started
        assert report.sent == 30
        assert smtp.connections == 2  # two connections, fifteen messages each
        assert elapsed >= 29 / 40 * 0.95
    finally:
        await ctx.db.dispose()


def _self_signed(tmp_path: Path) -> Any:
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    ok = auth_data.login == b"nl-user" and auth_data.password == b"s3cret!"
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_tls_and_auth(db_url: str, tmp_path: Path, mode: str) -> None:
    context = await asyncio.to_thread(_self_signed, tmp_path)
    tls = ({"tls_context": context, "require_starttls": True} if mode == "starttls"
           # aiosmtpd does not count its own implicit TLS as TLS for AUTH: allow it explicitly.
           else {"ssl_context": context, "auth_require_tls": False})
    server = SmtpServer(authenticator=_authenticator, auth_required=True, **tls)
    settings = {**server.smtp_settings(), "tls": mode, "username": "nl-user",
                "password": "s3cret!", "validate_certs": False}
    ctx = await newsletter_context(db_url, tmp_path, settings)
    try:
        with server:
            await issue_with(ctx, ["tls@example.org"])
            report = await Sender(ctx, give_up_after=5).run()
        assert report.sent == 1 and server.recipients() == ["tls@example.org"]
    finally:
        await ctx.db.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_wrong_password_stalls_without_losing_anything(db_url: str, tmp_path: Path) -> None:
    context = await asyncio.to_thread(_self_signed, tmp_path)
    server = SmtpServer(authenticator=_authenticator, auth_required=True, tls_context=context,
                        require_starttls=True)
    settings = {**server.smtp_settings(), "tls": "starttls", "username": "nl-user",
                "password": "wrong", "validate_certs": False}
    ctx = await newsletter_context(db_url, tmp_path, settings)
    try:
        with server:
            issue_id = await issue_with(ctx, ["a@example.org"])
            report = await Sender(ctx, give_up_after=0.5).run()
        assert report.stalled and server.messages == []
        assert {d.status for d in (await deliveries(ctx, issue_id)).values()} == {"pending"}
    finally:
        await ctx.db.dispose()
