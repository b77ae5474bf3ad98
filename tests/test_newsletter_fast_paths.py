"""The sender's two fast paths past a library's public API, checked against the real library.

- `outbound.send_message_text`: the message text written on aiosmtplib's protocol after the
  server's 354, and its answer read there;
- `sqlite_writer.SqliteBatchWriter`: status changes written on a private sqlite3 connection,
  in the storage format SQLAlchemy reads back.

Each docstring gives the gain measured with bench/newsletter.py. A failure here names the
library, its version and what changed: adapt the fast path (or fall back to the public API)
before upgrading. tests/test_dependency_internals.py checks the aiosmtplib attributes too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select

from infranet.newsletter.outbound import send_message_text, transparent
from infranet.newsletter.sqlite_writer import SqliteBatchWriter, sqlite_time
from infranet.storage.models import Delivery
from tests.newsletter_support import issue_with, newsletter_context
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401

MESSAGE = (b"From: newsletter@example.org\r\nTo: ala@example.org\r\nSubject: test\r\n\r\n"
           b"line one\r\n.a line starting with a dot\r\n")


def changed(library: str, what: str, used_by: str, detail: object = "") -> str:
    return (f"{library} {version(library)}: {what}, used by {used_by}, has changed"
            f"{f' ({detail})' if detail else ''}. Adapt it, or send through the public API.")


async def test_the_message_text_goes_over_aiosmtplibs_protocol(smtp: SmtpServer) -> None:
    where = "infranet/newsletter/outbound.py (send_message_text)"
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, start_tls=False, timeout=5)
    await client.connect()
    try:
        await client.ehlo()
        assert (await client.execute_command(b"MAIL", b"FROM:<newsletter@example.org>")).code == 250
        assert (await client.execute_command(b"RCPT", b"TO:<ala@example.org>")).code == 250
        start = await client.execute_command(b"DATA")
        assert start.code == 354
        try:
            answer = await send_message_text(client, transparent(MESSAGE))
        except (AttributeError, TypeError) as exc:
            pytest.fail(changed("aiosmtplib", "SMTP.protocol.write / read_response(timeout=)",
                                where, exc))
        assert answer.code == 250, changed("aiosmtplib", "the reply read after the message text",
                                           where, answer)
        # The connection goes on: the next command gets its own answer, not a stale one.
        assert (await client.execute_command(b"NOOP")).code == 250, changed(
            "aiosmtplib", "pairing of replies after SMTPProtocol.read_response", where)
    finally:
        await client.quit()
    [received] = smtp.messages
    assert received.recipients == ["ala@example.org"]
    assert b"\r\n.a line starting with a dot" in received.data  # the doubled dot was removed


async def test_send_message_text_on_a_closed_client_says_disconnected() -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=9)
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await send_message_text(client, b".\r\n")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_sqlite_writer_stores_times_as_sqlalchemy_reads_them(
        db_url: str, tmp_path: Path) -> None:
    """The raw writer stamps `sent_at`/`handed_at` in SQLAlchemy's SQLite DateTime format."""
    where = "infranet/newsletter/sqlite_writer.py (sqlite_time)"
    ctx = await newsletter_context(db_url, tmp_path)
    writer = SqliteBatchWriter(db_url)
    try:
        issue_id = await issue_with(ctx, ["ala@example.org"])
        moment = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
        [row] = writer.apply(now=moment, worker_id="w", sent=[], released=[], claim=1,
                             issue_ids=[issue_id], exclude_patterns=[])
        writer.apply(now=moment, worker_id="w", sent=[(row[0], "<m@example.org>")], released=[],
                     claim=0, issue_ids=[], exclude_patterns=[], handed=[row[0]])
        async with ctx.db.read() as session:
            delivery = await session.scalar(select(Delivery))
            stored = await session.scalar(select(Delivery.sent_at).where(Delivery.sent_at == moment))
        assert delivery is not None and delivery.status == "sent"
        assert delivery.sent_at is not None and delivery.claimed_at is not None
        read = delivery.sent_at.replace(tzinfo=UTC) if delivery.sent_at.tzinfo is None \
            else delivery.sent_at
        assert read == moment, changed("SQLAlchemy", "the SQLite DateTime storage format", where,
                                       f"{sqlite_time(moment)!r} read back as {read!r}")
        assert stored is not None, changed("SQLAlchemy", "the SQLite DateTime storage format",
                                           where, "a time written raw does not compare equal")
    finally:
        writer.close()
        await ctx.db.dispose()
