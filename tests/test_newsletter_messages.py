"""Issue messages as they arrive at a real SMTP server: headers, parts, personalisation,
escaping of hostile content, DKIM, pre-send checks."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from infranet.newsletter.issues import build_issue, send_pending
from infranet.storage.actors import Actor
from tests.newsletter_support import add_subscribers, newsletter_context, seed_content
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401

pytestmark = pytest.mark.asyncio


def parts(msg):
    assert msg.get_content_type() == "multipart/alternative"
    payload = msg.get_payload()
    assert [p.get_content_type() for p in payload] == ["text/plain", "text/html"]
    return payload[0].get_content(), payload[1].get_content()


async def test_issue_headers_and_parts(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(),
                                   newsletter={"title": "Wiadomości z sieci: żółw"})
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"anna@example.org": {}, "ben@example.com": {"language": "en"}})
        async with ctx.db.transaction() as session:
            built = await build_issue(session, ctx, Actor.cli(), period_key="t1")
        assert built.recipients == 2
        report = await send_pending(ctx)
        assert report.sent == 2
        by_rcpt = {m.recipients[0]: m for m in smtp.messages}
        msg = by_rcpt["anna@example.org"].parse()
        assert msg["To"] == "anna@example.org"
        assert str(msg["From"]) == "Sieć Organizacji Żółć <newsletter@example.org>"
        raw = by_rcpt["anna@example.org"].data.decode("ascii")  # 7-bit clean on the wire
        assert "=?utf-8?" in raw.split("\r\n\r\n")[0]
        assert msg["Subject"].startswith("Wiadomości z sieci: żółw: ")
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
        assert "Warsztaty grantowe w Olsztynie" in text and "Warsztaty grantowe w Olsztynie" in html
        assert "Szkolenie z księgowości" in text and "Fundacja Łąki i Źródła" in html
        assert links[0] in text and links[0].replace("&", "&amp;") in html
        assert 'style="' in html  # CSS inlined
        assert "Nadchodzące wydarzenia" in text
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
