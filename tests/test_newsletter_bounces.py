"""The bounce mailbox, end to end: an issue is sent through a real SMTP server (aiosmtpd)
with VERP envelope senders; DSNs shaped like Postfix, Exchange Online and Gmail ones, an
ARF complaint, a mailto: unsubscribe request and stray mail come back into a real IMAP
server (Dovecot) and are read by `process_mailbox`, the CLI and the service's poller.
Both database engines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.newsletter import verp
from infranet.newsletter.bounces import BouncePoller, MailboxError, process_mailbox
from infranet.newsletter.issues import add_note, build_issue, send_pending
from infranet.newsletter.service import NewsletterService
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, BounceReport, Delivery, Subscriber
from tests.imap_server import ImapServer, imap_fixture  # noqa: F401
from tests.newsletter_support import add_subscribers, newsletter_context
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
MAIL = Path(__file__).parent / "data" / "mail"
READERS = ["ala@poczta.example.net", "bartek@contoso.example.com", "celina@gmail.example.com",
           "darek@wolno.example.net", "ewa@urzad.example.gov.pl", "filip@mail.example.net",
           "grazyna@example.net"]


def mail(name: str, **values: str) -> bytes:
    """A fixture message with its %%PLACEHOLDERS%% filled, CRLF line ends (as stored)."""
    text = (MAIL / name).read_text(encoding="utf-8")
    values.setdefault("REPORT", "")
    values.setdefault("TO", "newsletter@example.org")
    for key, value in values.items():
        text = text.replace(f"%%{key}%%", value)
    assert "%%" not in text, f"{name}: a placeholder is not filled"
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


class Sent:
    """One delivered newsletter message as the SMTP server got it."""

    def __init__(self, sender: str, recipient: str, message: EmailMessage) -> None:
        self.sender = sender
        self.recipient = recipient
        self.message_id = str(message["Message-ID"]).strip()
        self.list_unsubscribe = str(message["List-Unsubscribe"])

    def bounce(self, name: str, **values: str) -> bytes:
        return mail(name, VERP=self.sender, RCPT=self.recipient, MSGID=self.message_id,
                    RCPT_LOCAL=self.recipient.partition("@")[0], **values)

    def mailto(self) -> tuple[str, str]:
        """(address, subject) of the List-Unsubscribe mailto: link."""
        link = next(p.strip(" <>") for p in self.list_unsubscribe.split(",")
                    if p.strip(" <>").startswith("mailto:"))
        parts = urlsplit(link)
        return parts.path, unquote(parts.query.removeprefix("subject="))


async def sent_issue(db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer,
                     **bounces: Any) -> tuple[AppContext, dict[str, Sent]]:
    """Readers subscribed, an issue built and sent through the real SMTP server with
    `[bounces]` pointing at the real IMAP server (one hard bounce disables)."""
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(),
                                   newsletter={"max_hard_bounces": 1, "catch_up_hours": 0},
                                   bounces=imap.settings(**bounces))
    await add_subscribers(ctx, {email: {} for email in READERS})
    async with ctx.db.transaction() as session:
        await add_note(session, ctx, Actor.cli(), "Zebranie sieci w czwartek")
        await build_issue(session, ctx, Actor.cli(), period_key="2026-w49")
    report = await send_pending(ctx)
    assert report.sent == len(READERS)
    sent = {m.recipients[0]: Sent(m.sender, m.recipients[0], m.parse()) for m in smtp.messages}
    return ctx, sent


async def subscribers(ctx: AppContext) -> dict[str, Subscriber]:
    async with ctx.db.transaction() as session:
        return {s.email: s for s in (await session.scalars(select(Subscriber))).all()}


async def test_each_delivery_has_its_own_verp_envelope_sender(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap)
    try:
        async with ctx.db.transaction() as session:
            rows = {d.email: d for d in (await session.scalars(select(Delivery))).all()}
        for email, message in sent.items():
            local, _, domain = message.sender.partition("@")
            assert domain == "example.org"  # the domain of [smtp] from_address
            assert local.startswith(f"bounces+{rows[email].id}-")
            assert verp.delivery_of(ctx, f"To: <{message.sender}>") == rows[email].id
            assert rows[email].message_id == message.message_id
        forged = sent[READERS[0]].sender.replace("bounces+", "bounces+9")
        assert verp.delivery_of(ctx, forged) is None  # another id with the same MAC
    finally:
        await ctx.db.dispose()


async def test_without_bounces_the_envelope_sender_is_the_from_address(
        db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await add_subscribers(ctx, {"ala@example.net": {}})
        async with ctx.db.transaction() as session:
            await add_note(session, ctx, Actor.cli(), "Notka")
            await build_issue(session, ctx, Actor.cli(), period_key="k")
        await send_pending(ctx)
        assert [m.sender for m in smtp.messages] == ["newsletter@example.org"]
    finally:
        await ctx.db.dispose()


async def test_hard_bounces_from_postfix_exchange_and_gmail_disable_their_readers(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap)
    try:
        imap.append(sent[READERS[0]].bounce("postfix_user_unknown.eml"),
                    # Exchange Online answered the From address: matched by Message-ID alone
                    sent[READERS[1]].bounce("exchange_ndr.eml", TO="newsletter@example.org"),
                    sent[READERS[2]].bounce("gmail_no_such_user.eml"))
        run = await process_mailbox(ctx)
        assert (run.read, run.hard, run.disabled, run.unmatched) == (3, 3, 3, 0)
        subs = await subscribers(ctx)
        for email in READERS[:3]:
            assert (subs[email].status, subs[email].hard_bounces) == ("disabled", 1), email
        assert all(subs[e].status == "confirmed" and subs[e].hard_bounces == 0 for e in READERS[3:])
        assert imap.count("INBOX") == 0 and imap.count("Processed") == 3
        async with ctx.db.transaction() as session:
            audits = (await session.scalars(select(AuditLog).where(
                AuditLog.action == "newsletter.bounce"))).all()
        assert sorted(a.details["status"] for a in audits) == ["5.1.1", "5.1.1", "5.1.10"]

        # read again: nothing left, nothing counted twice
        again = await process_mailbox(ctx)
        assert (again.read, again.hard) == (0, 0)
        assert (await subscribers(ctx))[READERS[0]].hard_bounces == 1
    finally:
        await ctx.db.dispose()


async def test_delays_and_refusals_of_the_sender_count_no_bounce(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap)
    try:
        imap.append(sent[READERS[3]].bounce("postfix_delayed.eml"),  # 4.4.1, Action: delayed
                    sent[READERS[4]].bounce("policy_5_7_1.eml"))  # 5.7.1 blocked by Spamhaus
        run = await process_mailbox(ctx)
        assert (run.read, run.delayed, run.sender, run.hard) == (2, 1, 1, 0)
        subs = await subscribers(ctx)
        for email in READERS[3:5]:
            assert (subs[email].status, subs[email].hard_bounces) == ("confirmed", 0)
        assert imap.count("Processed") == 2 and imap.count("INBOX") == 0
    finally:
        await ctx.db.dispose()


async def test_a_complaint_unsubscribes_at_once(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap)
    try:
        imap.append(sent[READERS[5]].bounce("arf_complaint.eml"))
        run = await process_mailbox(ctx)
        assert (run.complaint, run.unmatched) == (1, 0)
        row = (await subscribers(ctx))[READERS[5]]
        assert row.status == "unsubscribed" and row.unsubscribed_at is not None
        assert row.hard_bounces == 0
        async with ctx.db.transaction() as session:
            audit = await session.scalar(select(AuditLog).where(
                AuditLog.action == "newsletter.unsubscribe", AuditLog.entity_id == str(row.id)))
        assert audit is not None and audit.details["via"] == "complaint"
        assert imap.count("Processed") == 1
    finally:
        await ctx.db.dispose()


async def test_a_mailto_unsubscribe_request_unsubscribes_with_a_valid_token_only(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap)
    try:
        reader, other = sent[READERS[6]], sent[READERS[0]]
        address, subject = reader.mailto()
        assert address == "newsletter@example.org" and subject.startswith("unsubscribe ")
        _, other_subject = other.mailto()
        wrong = other_subject[:-3] + ("aaa" if not other_subject.endswith("aaa") else "bbb")
        imap.append(mail("mailto_unsubscribe.eml", RCPT=reader.recipient, TO=address,
                         SUBJECT=subject),
                    mail("mailto_unsubscribe.eml", RCPT=other.recipient, TO=address,
                         SUBJECT=wrong, REPORT=".2"))
        run = await process_mailbox(ctx)
        assert (run.unsubscribe, run.unmatched) == (1, 1)
        subs = await subscribers(ctx)
        assert subs[reader.recipient].status == "unsubscribed"
        assert subs[other.recipient].status == "confirmed"  # a wrong token does nothing
        assert imap.count("Processed") == 1 and imap.count("Unmatched") == 1
    finally:
        await ctx.db.dispose()


async def test_what_matches_nothing_goes_to_the_unmatched_folder(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap)
    try:
        reader = sent[READERS[0]]
        local, _, domain = reader.sender.partition("@")
        forged_sender = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + domain
        forged = mail("postfix_user_unknown.eml", VERP=forged_sender, RCPT=reader.recipient,
                      MSGID="<1.999999.0123456789abcdef@example.org>", REPORT=".forged")
        imap.append(mail("unmatched_out_of_office.eml"), forged)
        run = await process_mailbox(ctx)
        assert (run.read, run.unmatched, run.hard) == (2, 2, 0)
        assert (await subscribers(ctx))[reader.recipient].hard_bounces == 0
        assert imap.count("Unmatched") == 2 and imap.count("INBOX") == 0
        async with ctx.db.transaction() as session:
            assert (await session.scalars(select(BounceReport))).all() == []
    finally:
        await ctx.db.dispose()


async def test_unmatched_mail_may_stay_in_the_folder_and_is_read_once(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap, unmatched_folder="")
    try:
        imap.append(mail("unmatched_out_of_office.eml"),
                    sent[READERS[0]].bounce("postfix_user_unknown.eml"))
        run = await process_mailbox(ctx)
        assert (run.read, run.unmatched, run.hard) == (2, 1, 1)
        assert imap.count("INBOX") == 1 and imap.count("Processed") == 1
        again = await process_mailbox(ctx)
        assert again.read == 0  # flagged: left for a person, not read again
    finally:
        await ctx.db.dispose()


async def test_two_reports_of_one_delivery_count_one_bounce(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap, batch_size=1)
    try:
        async with ctx.db.transaction() as session:
            row = await session.scalar(select(Subscriber).where(Subscriber.email == READERS[0]))
            assert row is not None
            row.hard_bounces = 0
        reader = sent[READERS[0]]
        # the relay's DSN and the final server's, and the same DSN delivered twice
        imap.append(reader.bounce("postfix_user_unknown.eml"),
                    reader.bounce("gmail_no_such_user.eml"),
                    reader.bounce("postfix_user_unknown.eml"))
        run = await process_mailbox(ctx)
        assert (run.read, run.hard, run.duplicate, run.repeated) == (3, 1, 1, 1)
        assert (await subscribers(ctx))[READERS[0]].hard_bounces == 1
        assert imap.count("Processed") == 3
    finally:
        await ctx.db.dispose()


CRASH_CHILD = """
import asyncio, json, os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from infranet.context import AppContext
from infranet.newsletter.bounces import process_mailbox
from tests.conftest import TEST_SECRET, make_settings

