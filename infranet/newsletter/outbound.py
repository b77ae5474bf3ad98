"""Where messages go: an SMTP connection (aiosmtplib) or the Maildir outbox.

An SMTP transport is one connection reused for many messages. `send()` runs
MAIL, RCPT and DATA itself, so that every failure can be told apart:

- an error answer or a lost connection before DATA completes means the
  server did not take the message: safe to retry;
- a 4xx answer is temporary (retry later), a 5xx answer permanent;
- a connection lost or timed out *while the message was being accepted*
  is ambiguous: the server may have taken it. Such a delivery becomes
  `unknown` and is never resent without an admin's decision.

With no `[smtp] host`, messages are written to a Maildir under
`data/outbox` that any mail client can open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mailbox
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

from infranet.config import SmtpSettings
from infranet.context import AppContext
from infranet.newsletter.limits import mask_address
from infranet.newsletter.mime import Envelope

log = logging.getLogger(__name__)

SENT, TEMPORARY, PERMANENT, AMBIGUOUS = "sent", "temporary", "permanent", "ambiguous"
BeforeData = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Outcome:
    kind: str  # sent | temporary | permanent | ambiguous
    code: int = 250
    message: str = ""
    connection_lost: bool = False

    @property
    def detail(self) -> str:
        return f"{self.code} {self.message}".strip()[:480]


def outbox_dir(ctx: AppContext) -> Path:
    return ctx.data_dir / "outbox"


def transparent(data: bytes, crlf: bool = False, dot_free: bool = False) -> bytes:
    """The message as DATA transmits it (RFC 5321 4.5.2): CRLF line endings, lines
    starting with "." doubled, ended by CRLF.CRLF. Our messages are built with CRLF
    and base64 bodies, so the checks are two C-speed counts and a search, not the
    regular expressions aiosmtplib runs over every message; a message built from
    prepared parts already knows it has no line starting with "." (`dot_free`)."""
    if not crlf and (data.count(b"\n") != data.count(b"\r\n")
                     or data.count(b"\r") != data.count(b"\r\n")):
        data = re.sub(rb"\r\n|\n|\r", b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if not dot_free and (data.startswith(b".") or b"\n." in data):
        data = re.sub(rb"(?m)^\.", b"..", data)
    return data + b".\r\n"


async def send_message_text(client: aiosmtplib.SMTP, text: bytes) -> aiosmtplib.SMTPResponse:
    """Write the message text (already `transparent()`) after the server's 354 and read its
    answer. The one place that reaches into aiosmtplib's internals: its public `SMTP.data()`
    sends DATA and the text together, and runs two regular expressions over every message.

    Measured with bench/newsletter.py (SQLite, 10 connections, 10,000 personalised 15 kB
    messages, six interleaved rounds on a shared, loaded 2-core machine): median 375 msg/s
    this way against 176 msg/s through `SMTP.data()`; the two expressions alone cost about
    1 ms per message, `transparent()` about 1 us. `data()` could also not tell a connection
    lost before the 354 (safe to retry) from one lost while the server took the message
    (`unknown`).

    Relies on `SMTP.protocol` with `SMTPProtocol.write(bytes)` and
    `SMTPProtocol.read_response(timeout=...)`, which arms the reply before it first yields,
    so a reply that comes at once is not dropped; tests/test_newsletter_fast_paths.py and
    tests/test_dependency_internals.py fail, naming the aiosmtplib version, when they change.
    """
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    protocol.write(text)
    return await protocol.read_response(timeout=client.timeout)


class MaildirTransport:
    """Writes each message as a file in a Maildir (new/); always succeeds or raises OSError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(str(path), create=True)

    @property
    def connected(self) -> bool:
        return True

    eightbit = True  # files in a Maildir carry 8-bit text as it is

    async def connect(self) -> None:
        return None

    async def send(self, envelope: Envelope, before_data: BeforeData | None = None) -> Outcome:
        if before_data is not None:
            await before_data()
        self.box.add(envelope.data)
        return Outcome(SENT, 250, "written to the outbox")

    async def close(self) -> None:
        return None


