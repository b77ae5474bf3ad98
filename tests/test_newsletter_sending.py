"""Sending that the secretariat can leave running: the service picks up what the CLI built
and what an outage left, /healthz and the admins hear of an outage once (and of its end),
a crash's claimed-ahead delivery goes out again by itself, refusals that blame the sender
disable nobody and pause the issue, and an issue's period label ends where its events do.

Real storage (both engines), a real SMTP server (aiosmtpd), the real argument parser and
HTTP application; a sender killed with SIGKILL in a child process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event
from infranet.cli import build_parser
from infranet.component import Component
from infranet.http import create_app
from infranet.i18n import format_date
from infranet.newsletter import alerts
from infranet.newsletter.content import period_label
from infranet.newsletter.issues import build_issue, issue_status
from infranet.newsletter.replies import ReplyKind, classify
from infranet.newsletter.service import NewsletterService
from infranet.storage.actors import Actor
from infranet.storage.models import Subscriber
from tests.newsletter_support import (
    add_subscribers,
    deliveries,
    issue_with,
    local,
    newsletter_context,
    spawn_sender,
    today,
)
from tests.smtp_server import SmtpServer, free_port, smtp_fixture  # noqa: F401

DMARC = "5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC policy"


async def run_cli(ctx: Any, *argv: str) -> int:
    args = build_parser().parse_args(["newsletter", *argv])
    return await args.handler(ctx, args) or 0


async def eventually(check: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.05)


# --- whose fault a refusal is ----------------------------------------------------------------


@pytest.mark.parametrize(("code", "enhanced", "text", "kind"), [
    (250, None, "2.0.0 queued", ReplyKind.ACCEPTED),
    (451, None, "4.7.1 Try again later", ReplyKind.TRANSIENT),
    (421, None, "Service shutting down", ReplyKind.TRANSIENT),
    (550, None, "5.1.1 No such user", ReplyKind.RECIPIENT),
    (550, None, "Requested action not taken: mailbox unavailable", ReplyKind.RECIPIENT),
    (552, None, "5.2.2 Mailbox full", ReplyKind.RECIPIENT),
    (554, None, "Transaction failed", ReplyKind.RECIPIENT),
    (550, None, "5.7.1 Message rejected as spam", ReplyKind.SENDER),
    (550, None, DMARC, ReplyKind.SENDER),
    (554, None, "Message rejected: 192.0.2.1 listed at zen.spamhaus.org", ReplyKind.SENDER),
    (550, None, "Sender authentication failed (SPF)", ReplyKind.SENDER),
    (550, "5.7.1", "Relaying denied", ReplyKind.SENDER),
    (0, "5.1.1", "", ReplyKind.RECIPIENT),  # a DSN's Status: field, no SMTP reply
    (0, "4.4.7", "delivery time expired", ReplyKind.TRANSIENT),
])
def test_a_reply_is_classified_by_whose_fault_it_is(code: int, enhanced: str | None, text: str,
                                                    kind: ReplyKind) -> None:
    assert classify(code, enhanced, text) == kind


async def test_refusals_that_blame_the_sender_disable_nobody_and_pause_the_issue(
        db_url: str, tmp_path: Path, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(concurrency=1),
                                   newsletter={"pause_sample": 10, "pause_failure_share": 0.2})
    smtp.reject(lambda r: r.endswith("@strict.example"), 550, DMARC)
    strict = [f"s{i}@strict.example" for i in range(4)]
    fine = [f"ok{i:02d}@example.org" for i in range(20)]
    told: list[tuple[str, str, alerts.Action | None]] = []

    async def tell(en: str, pl: str, action: alerts.Action | None) -> None:
        told.append((en, pl, action))

    ctx.alerts.register(tell, actions=True)
    try:
        issue_id = await issue_with(ctx, ["first@example.org", *strict, *fine])
        assert await run_cli(ctx, "send") == 0
        # three refusals among the first ten outcomes (more than 0.2 x 10): paused
        assert f"issue #{issue_id} paused" in capsys.readouterr().err
        async with ctx.db.transaction() as session:
            [status] = await issue_status(session, ctx, issue_id)
            bounces = {s.email: (s.hard_bounces, s.status)
                       for s in (await session.scalars(select(Subscriber))).all()}
        assert status.status == "paused"
        assert status.counts["pending"] >= len(fine) - 1  # at most the one claimed ahead went
        assert len(smtp.recipients()) <= 2
        assert all(bounces[e] == (0, "confirmed") for e in strict)  # nobody disabled
        [(en, pl, action)] = [x for x in told if x[2] is not None]
        assert action.kind == alerts.RESUME and action.issue_id == issue_id
        assert f"#{issue_id}" in en and "paused" in en and "wstrzymano" in pl
        assert f"resume {issue_id}" in en

        # `infranet newsletter resume ISSUE`: the rest goes out, and no second pause
        assert await run_cli(ctx, "resume", str(issue_id)) == 0
        rows = await deliveries(ctx, issue_id)
        assert {e for e, d in rows.items() if d.status == "sent"} == {"first@example.org", *fine}
        assert {e for e, d in rows.items() if d.status == "failed"} == set(strict)
        assert all("refused for the sender" in rows[e].last_error for e in strict)
        assert Counter(smtp.recipients()) == Counter({"first@example.org": 1, **dict.fromkeys(fine, 1)})
        async with ctx.db.transaction() as session:
            [status] = await issue_status(session, ctx, issue_id)
            assert all(s.hard_bounces == 0 for s in (await session.scalars(select(Subscriber))).all())
        assert status.status == "done"
        assert await run_cli(ctx, "resume", str(issue_id)) == 1  # not paused: nothing to do
    finally:
        ctx.alerts.unregister(tell)
        await ctx.db.dispose()


# --- a crash between the claim of the next delivery and the handoff of the current one --------


async def test_a_crash_resends_the_claimed_ahead_delivery_and_asks_only_about_the_other(
        db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    sections = {"smtp": smtp.smtp_settings(concurrency=1),
                "http": {"public_base_url": "https://newsletter.example.org"}}
    ctx = await newsletter_context(db_url, tmp_path, sections["smtp"])
    emails = [f"reader{i:02d}@example.org" for i in range(12)]
    try:
        issue_id = await issue_with(ctx, emails)
        kill_at = 5
        child = spawn_sender(db_url, tmp_path / "data", sections)

        def kill(count: int) -> None:
            if count == kill_at:  # the server has the 5th message; the sender never hears 250
                os.kill(child.pid, signal.SIGKILL)

        smtp.handler.on_message = kill
        assert await asyncio.to_thread(child.wait, 60) == -signal.SIGKILL
        smtp.handler.on_message = None
        assert smtp.recipients() == emails[:kill_at]
        rows = await deliveries(ctx, issue_id)
        # left in `sending`: the message being sent, and the next one, claimed ahead
        assert {e for e, d in rows.items() if d.status == "sending"} == {emails[4], emails[5]}

        child = spawn_sender(db_url, tmp_path / "data", sections)
        out, err = await asyncio.to_thread(child.communicate, None, 60)
        assert child.returncode == 0, err.decode()
        rows = await deliveries(ctx, issue_id)
        # only the one the server may have is left for an admin; the claimed-ahead one and
        # the rest went out by themselves, each once
        assert {e for e, d in rows.items() if d.status == "unknown"} == {emails[4]}
        assert {e for e, d in rows.items() if d.status == "sent"} == set(emails) - {emails[4]}
        assert Counter(smtp.recipients()) == Counter(dict.fromkeys(emails, 1))
        assert json.loads(out)["sent"] == len(emails) - kill_at
    finally:
        await ctx.db.dispose()


# --- the service: pending work it did not start, an outage, /healthz --------------------------


async def test_the_service_sends_what_the_cli_built_and_tells_of_an_outage_once(
        db_url: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the SMTP server refuses connections
    smtp = {"host": "127.0.0.1", "port": port, "tls": "none", "timeout_s": 2,
            "from_address": "newsletter@example.org", "reply_to": "biuro@example.org",
            "retry_base_s": 0.05}
    tuning = {"poll_seconds": 0.2, "outage_alert_after_s": 0.3, "catch_up_hours": 0}
    one = await newsletter_context(db_url, tmp_path / "one", smtp, newsletter=tuning)
    two = await newsletter_context(db_url, tmp_path / "two", smtp, newsletter=tuning)
    cli = await newsletter_context(db_url, tmp_path / "cli", smtp)
    told: list[str] = []

    async def tell(en: str, pl: str) -> None:
        told.append(en)

    for instance in (one, two):  # each instance has its own hub; one of them tells
        instance.alerts.register(tell)
    services = [NewsletterService(one, AsyncIOScheduler()), NewsletterService(two, AsyncIOScheduler())]
    app = create_app(one, [Component("newsletter", status=services[0].status)])
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    emails = ["a@example.org", "b@example.org", "c@example.org"]
    try:
        for service in services:
            await service.start()
        assert (await http.get("/healthz")).json()["status"] == "ok"

        issue_id = await issue_with(cli, emails)  # built by the CLI, in "another process"

        async def degraded() -> Any:
            body = (await http.get("/healthz")).json()
            part = body["parts"]["newsletter"]
            return body if part.get("state") == "degraded" and part.get("waiting") == 3 else None

        body = await eventually(degraded)
        assert body["status"] == "degraded" and body["parts"]["newsletter"]["ok"] is False
        assert body["parts"]["newsletter"]["smtp"] == "unreachable"
        await eventually(lambda: any("does not answer" in m for m in told))
        await asyncio.sleep(1.5)  # both instances keep knocking, with backoff
        assert sum("does not answer" in m for m in told) == 1  # one alert for the outage

        with SmtpServer(port=port) as server:  # the server comes back
            await eventually(lambda: len(server.recipients()) == 3, 40)
            await eventually(lambda: any("again" in m for m in told))
            await eventually(lambda: rows_done(one, issue_id))
        assert Counter(server.recipients()) == Counter(dict.fromkeys(emails, 1))
        await asyncio.sleep(0.5)
        assert sum("again" in m for m in told) == 1  # one alert for its end

        async def healthy() -> Any:  # within a poll, whichever instance sent the mail
            body = (await http.get("/healthz")).json()
            return body["status"] == "ok" and body["parts"]["newsletter"]["ok"] is True

        await eventually(healthy, 5)
    finally:
        for instance in (one, two):
            instance.alerts.unregister(tell)
        await http.aclose()
        for service in services:
            await service.stop()
        for ctx in (one, two, cli):
            await ctx.db.dispose()


async def rows_done(ctx: Any, issue_id: int) -> bool:
    return {d.status for d in (await deliveries(ctx, issue_id)).values()} == {"sent"}


# --- the period's label ends where its events do -----------------------------------------------


async def test_the_period_label_names_the_last_day_whose_events_are_included(
        db_url: str, tmp_path: Path) -> None:
    ctx = await newsletter_context(db_url, tmp_path, newsletter={"horizon_days": 3})
    actor = Actor.cli()
    try:
        await add_subscribers(ctx, {"ala@example.org": {}})
        async with ctx.db.transaction() as session:
            for title, start in (("Wieczór ostatniego dnia", local(ctx, 2, 22)),
                                 ("Noc po okresie", local(ctx, 3, 0) + timedelta(minutes=30)),
                                 ("Poranek po okresie", local(ctx, 3, 6))):
                await add_event(session, ctx, actor, EventInput(
                    title=title, start=start, end=start + timedelta(hours=1), district="region",
                    category="meeting"))
            built = await build_issue(session, ctx, actor, period_key="label")
        issue = built.issue
        first: date = today(ctx)
        last = first + timedelta(days=2)
        titles = {e["title"] for e in issue.content["events"]}
        assert titles == {"Wieczór ostatniego dnia"}
        for lang in ("pl", "en"):
            label = period_label(issue.content, ctx, lang)
            assert label == (f"{format_date(first, lang, weekday=False)} – "
                             f"{format_date(last, lang, weekday=False)}")
        assert format_date(last, "pl", weekday=False) in issue.subject
        end = issue.period_end.astimezone(ctx.tz)
        assert (end.date(), end.hour, end.minute) == (last + timedelta(days=1), 0, 0)
    finally:
        await ctx.db.dispose()
