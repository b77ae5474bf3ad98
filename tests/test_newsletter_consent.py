"""Consent is the subscriber's alone: an import never brings back an address that left.

Run through the real `infranet newsletter` parser against real storage (both engines) and a
real SMTP server (aiosmtpd)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from infranet.cli import build_parser
from infranet.newsletter.subscribers import record_hard_bounce, unsubscribe
from infranet.newsletter.tokens import make_token
from infranet.storage.models import Subscriber
from tests.newsletter_support import add_subscribers, newsletter_context, seed_content
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401


async def run(ctx: Any, *argv: str) -> int:
    args = build_parser().parse_args(["newsletter", *argv])
    return await args.handler(ctx, args) or 0


async def statuses(ctx: Any) -> dict[str, str]:
    async with ctx.db.transaction() as session:
        return {s.email: s.status for s in (await session.scalars(select(Subscriber))).all()}


@pytest.mark.parametrize("consent", ["--consented", "--not-consented"])
async def test_import_never_brings_back_who_left(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                                 capsys: pytest.CaptureFixture[str],
                                                 consent: str) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(),
                                   newsletter={"max_hard_bounces": 1})
    # Late evening in UTC is already the next day in the region: the report gives the
    # day the person left as the region's calendar has it (a CI run at 23:xx UTC found it).
    evening = datetime.combine(ctx.now().date(), time(23, 30), tzinfo=UTC)
    ctx.clock = lambda: evening
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"left@example.org": {}, "bounced@example.org": {},
                                    "erased@example.org": {}, "stays@example.org": {}})
        async with ctx.db.transaction() as session:
            rows = {s.email: s for s in (await session.scalars(select(Subscriber))).all()}
            left = rows["left@example.org"]
            await unsubscribe(session, ctx, left.id, make_token(ctx, "unsubscribe", left))
            assert await record_hard_bounce(session, ctx, rows["bounced@example.org"].id)
        assert await run(ctx, "forget", "erased@example.org") == 0
        capsys.readouterr()

        csv_file = tmp_path / "list.csv"
        csv_file.write_text("email\nLeft@example.org\nbounced@example.org\nerased@example.org\n"
                            "new@example.org\n", encoding="utf-8")
        assert await run(ctx, "import", str(csv_file), consent) == 0
        out, err = capsys.readouterr()
        day = (evening.date() + timedelta(days=1)).isoformat()
        assert f"left@example.org: unsubscribed on {day}, skipped" in out + err
        assert "bounced@example.org: disabled by bounces on" in out + err
        assert "erased@example.org: erased on" in out + err
        assert "3 skipped" in out
        assert await statuses(ctx) == {
            "left@example.org": "unsubscribed", "bounced@example.org": "disabled",
            "stays@example.org": "confirmed",
            "new@example.org": "confirmed" if consent == "--consented" else "pending"}
        # no confirmation e-mail to those who left; the next issue reaches none of them
        assert set(smtp.recipients()) <= {"new@example.org"}
        assert await run(ctx, "build") == 0
        assert await run(ctx, "send") == 0
        issue_to = [p["To"] for p in smtp.parsed() if "List-Unsubscribe" in p]
        expected = ["stays@example.org"] + (["new@example.org"] if consent == "--consented" else [])
        assert sorted(issue_to) == sorted(expected)
    finally:
        await ctx.db.dispose()


async def test_the_person_can_come_back_through_double_opt_in(
        db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    from infranet.newsletter.subscribers import subscribe

    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await add_subscribers(ctx, {"left@example.org": {}})
        async with ctx.db.transaction() as session:
            row = (await session.scalars(select(Subscriber))).one()
            await unsubscribe(session, ctx, row.id, make_token(ctx, "unsubscribe", row))
        async with ctx.db.transaction() as session:
            result = await subscribe(session, ctx, "left@example.org", source="form")
        assert result.needs_confirmation
        assert await statuses(ctx) == {"left@example.org": "pending"}
    finally:
        await ctx.db.dispose()


async def test_a_test_copy_never_carries_a_subscribers_links(
        db_url: str, tmp_path: Path, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    import re

    from tests.test_newsletter_web import client_for

    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"ala@example.org": {"districts": ["ełcki"]}})
        assert await run(ctx, "preview", "--subscriber", "ala@example.org",
                         "--send-test", "editor@example.org") == 0
        [mail] = smtp.parsed()
        assert mail["To"] == "editor@example.org"
        assert mail["Subject"].startswith("[TEST] ")
        text = mail.get_body(("plain",)).get_content()
        assert "Spotkanie sieci w Ełku" in text  # still the copy Ala would get
        links = re.findall(r"https://newsletter\.example\.org/newsletter/[^\s<>\"]*", text)
        header = mail["List-Unsubscribe"]
        assert links and "mailto:" not in header
        [one_click] = re.findall(r"<(https://[^>]+)>", header)
        async with await client_for(ctx) as client:
            # what a mail provider does with List-Unsubscribe-Post, and a click on each link
            posted = await client.post(one_click, data={"List-Unsubscribe": "One-Click"})
            assert posted.status_code == 200 and "test" in posted.text.lower()
            for link in links:
                if "/archive" in link or link.endswith("/newsletter/privacy"):  # not personal
                    continue
                shown = await client.get(link.replace("&amp;", "&"))
                assert shown.status_code == 200 and "kopia testowa" in shown.text.lower()
                posted = await client.post(link.replace("&amp;", "&"),
                                           data={"List-Unsubscribe": "One-Click"})
                assert posted.status_code == 200
        assert await statuses(ctx) == {"ala@example.org": "confirmed"}
    finally:
        await ctx.db.dispose()


async def test_a_reader_who_signs_up_again_gets_their_preferences_link(
        db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    import asyncio

    from tests.test_newsletter_web import client_for, link_in

    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    form = {"email": "ala@example.org", "language": "pl", "consent": "yes"}
    try:
        await add_subscribers(ctx, {"ala@example.org": {"districts": ["ełcki"]}})
        async with await client_for(ctx) as client:
            answers = [await client.post("/newsletter/subscribe", data=form) for _ in range(3)]
            stranger = await client.post("/newsletter/subscribe",
                                         data={**form, "email": "nowy@example.org"})
            for _ in range(50):
                if len(smtp.messages) >= 2:
                    break
                await asyncio.sleep(0.05)
            # the same answer whatever the address's state: no enumeration
            assert {a.status_code for a in answers} == {stranger.status_code} == {200}
            assert {a.text for a in answers} == {stranger.text}
            mails = {m["To"]: m for m in smtp.parsed()}
            assert sorted(smtp.recipients()) == ["ala@example.org", "nowy@example.org"]  # once
            body = mails["ala@example.org"].get_body(("plain",)).get_content()
            preferences = link_in(body, "/newsletter/preferences")
            page = await client.get(preferences.removeprefix("https://newsletter.example.org"))
            assert page.status_code == 200 and "ala@example.org" in page.text
        assert (await statuses(ctx))["ala@example.org"] == "confirmed"
    finally:
        await ctx.db.dispose()


async def test_privacy_notice_on_the_form_the_confirmation_and_every_email(
        db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    from tests.test_newsletter_web import client_for, link_in

    ctx = await newsletter_context(
        db_url, tmp_path, smtp.smtp_settings(),
        newsletter={"privacy_controller": "Stowarzyszenie Sieć NGO, ul. Długa 1, Olsztyn",
                    "privacy_contact": "iod@siec.example.org"})
    privacy = "https://newsletter.example.org/newsletter/privacy"
    parts_pl = ["Administrator", "Kontakt", "Cel", "Podstawa prawna", "Jak długo", "Twoje prawa"]
    try:
        await seed_content(ctx)
        async with await client_for(ctx) as client:
            for lang, words in (("pl", [*parts_pl, "art. 6 ust. 1 lit. a RODO", "UODO"]),
                                ("en", ["Controller", "Legal basis", "Retention", "Your rights",
                                        "consent"])):
                for path in ("/newsletter/subscribe", "/newsletter/privacy"):
                    page = await client.get(f"{path}?lang={lang}")
                    assert page.status_code == 200
                    for word in [*words, "Stowarzyszenie Sieć NGO", "iod@siec.example.org"]:
                        assert word in page.text, (lang, path, word)
            answer = await client.post("/newsletter/subscribe", data={
                "email": "ala@example.org", "language": "pl", "consent": "yes"})
            assert answer.status_code == 200
            [confirmation] = smtp.parsed()
            for kind in ("plain", "html"):
                assert privacy in confirmation.get_body((kind,)).get_content()
            confirm = link_in(confirmation.get_body(("plain",)).get_content(), "/newsletter/confirm")
            page = await client.get(confirm.removeprefix("https://newsletter.example.org"))
            assert page.status_code == 200
            assert all(word in page.text for word in [*parts_pl, "Stowarzyszenie Sieć NGO"])
            await client.post(confirm.removeprefix("https://newsletter.example.org"))
        assert await run(ctx, "build") == 0 and await run(ctx, "send") == 0
        issue = smtp.parsed()[-1]
        assert "List-Unsubscribe" in issue
        for kind in ("plain", "html"):
            assert privacy in issue.get_body((kind,)).get_content()
    finally:
        await ctx.db.dispose()