_HOSTNAME = socket.gethostname() or "localhost"


class SmtpTransport:
    """One SMTP connection, reused for many messages."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.client = self._new_client()

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host, port=s.port, use_tls=s.tls == "implicit",
            start_tls=True if s.tls == "starttls" else False,  # noqa: SIM210
            timeout=s.timeout_s, validate_certs=s.validate_certs, local_hostname=_HOSTNAME,
            username=s.username, password=s.password.get_secret_value() if s.password else None)

    @property
    def connected(self) -> bool:
        return self.client.is_connected

    @property
    def eightbit(self) -> bool:
        """The server takes 8-bit message text (RFC 6152)."""
        return self.client.is_connected and self.client.supports_extension("8bitmime")

    async def connect(self) -> None:
        """Connect (TLS, EHLO, AUTH as configured); raises on failure."""
        if self.client.is_connected:
            return
        self.client = self._new_client()
        await self.client.connect()
        if self.client.is_ehlo_or_helo_needed:  # MAIL is sent without aiosmtplib's own check
            try:
                await self.client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await self.client.helo()

    async def _reset(self) -> None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            if self.client.is_connected:
                await self.client.rset()

    async def send(self, envelope: Envelope, before_data: BeforeData | None = None) -> Outcome:
        """MAIL, RCPT, DATA. `before_data` is awaited once the server took the recipient and
        before DATA (the sender commits its handoff mark there); if it raises, the connection
        is dropped (nothing was handed over) and the exception propagates."""
        client = self.client
        try:
            # The addresses were validated when stored (no control characters), so the
            # commands are sent as they are, without aiosmtplib's per-call re-parsing.
            options = [f"SIZE={len(envelope.data)}".encode()] if client.supports_extension("size") else []
            if envelope.eightbit:
                options.append(b"BODY=8BITMIME")
            reply = await client.execute_command(b"MAIL", f"FROM:<{envelope.sender}>".encode(),
                                                 *options)
            if reply.code != 250:
                return await self._refused(reply.code, reply.message)
            reply = await client.execute_command(b"RCPT", f"TO:<{envelope.recipient}>".encode())
            if reply.code not in (250, 251):
                return await self._refused(reply.code, reply.message)
        except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPRecipientRefused) as exc:
            return await self._refused(exc.code, exc.message)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            self.client.close()
            return Outcome(TEMPORARY, 0, f"connection lost before the message: {exc}", True)
        except aiosmtplib.SMTPResponseException as exc:
            return await self._refused(exc.code, exc.message)
        if before_data is not None:
            try:
                await before_data()
            except BaseException:
                self.client.close()
                raise
        try:
            start = await client.execute_command(b"DATA")
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            self.client.close()
            return Outcome(TEMPORARY, 0, f"connection lost before the message: {exc}", True)
        if start.code != 354:
            return await self._refused(start.code, start.message)
        try:
            # The server has said 354: from here on, a lost connection is ambiguous.
            response = await send_message_text(
                client, transparent(envelope.data, envelope.crlf, envelope.dot_free))
            if response.code != 250:
                return await self._refused(response.code, response.message)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            self.client.close()
            return Outcome(AMBIGUOUS, 0, f"connection lost while the server was accepting the "
                           f"message: {exc}", True)
        except aiosmtplib.SMTPResponseException as exc:
            return await self._refused(exc.code, exc.message)
        return Outcome(SENT, response.code, response.message)

    async def _refused(self, code: int, message: str) -> Outcome:
        lost = code == 421
        if lost:
            self.client.close()
        else:
            await self._reset()
        kind = PERMANENT if 500 <= code < 600 else TEMPORARY
        return Outcome(kind, code, message, lost)

    async def close(self) -> None:
        if self.client.is_connected:
            try:
                await asyncio.wait_for(self.client.quit(), timeout=2)
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                self.client.close()


def uses_outbox(ctx: AppContext) -> bool:
    return not ctx.settings.smtp.host


_announced: set[Path] = set()


def announce_outbox(ctx: AppContext) -> None:
    """Say once per process where messages go when no SMTP server is configured (the
    service at start and the first sending run would otherwise both say it)."""
    path = outbox_dir(ctx)
    if uses_outbox(ctx) and path not in _announced:
        _announced.add(path)
        log.info("newsletter: no [smtp] host configured; messages go to the Maildir outbox %s", path)


def make_transport(ctx: AppContext) -> MaildirTransport | SmtpTransport:
    if uses_outbox(ctx):
        return MaildirTransport(outbox_dir(ctx))
    return SmtpTransport(ctx.settings.smtp)


async def send_one(ctx: AppContext, envelope: Envelope) -> Outcome:
    """Send a single message on its own connection (confirmations, test copies)."""
    transport = make_transport(ctx)
    if isinstance(transport, MaildirTransport):
        log.info("no [smtp] host configured: message to %s written to the outbox %s",
                 mask_address(envelope.recipient), transport.path)
    try:
        await transport.connect()
        return await transport.send(envelope)
    finally:
        await transport.close()


async def send_confirmation_after_answer(ctx: AppContext, subscriber_id: int) -> None:
    """`send_confirmation` once the sign-up has been answered (the web form, the bot), so
    that how long the answer takes does not tell whether an e-mail was sent (a new address)
    or not (a confirmed one, or one held back by the limits). The answer is gone, so a
    failure can only be logged; the address stays pending and may sign up again."""
    try:
        await send_confirmation(ctx, subscriber_id)
    except Exception:
        log.exception("newsletter: could not send the confirmation e-mail")


async def send_confirmation(ctx: AppContext, subscriber_id: int) -> Outcome | None:
    """Send the double opt-in e-mail to a pending subscriber (after the commit of
    `subscribe()`); None when the subscriber is no longer pending."""
    from infranet.newsletter.compose import Composer, SubscriberRef
    from infranet.storage.models import Subscriber, SubscriberStatus

    async with ctx.db.transaction() as session:
        row = await session.get(Subscriber, subscriber_id)
        if row is None or row.status != SubscriberStatus.PENDING:
            return None
        ref = SubscriberRef.of(row)
    outcome = await send_one(ctx, Composer(ctx).confirmation(ref))
    if outcome.kind != SENT:
        log.warning("newsletter: confirmation e-mail refused: %s", outcome.detail)
    return outcome


async def send_notice(ctx: AppContext, recipient: str, subject: str, text: str, *,
                      reply_to: str | None = None) -> Outcome:
    """One plain-text notice to one address on its own connection (the bot reaching an
    organisation that has nobody in it), through the newsletter's transport: the SMTP
    server of `[smtp]`, or the Maildir outbox without one.

    Never raises for a delivery problem: a server that cannot be reached or refuses the
    message gives a non-SENT `Outcome`, because the caller must tell its user whether
    the organisation was reached, not fail."""
    from infranet.newsletter.compose import load_dkim
    from infranet.newsletter.mime import MessageFactory

    settings = ctx.settings.smtp
    try:
        factory = MessageFactory(from_address=settings.from_address, subject=subject,
                                 reply_to=reply_to or settings.reply_to, bulk=False,
                                 dkim=load_dkim(ctx))
        envelope = factory.build(recipient=recipient, text=text, html=None)
    except (ValueError, OSError) as exc:  # a bad stored address, an unreadable DKIM key
        log.warning("notice to %s not built: %s", mask_address(recipient), exc)
        return Outcome(PERMANENT, 0, str(exc))
    try:
        return await send_one(ctx, envelope)
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        log.warning("notice to %s not sent: %s", mask_address(recipient), exc)
        return Outcome(TEMPORARY, 0, str(exc), True)