args = json.loads(sys.argv[1])
settings = make_settings(args["db_url"], args["data_dir"], **args["sections"])
recorded = []

@event.listens_for(Engine, "after_cursor_execute")
def saw(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith("INSERT INTO BOUNCE_REPORTS"):
        recorded.append(True)

@event.listens_for(Session, "after_commit")
def crash(session):
    if recorded:  # the batch is committed; the messages are not moved yet
        os.kill(os.getpid(), signal.SIGKILL)

async def main():
    ctx = AppContext.create(settings, secret_key=TEST_SECRET)
    await process_mailbox(ctx)

asyncio.run(main())
"""


async def test_a_crash_between_counting_and_moving_counts_nothing_twice(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap)
    try:
        async with ctx.db.transaction() as session:
            for row in (await session.scalars(select(Subscriber))).all():
                row.hard_bounces = 0
        imap.append(sent[READERS[0]].bounce("postfix_user_unknown.eml"),
                    sent[READERS[5]].bounce("arf_complaint.eml"))
        sections = {"smtp": smtp.smtp_settings(), "newsletter": {"max_hard_bounces": 3},
                    "bounces": imap.settings()}
        payload = json.dumps({"db_url": db_url, "data_dir": str(tmp_path / "data"),
                              "sections": sections})
        child = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", CRASH_CHILD, payload],
                                        cwd=ROOT, capture_output=True, timeout=60)
        assert child.returncode == -9, child.stderr.decode()
        subs = await subscribers(ctx)
        assert subs[READERS[0]].hard_bounces == 1  # counted and committed...
        assert subs[READERS[5]].status == "unsubscribed"
        assert imap.count("INBOX") == 2 and imap.count("Processed") == 0  # ...not moved

        run = await process_mailbox(ctx)  # the next run
        assert (run.read, run.repeated, run.hard, run.complaint) == (2, 2, 0, 0)
        assert (await subscribers(ctx))[READERS[0]].hard_bounces == 1  # not twice
        assert imap.count("INBOX") == 0 and imap.count("Processed") == 2
    finally:
        await ctx.db.dispose()


async def test_cli_reads_the_mailbox_once_and_reports(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap)
    try:
        imap.append(sent[READERS[0]].bounce("postfix_user_unknown.eml"),
                    sent[READERS[3]].bounce("postfix_delayed.eml"),
                    mail("unmatched_out_of_office.eml"))
        args = build_parser().parse_args(["newsletter", "bounces", "--once"])
        assert await args.handler(ctx, args) == 0
        out, err = capsys.readouterr()
        assert "3 of 3 read" in err
        assert "read 3 of 3" in out and "hard 1" in out and "delayed 1" in out
        assert "unmatched 1" in out and "1 subscribers disabled" in out
    finally:
        await ctx.db.dispose()


async def test_a_refused_login_is_one_clear_line_without_the_password(
        db_url: str, tmp_path: Path, imap: ImapServer, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path, bounces=imap.settings(password="wrong-pw"))
    try:
        with pytest.raises(MailboxError) as caught:
            await process_mailbox(ctx)
        assert "refused the login" in str(caught.value) and "wrong-pw" not in str(caught.value)
        args = build_parser().parse_args(["newsletter", "bounces", "--once"])
        assert await args.handler(ctx, args) == 1
        _, err = capsys.readouterr()
        assert err.count("\n") == 1 and "refused the login of 'bounces'" in err
        assert "wrong-pw" not in err and "Traceback" not in err
    finally:
        await ctx.db.dispose()


async def test_the_running_service_reads_the_mailbox_every_poll_interval(
        db_url: str, tmp_path: Path, smtp: SmtpServer, imap: ImapServer) -> None:
    ctx, sent = await sent_issue(db_url, tmp_path, smtp, imap, poll_interval_s=5)
    service = NewsletterService(ctx, AsyncIOScheduler())
    try:
        imap.append(sent[READERS[0]].bounce("postfix_user_unknown.eml"))
        await service.start()  # the first reading at once
        for _ in range(100):
            if imap.count("Processed") == 1:
                break
            await asyncio.sleep(0.1)
        assert (await subscribers(ctx))[READERS[0]].status == "disabled"
        imap.append(sent[READERS[5]].bounce("arf_complaint.eml"))  # read at the next poll
        for _ in range(100):
            if imap.count("Processed") == 2:
                break
            await asyncio.sleep(0.1)
        assert (await subscribers(ctx))[READERS[5]].status == "unsubscribed"
        await service.stop()
        assert service.bounces.task is None
        imap.append(sent[READERS[6]].bounce("postfix_user_unknown.eml"))
        await asyncio.sleep(6)  # stopped: nothing reads the mailbox any more
        assert imap.count("INBOX") == 1
    finally:
        await service.stop()
        await ctx.db.dispose()


async def test_without_a_bounces_host_the_service_reads_no_mailbox(
        db_url: str, tmp_path: Path) -> None:
    ctx = await newsletter_context(db_url, tmp_path)
    poller = BouncePoller(ctx)
    try:
        poller.start()
        assert poller.task is None
    finally:
        await poller.stop()
        await ctx.db.dispose()


@pytest.mark.parametrize(("name", "kind", "verdict", "status"), [
    ("postfix_user_unknown.eml", "dsn", "hard", "5.1.1"),
    ("exchange_ndr.eml", "dsn", "hard", "5.1.10"),
    ("gmail_no_such_user.eml", "dsn", "hard", "5.1.1"),
    ("postfix_delayed.eml", "dsn", "delayed", "4.4.1"),
    ("policy_5_7_1.eml", "dsn", "sender", "5.7.1"),
    ("arf_complaint.eml", "complaint", "none", None),
    ("unmatched_out_of_office.eml", "other", "none", None),
])
def test_reports_are_read_as_their_senders_meant_them(name: str, kind: str, verdict: str,
                                                      status: str | None) -> None:
    from infranet.newsletter import dsn

    message_id = "<3.41.00112233aabbccdd@example.org>"
    report = dsn.parse(mail(name, VERP="bounces+41-0123456789@example.org", RCPT="ala@x.example",
                            MSGID=message_id, RCPT_LOCAL="ala"))
    assert (report.kind, report.verdict) == (kind, verdict)
    if status is not None:
        assert report.first_status is not None and report.first_status.status == status
        assert report.first_status.recipient == "ala@x.example"
    if kind != "other":
        assert report.original_message_id == message_id and report.delivery_hint() == 41
    # a returned original of any size is read alike (only its headers are parsed)
    body = "Dzień dobry, oto wydarzenia w Twoim powiecie.\n"
    big = mail(name, VERP="bounces+41-0123456789@example.org", RCPT="ala@x.example",
               MSGID=message_id, RCPT_LOCAL="ala").replace(
        body.replace("\n", "\r\n").encode(), (body * 2000).replace("\n", "\r\n").encode())
    assert dsn.parse(big) == report


def test_the_mailbox_password_comes_from_the_environment_and_is_never_shown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from infranet.config import load_settings, masked_dump

    monkeypatch.setenv("INFRANET_BOUNCES__HOST", "imap.example.org")
    monkeypatch.setenv("INFRANET_BOUNCES__PASSWORD", "hunter2-imap")
    settings = load_settings().settings
    assert settings.bounces.enabled and settings.bounces.password is not None
    assert settings.bounces.password.get_secret_value() == "hunter2-imap"
    assert "hunter2-imap" not in repr(masked_dump(settings)) and "hunter2" not in repr(settings)


@pytest.mark.parametrize(("action", "status", "diagnostic", "expected"), [
    ("failed", "5.1.1", "smtp; 550 5.1.1 <ala@x.example>: Recipient address rejected", "hard"),
    ("failed", "5.0.0", "smtp; 550 No such user here", "hard"),
    ("failed", "5.7.26", "smtp; 550-5.7.26 Unauthenticated email from example.org is not "
                         "accepted due to domain's DMARC policy", "sender"),
    ("failed", "5.0.0", "smtp; 554 Message rejected as spam", "sender"),
    ("failed", "4.4.7", "X-Postfix; delivery temporarily suspended: connect to "
                        "203.0.113.5[203.0.113.5]:25: Connection timed out", "soft"),
    ("delayed", "4.2.2", "smtp; 452 4.2.2 Mailbox full", "delayed"),
    ("relayed", "2.0.0", "", "none"),
])
def test_a_dsn_counts_as_the_same_reply_would_during_sending(
        action: str, status: str, diagnostic: str, expected: str) -> None:
    from infranet.newsletter.dsn import RecipientStatus, verdict

    assert verdict(RecipientStatus("ala@x.example", action, status, diagnostic)) == expected


async def test_tls_and_starttls_with_the_certificate_checked_as_configured(
        db_url: str, tmp_path: Path) -> None:
    from tests.imap_server import require_dovecot

    require_dovecot()
    with ImapServer(tls=True) as server:
        server.append(mail("unmatched_out_of_office.eml"))
        plain = server.settings(validate_certs=False)
        for tls, port in (("ssl", server.tls_port), ("starttls", server.port)):
            ctx = await newsletter_context(db_url, tmp_path,
                                           bounces={**plain, "tls": tls, "port": port})
            try:
                assert (await process_mailbox(ctx)).read == (1 if tls == "ssl" else 0)
            finally:
                await ctx.db.dispose()
        # a self-signed certificate is refused while certificates are checked (the default)
        checked = {**plain, "tls": "ssl", "port": server.tls_port, "validate_certs": True}
        ctx = await newsletter_context(db_url, tmp_path, bounces=checked)
        try:
            with pytest.raises(MailboxError, match=r"cannot connect to the IMAP .*certificate"):
                await process_mailbox(ctx)
        finally:
            await ctx.db.dispose()


def test_a_done_folder_that_is_the_read_folder_is_a_configuration_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from infranet.config import ConfigError, load_settings

    monkeypatch.setenv("INFRANET_BOUNCES__HOST", "imap.example.org")
    monkeypatch.setenv("INFRANET_BOUNCES__DONE_FOLDER", "INBOX")
    with pytest.raises(ConfigError, match="done_folder must differ from folder"):
        load_settings()
