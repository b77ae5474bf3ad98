"""Issue messages as they arrive at a real SMTP server: headers, parts, personalisation,
escaping of hostile content, DKIM, pre-send checks."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from infranet.calendar.event_links import event_url
from infranet.errors import ValidationFailed
from infranet.newsletter.issues import add_note, build_issue, issue_status, preview, send_pending
from infranet.storage.actors import Actor
from infranet.storage.models import Training
from tests.newsletter_support import add_subscribers, newsletter_context, seed_content
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401


@pytest.mark.parametrize("subject", [
    "Newsletter sieci organizacji infrastrukturalnych: 23 listopada 2026 – 7 grudnia 2026",
    "Zażółć gęślą jaźń, " * 9 + "koniec",
    "A plain ASCII subject that is long enough to be folded by the header folder, twice over",
])
def test_folded_subjects_decode_to_the_same_text(subject: str) -> None:
    from email import message_from_bytes
    from email import policy as email_policy

    from infranet.newsletter.mime import fold_header

    folded = fold_header("Subject", subject)
    assert folded.isascii() and all(len(line) <= 78 for line in folded.split("\r\n"))
    parsed = message_from_bytes(folded.encode() + b"\r\nbody", policy=email_policy.default)
    assert parsed["Subject"] == subject


def parts(msg):
    assert msg.get_content_type() == "multipart/alternative"
    payload = msg.get_payload()
    assert [p.get_content_type() for p in payload] == ["text/plain", "text/html"]
    return payload[0].get_content(), payload[1].get_content()


async def test_issue_headers_and_parts(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(),
                                   newsletter={"title": "Wiadomości z sieci: żółw"})
    try:
        seeded = await seed_content(ctx)
        await add_subscribers(ctx, {"anna@example.org": {}, "ben@example.com": {"language": "en"}})
        async with ctx.db.transaction() as session:
            await add_note(session, ctx, Actor.cli(), "Notka redakcji\n.Kropka na początku wiersza")
            built = await build_issue(session, ctx, Actor.cli(), period_key="t1")
        assert built.recipients == 2
        report = await send_pending(ctx)
        assert report.sent == 2
        by_rcpt = {m.recipients[0]: m for m in smtp.messages}
        msg = by_rcpt["anna@example.org"].parse()
        assert msg["To"] == "anna@example.org"
        assert str(msg["From"]) == "Sieć Organizacji Żółć <newsletter@example.org>"
        head = by_rcpt["anna@example.org"].data.split(b"\r\n\r\n")[0].decode("ascii")
        assert "=?utf-8?" in head  # headers are 7-bit: encoded words for Polish letters
        assert msg["Subject"].startswith("Wiadomości z sieci: żółw: ")
        assert "  " not in msg["Subject"]  # folding must not double a space
        assert parsedate_to_datetime(msg["Date"]).tzinfo is not None
        assert re.fullmatch(r"<[^@<>\s]+@example\.org>", msg["Message-ID"])
        assert msg["List-Id"].endswith("<newsletter.newsletter.example.org>")
        assert msg["Precedence"] == "bulk"
        assert msg["Reply-To"] == "sekretariat@example.org"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        links = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
        assert links[0].startswith("https://newsletter.example.org/newsletter/unsubscribe?s=")
        assert links[1].startswith("mailto:newsletter@example.org?subject=unsubscribe")
        text, html = parts(msg)
        assert ("Cały kalendarz (województwo warmińsko-mazurskie, ICS): "
                "https://newsletter.example.org/calendar.ics") in text
        assert ("Kalendarz tylko Twoich powiatów i tematów: "
                "https://newsletter.example.org/calendar\r\n") in text
        # aiosmtpd offers 8BITMIME: the parts travel as UTF-8 text, announced in MAIL FROM
        assert [p["Content-Transfer-Encoding"] for p in msg.get_payload()] == ["8bit", "8bit"]
        assert "BODY=8BITMIME" in smtp.handler.mail_options[0]
        assert "Warsztaty grantowe w Olsztynie" in text and "Warsztaty grantowe w Olsztynie" in html
        # every event links to its page on the site; the organiser's own page is still there
        page = event_url("https://newsletter.example.org", seeded["events"]["olsztyn"],
                         "Warsztaty grantowe w Olsztynie")
        assert f'<a href="{page}"' in html and f"  {page}\r\n" in text
        assert '<a href="https://laki.example.org/warsztaty"' in html
        assert "Szkolenie z księgowości" in text and "Fundacja Łąki i Źródła" in html
        assert links[0] in text and links[0].replace("&", "&amp;") in html
        assert 'style="' in html  # CSS inlined
        assert "Nadchodzące wydarzenia" in text
        assert "\n.Kropka na początku wiersza" in text  # dot-stuffed on the wire, restored
        en_text, _ = parts(by_rcpt["ben@example.com"].parse())
        assert "Upcoming events" in en_text
        # Message-IDs differ and are recorded
        ids = {m.parse()["Message-ID"] for m in smtp.messages}
        assert len(ids) == 2
    finally:
        await ctx.db.dispose()


async def test_personalised_by_district(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {
            "olsztyn@example.org": {"districts": ["m. Olsztyn"]},
            "elk@example.org": {"districts": ["podregion ełcki"]},
            "elblag@example.org": {"districts": ["elbląski"], "categories": ["fair"]},
            "meetings@example.org": {"categories": ["meeting"]},
            "city@example.org": {"districts": ["2861"]},
        })
        async with ctx.db.transaction() as session:
            await build_issue(session, ctx, Actor.cli(), period_key="t2")
        await send_pending(ctx)
        texts = {m.recipients[0]: parts(m.parse())[0] for m in smtp.messages}
        olsztyn, elk = texts["olsztyn@example.org"], texts["elk@example.org"]
        assert "Warsztaty grantowe w Olsztynie" in olsztyn and "Spotkanie sieci w Ełku" not in olsztyn
        assert "Spotkanie sieci w Ełku" in elk and "Warsztaty grantowe" not in elk
        for text in (olsztyn, elk):
            assert "Konferencja regionalna" in text  # region-wide: everyone
        # powiat elbląski, fairs only: nothing matches (the training is in the city of
        # Elbląg, the new organisation in Olsztyn), so no e-mail at all
        assert "elblag@example.org" not in texts
        assert "Szkolenie z księgowości" in texts["city@example.org"]
        assert "Fundacja Łąki i Źródła" in olsztyn and "Fundacja Łąki i Źródła" not in elk
        meetings = texts["meetings@example.org"]
        assert "Spotkanie sieci w Ełku" in meetings and "Konferencja regionalna" not in meetings
    finally:
        await ctx.db.dispose()


async def test_hostile_content_is_escaped_and_never_breaks_headers(
        db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    evil_title = "Żółw <script>alert(1)</script>\r\nBcc: victim@example.net\r\n" + "x" * 400
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(
        from_address="Evil\r\nBcc: a@b.example <newsletter@example.org>"),
        newsletter={"title": evil_title[:300]})
    try:
        ids = await seed_content(ctx)
        async with ctx.db.transaction() as session:
            training = await session.get(Training, ids["training"])
            training.title = '<img src=x onerror="alert(1)">\r\nSubject: injected'[:200]
            training.target_group = "</div><a href='https://evil.example'>klik</a>"
            await add_note(session, ctx, Actor.cli(),
                           "Uwaga: <b>pogrubienie</b> & \"cudzysłów\"\n\nDrugi akapit "
                           + "bardzo długi " * 120 + "\n\n.kropka na początku wiersza")
        await add_subscribers(ctx, {"anna@example.org": {}})
        async with ctx.db.transaction() as session:
            await build_issue(session, ctx, Actor.cli(), period_key="evil")
        await send_pending(ctx)
        [received] = smtp.messages
        head = received.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
        for line in head.split("\r\n"):
            assert len(line) <= 998
            assert not line.lower().startswith(("bcc:", "subject: injected"))
        msg = received.parse()
        assert msg["Bcc"] is None and len(msg.get_all("Subject")) == 1 and len(msg.get_all("To")) == 1
        subject = str(msg["Subject"])
        assert "\n" not in subject and "\r" not in subject and len(subject) <= 150
        assert subject.startswith("Żółw <script>alert(1)</script> Bcc: victim@example.net")
        assert subject.endswith("…")
        text, html = parts(msg)
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
        assert "<a href='https://evil.example'>" not in html and "href=\"https://evil.example\"" not in html
        assert "&lt;b&gt;pogrubienie&lt;/b&gt; &amp; \"cudzysłów\"" in html
        assert '<img src=x onerror="alert(1)">' in text  # plain text shows it as text
        # a 1,400-character line cannot go as 8bit (SMTP lines end at 998): base64 instead
        assert [p["Content-Transfer-Encoding"] for p in msg.get_payload()] == ["base64", "base64"]
        assert "\n.kropka na początku wiersza" in text  # dot-stuffing undone by the server
    finally:
        await ctx.db.dispose()


async def test_dkim_signature_covers_list_unsubscribe(db_url: str, tmp_path: Path,
                                                     smtp: SmtpServer) -> None:
    import base64
    import subprocess

    import dkim

    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"],  # noqa: ASYNC221
                   check=True, capture_output=True)
    public_der = subprocess.run(  # noqa: ASYNC221
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True, capture_output=True).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(
        dkim_selector="infranet", dkim_domain="example.org", dkim_key_file=str(key)))
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"anna@example.org": {}})
        async with ctx.db.transaction() as session:
            await build_issue(session, ctx, Actor.cli(), period_key="dkim")
        await send_pending(ctx)
        [received] = smtp.messages
        msg = received.parse()
        signature = str(msg["DKIM-Signature"])
        signed = re.search(r"h=([^;]+)", signature.replace(" ", "")).group(1).lower().split(":")
        assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post", "list-id"} <= set(signed)

        def dns(name: bytes, timeout: int = 5) -> bytes:
            assert name == b"infranet._domainkey.example.org."
            return record

        assert dkim.verify(received.data, dnsfunc=dns)
        tampered = received.data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                         b"List-Unsubscribe-Post: List-Unsubscribe=Two-Click")
        assert not dkim.verify(tampered, dnsfunc=dns)
    finally:
        await ctx.db.dispose()


async def test_presend_checks_refuse_what_hurts_delivery(db_url: str, tmp_path: Path,
                                                        smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(
        from_address="newsletter@localhost", reply_to=None))
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"anna@example.org": {}})
        with pytest.raises(ValidationFailed, match="no real domain"):
            async with ctx.db.transaction() as session:
                await build_issue(session, ctx, Actor.cli(), period_key="bad-from")
        async with ctx.db.transaction() as session:
            assert not (await issue_status(session, ctx))  # nothing half-built
    finally:
        await ctx.db.dispose()
    # A branded template with a relative link to the service and 120 KB of HTML.
    brand = tmp_path / "brand"
    brand.mkdir()
    (brand / "issue.html").write_text(
        '<html><body><a href="/newsletter/archive">archiwum</a>'
        '<a href="http://127.0.0.1:8080/newsletter/subscribe">x</a>{{ title }}<p>'
        + "ż" * 70000 + "</p></body></html>", encoding="utf-8")
    ctx = await newsletter_context(db_url, tmp_path / "two", smtp.smtp_settings(),
                                   newsletter={"template_dir": str(brand)})
    try:
        async with ctx.db.transaction() as session:
            await add_note(session, ctx, Actor.cli(), "Notka")
        await add_subscribers(ctx, {"anna@example.org": {}})
        with pytest.raises(ValidationFailed) as caught:
            async with ctx.db.transaction() as session:
                await build_issue(session, ctx, Actor.cli(), period_key="bad-html")
        message = str(caught.value)
        assert "Gmail clips" in message and "/newsletter/archive" in message
        assert "http://127.0.0.1:8080/newsletter/subscribe" in message
        async with ctx.db.transaction() as session:
            result = await preview(session, ctx, Actor.cli())
        assert result.errors and "ż" * 100 in result.html  # the branded template is used
    finally:
        await ctx.db.dispose()


async def test_maildir_outbox_without_smtp_host(db_url: str, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import mailbox

    caplog.set_level(logging.INFO, logger="infranet.newsletter")
    ctx = await newsletter_context(db_url, tmp_path, {"reply_to": "biuro@example.org"})
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"anna@example.org": {}, "ola@example.org": {"language": "en"}})
        async with ctx.db.transaction() as session:
            await build_issue(session, ctx, Actor.cli(), period_key="outbox")
        report = await send_pending(ctx)
        assert report.sent == 2
        box = mailbox.Maildir(str(tmp_path / "data" / "outbox"), factory=None, create=False)
        messages = [box.get_message(key) for key in list(box.iterkeys())]
        assert sorted(m["To"] for m in messages) == ["anna@example.org", "ola@example.org"]
        assert all(m.is_multipart() and m["List-Unsubscribe"] for m in messages)
        assert any("outbox" in r.getMessage() for r in caplog.records)
        async with ctx.db.transaction() as session:
            [status] = await issue_status(session, ctx)
        assert status.status == "done" and status.counts["sent"] == 2
    finally:
        await ctx.db.dispose()


def _normalised(data: bytes) -> bytes:
    """A message with what is meant to differ between two builds (boundary, Date,
    Message-ID) replaced by fixed text."""
    data = re.sub(rb"=_[0-9a-f]{24}", b"=_BOUNDARY", data)
    data = re.sub(rb"(?m)^Date: [^\r]*\r\n", b"Date: X\r\n", data)
    return re.sub(rb"(?m)^Message-ID: [^\r]*\r\n", b"Message-ID: X\r\n", data)


async def test_prepared_segments_give_the_same_message_as_a_full_build(db_url: str,
                                                                       tmp_path: Path) -> None:
    """The sender fills readers' values into parts prepared once per selection; each
    message must be the one `build()` makes from scratch, byte for byte."""
    from sqlalchemy import select

    from infranet.newsletter.compose import Composer, SubscriberRef
    from infranet.storage.models import Delivery, Subscriber

    ctx = await newsletter_context(db_url, tmp_path, newsletter={"title": "Wiadomości: żółw"})
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {
            "anna@example.org": {}, "ben@example.com": {"language": "en"},
            "olsztyn@example.org": {"districts": ["m. Olsztyn"]},
            "elk@example.org": {"districts": ["podregion ełcki"]},
            "o'brien&co@example.org": {"categories": ["meeting"]},
            "lukasz@przykład.example.org": {},
        })
        async with ctx.db.transaction() as session:
            await add_note(session, ctx, Actor.cli(), "Notka <b>redakcji</b> & \"cudzysłów\"\n.kropka")
            built = await build_issue(session, ctx, Actor.cli(), period_key="seg")
            rows = (await session.execute(
                select(Delivery.id, Subscriber.id, Subscriber.email, Subscriber.language,
                       Subscriber.districts, Subscriber.categories, Subscriber.status,
                       Subscriber.token_version)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.issue_id == built.issue.id))).all()
        assert len(rows) == 6
        composer = Composer(ctx)
        content = await composer.content(built.issue.id)
        for row in rows:
            subscriber = dict(row._mapping)
            delivery_id = subscriber.pop("id")
            subscriber["id"] = row[1]
            ref = SubscriberRef.of(subscriber)
            selection = composer.selection(built.issue.id, content, ref)
            assert composer.segment(built.issue.id, content, selection, ref.language) is not None
            fast = await composer.issue_message(built.issue.id, subscriber, delivery_id, eightbit=True)
            full = composer.build(built.issue.id, content, ref, delivery_id=delivery_id, eightbit=True)
            assert fast is not None and full is not None
            assert fast.eightbit and fast.recipient == full.recipient == ref.email
            assert _normalised(fast.data) == _normalised(full.data)
            assert fast.message_id.startswith(f"<{built.issue.id}.{delivery_id}.")
    finally:
        await ctx.db.dispose()


def test_prepared_part_refuses_values_that_break_8bit() -> None:
    """A value that would push its line past SMTP's limit, or that holds a line break,
    sends the message back to `build()` (which picks base64)."""
    from infranet.newsletter.mime import LINE_LIMIT, MessageFactory, PartTemplate

    part = PartTemplate.make(["Witaj " + "x" * (LINE_LIMIT - 40), "email", "!\nkoniec"])
    assert part is not None
    filled = part.fill({"email": b"a@example.org"})
    assert filled is not None
    assert b"".join(filled) == ("Witaj " + "x" * (LINE_LIMIT - 40) + "a@example.org!\r\nkoniec\r\n").encode()
    assert part.fill({"email": b"a" * 40 + b"@example.org"}) is None
    assert PartTemplate.make(["y" * (LINE_LIMIT + 1) + "\n", "email", "\n"]) is None
    assert PartTemplate.make(["a\nb\n" + "y" * (LINE_LIMIT + 1) + "\nc", "email", "\n"]) is None
    assert PartTemplate.make(["a\r\nb", "email", "\n"]) is None
    assert PartTemplate.make(["ends with a value ", "email", ""]) is None
    factory = MessageFactory(from_address="Sieć <newsletter@example.org>", subject="Temat")
    short = PartTemplate.make(["Adres: ", "email", "\n"])
    assert short is not None
    assert factory.build_filled(recipient="a@example.org", text=short, html=short,
                                text_values={"email": "a@example.org\r\nBcc: x@example.org"},
                                html_values={"email": "a@example.org"}) is None


def test_prepared_part_knows_when_dot_stuffing_is_needed() -> None:
    """Messages from prepared parts skip the search for lines starting with "." only
    when none can: not in the literal text, not from a value at the start of a line."""
    from infranet.newsletter.mime import MessageFactory, PartTemplate
    from infranet.newsletter.outbound import transparent

    factory = MessageFactory(from_address="Sieć <newsletter@example.org>", subject="Temat")
    plain = PartTemplate.make(["Adres: ", "email", "\nkoniec\n"])
    dotted = PartTemplate.make(["Adres:\n.kropka ", "email", "\n"])
    at_start = PartTemplate.make(["Adres:\n", "email", "\nkoniec\n"])
    assert plain and dotted and at_start
    assert plain.dot_free and not dotted.dot_free and at_start.dot_free

    def build(part: PartTemplate, email: str) -> bytes:
        envelope = factory.build_filled(recipient="a@example.org", text=part, html=plain,
                                        text_values={"email": email}, html_values={"email": email})
        assert envelope is not None
        return transparent(envelope.data, envelope.crlf, envelope.dot_free)

    assert b"\r\n.." not in build(plain, "a@example.org")
    assert b"\r\n..kropka" in build(dotted, "a@example.org")
    assert b"\r\n..dot@example.org" in build(at_start, ".dot@example.org")
    assert b"\r\n.." not in build(at_start, "a@example.org")
