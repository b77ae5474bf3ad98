"""Subscriptions over HTTP (the Starlette app of the service) with a real SMTP server:
double opt-in end to end, preferences, RFC 8058 one-click unsubscribe, archive."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from infranet.http import create_app
from infranet.newsletter import service
from infranet.newsletter.issues import add_note, build_issue, send_pending
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, Subscriber
from tests.newsletter_support import add_subscribers, newsletter_context, seed_content
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401

BASE = "https://newsletter.example.org"


async def client_for(ctx: Any) -> httpx.AsyncClient:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    app = create_app(ctx, [service.build(ctx, AsyncIOScheduler())])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def link_in(text: str, path: str) -> str:
    match = re.search(re.escape(BASE + path) + r"\?[^\s\"<>]+", text)
    assert match, f"no {path} link in {text[:500]}"
    return match.group(0).replace("&amp;", "&")


async def subscribers(ctx: Any) -> list[Subscriber]:
    async with ctx.db.transaction() as session:
        return list((await session.scalars(select(Subscriber).order_by(Subscriber.id))).all())


async def test_double_opt_in_end_to_end(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        async with await client_for(ctx) as client:
            form = await client.get("/newsletter/subscribe")
            assert form.status_code == 200 and "ełcki" in form.text and 'name="consent"' in form.text
            answer = await client.post("/newsletter/subscribe", data={
                "email": "  Ala.Kowalska@Example.ORG ", "language": "pl", "consent": "yes",
                "districts": ["olsztyński", "podregion-elcki"], "categories": ["training"]})
            assert answer.status_code == 200 and "wysłaliśmy" in answer.text
            [pending] = await subscribers(ctx)
            assert pending.email == "ala.kowalska@example.org" and pending.status == "pending"
            assert pending.districts == ["olsztynski", "podregion-elcki"]
            assert pending.consent_source == "form" and pending.consent_at is None

            [mail] = smtp.parsed()
            assert mail["To"] == "ala.kowalska@example.org" and mail["Subject"].startswith("Potwierdź")
            assert mail["List-Unsubscribe"] is None and mail["Precedence"] is None
            text = mail.get_body(("plain",)).get_content()
            confirm = link_in(text, "/newsletter/confirm")
            assert confirm in mail.get_body(("html",)).get_content().replace("&amp;", "&")

            # the same address again: same answer, no duplicate; a confirmed one sends nothing
            again = await client.post("/newsletter/subscribe", data={
                "email": "ala.kowalska@example.org", "consent": "yes", "language": "pl",
                "districts": ["olsztyński", "podregion-elcki"], "categories": ["training"]})
            assert again.status_code == 200 and again.text == answer.text
            assert len(await subscribers(ctx)) == 1

            wrong = await client.get(confirm.replace("&t=", "&t=x"))
            assert wrong.status_code == 400 and "nieprawidłowy" in wrong.text
            forged = await client.post(confirm.replace("&t=", "&t=x"))
            assert forged.status_code == 400 and "nieprawidłowy" in forged.text
            # a mail gateway fetching the link to scan it confirms nobody: GET shows a button
            for _ in range(2):
                shown = await client.get(confirm)
                assert shown.status_code == 200 and '<form method="post"' in shown.text
                assert "ala.kowalska@example.org" in shown.text and "Potwierdzam zapis" in shown.text
            assert (await subscribers(ctx))[0].status == "pending"
            action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', shown.text)[1])
            assert action == confirm
            done = await client.post(action)
            assert done.status_code == 200 and "potwierdzony" in done.text
            # afterwards the link says so, and the button is not offered again
            after = await client.get(confirm)
            assert after.status_code == 200 and "potwierdzony" in after.text
            assert "<form" not in after.text
            [confirmed] = await subscribers(ctx)
            assert confirmed.status == "confirmed" and confirmed.consent_at is not None
            assert confirmed.consent_version

            sent_before = len(smtp.messages)
            third = await client.post("/newsletter/subscribe", data={
                "email": "ala.kowalska@example.org", "consent": "yes", "districts": ["piski"]})
            assert third.text == answer.text and len(smtp.messages) == sent_before
            assert (await subscribers(ctx))[0].districts == ["olsztynski", "podregion-elcki"]

            bad = await client.post("/newsletter/subscribe", data={"email": "nie-adres", "consent": "yes"})
            assert bad.status_code == 400 and "nie wygląda na adres e-mail" in bad.text
            no_consent = await client.post("/newsletter/subscribe", data={"email": "b@example.org"})
            assert no_consent.status_code == 400 and "zgodę" in no_consent.text
            unknown = await client.post("/newsletter/subscribe", data={
                "email": "c@example.org", "consent": "yes", "districts": ["olsztyńsky"]})
            assert unknown.status_code == 400 and "olsztyński" in unknown.text
            assert len(await subscribers(ctx)) == 1
    finally:
        await ctx.db.dispose()


async def test_confirmation_link_expires(db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    from datetime import timedelta

    from infranet.newsletter.outbound import send_confirmation
    from infranet.newsletter.subscribers import expire_pending, subscribe

    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        async with ctx.db.transaction() as session:
            result = await subscribe(session, ctx, "late@example.org", source="bot", language="en")
        await send_confirmation(ctx, result.subscriber_id)
        [mail] = smtp.parsed()
        assert mail["Subject"].startswith("Please confirm")
        link = link_in(mail.get_body(("plain",)).get_content(), "/newsletter/confirm")
        real_now = ctx.clock
        ctx.clock = lambda: real_now() + timedelta(days=8)
        async with await client_for(ctx) as client:
            answer = await client.get(link)
            assert answer.status_code == 400 and "expired" in answer.text
            assert "<form" not in answer.text
            pressed = await client.post(link)
            assert pressed.status_code == 400 and "expired" in pressed.text
        async with ctx.db.transaction() as session:
            assert await expire_pending(session, ctx) == 1
        assert await subscribers(ctx) == []
    finally:
        await ctx.db.dispose()


async def test_issue_links_preferences_one_click_and_archive(db_url: str, tmp_path: Path,
                                                             smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"anna@example.org": {}, "jan@example.org": {}})
        async with ctx.db.transaction() as session:
            built = await build_issue(session, ctx, Actor.cli(), period_key="web")
        await send_pending(ctx)
        mails = {m["To"]: m for m in smtp.parsed()}
        anna, jan = mails["anna@example.org"], mails["jan@example.org"]
        anna_text = anna.get_body(("plain",)).get_content()
        one_click = re.findall(r"<([^>]+)>", anna["List-Unsubscribe"])[0]
        assert one_click == link_in(anna_text, "/newsletter/unsubscribe")
        preferences = link_in(anna_text, "/newsletter/preferences")
        jan_click = re.findall(r"<([^>]+)>", jan["List-Unsubscribe"])[0]
        async with await client_for(ctx) as client:
            # the web version linked from the e-mail
            web = await client.get(link_in(anna_text.replace("/archive/", "/archive?x=/"),
                                           "/newsletter/archive").split("?")[0])
            assert web.status_code == 200 and f"/newsletter/archive/{built.issue.id}" in web.text
            page = await client.get(f"/newsletter/archive/{built.issue.id}?lang=en")
            assert page.status_code == 200 and "Upcoming events" in page.text
            assert "Warsztaty grantowe w Olsztynie" in page.text and "@@INFRANET" not in page.text
            assert "anna@example.org" not in page.text
            assert (await client.get("/newsletter/archive/999")).status_code == 404

            # preferences from the link: language and districts
            shown = await client.get(preferences)
            assert shown.status_code == 200 and "anna@example.org" in shown.text
            saved = await client.post(preferences, data={"language": "en", "districts": ["ełcki"],
                                                          "categories": ["meeting", "training"]})
            assert saved.status_code == 200 and "Preferences saved" in saved.text
            anna_row = (await subscribers(ctx))[0]
            assert (anna_row.language, anna_row.districts) == ("en", ["elcki"])
            assert anna_row.categories == ["meeting", "training"]
            forged = await client.get(preferences.replace("s=1", "s=2") if "s=1" in preferences
                                      else preferences.replace("s=2", "s=1"))
            assert forged.status_code == 400  # a token is bound to its address

            # GET shows a confirmation page and changes nothing
            confirm_page = await client.get(one_click)
            assert confirm_page.status_code == 200 and "<form method=\"post\"" in confirm_page.text
            assert (await subscribers(ctx))[0].status == "confirmed"
            # RFC 8058 one-click POST, as a mail client sends it
            response = await client.post(one_click, content="List-Unsubscribe=One-Click",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert response.status_code == 200
            rows = {s.email: s for s in await subscribers(ctx)}
            assert rows["anna@example.org"].status == "unsubscribed"
            assert rows["jan@example.org"].status == "confirmed"
            # repeating it is harmless; the old preferences link is dead
            assert (await client.post(one_click, data={"List-Unsubscribe": "One-Click"})).status_code == 200
            assert (await client.get(preferences)).status_code == 400
            # Anna's token does not work with Jan's id
            jan_id = rows["jan@example.org"].id
            swapped = re.sub(r"s=\d+", f"s={jan_id}", one_click)
            assert (await client.post(swapped, data={"List-Unsubscribe": "One-Click"})).status_code == 400
            assert (await client.post(jan_click, data={"List-Unsubscribe": "One-Click"})).status_code == 200
        async with ctx.db.transaction() as session:
            n = await session.scalar(select(func.count()).select_from(AuditLog)
                                     .where(AuditLog.action == "newsletter.unsubscribe"))
            assert n == 2
            # nobody left to write to: the next issue has no recipients
            await add_note(session, ctx, Actor.cli(), "x")
            nxt = await build_issue(session, ctx, Actor.cli(), period_key="web2")
        assert nxt.recipients == 0
    finally:
        await ctx.db.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_resubscribe_after_unsubscribe_needs_confirmation(db_url: str, tmp_path: Path,
                                                                smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await add_subscribers(ctx, {"back@example.org": {}})
        async with ctx.db.transaction() as session:
            row = (await session.scalars(select(Subscriber))).one()
            from infranet.newsletter import tokens
            from infranet.newsletter.subscribers import subscribe, unsubscribe

            await unsubscribe(session, ctx, row.id, tokens.make_token(ctx, "unsubscribe", row))
            result = await subscribe(session, ctx, "back@example.org")
        assert result.needs_confirmation
        [row] = await subscribers(ctx)
        assert row.status == "pending" and row.token_version == 2
    finally:
        await ctx.db.dispose()
