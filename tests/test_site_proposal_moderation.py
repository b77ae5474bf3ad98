"""A proposal sent on the site reaches the admins in the bot (the Bot API emulator) with
Publish / Reject, like any waiting event; the admin's decision reaches the proposer by
e-mail through a real SMTP server (aiosmtpd), in the proposer's language, once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from infranet.context import AppContext
from infranet.http import create_app
from infranet.site import proposal_outcomes
from infranet.site import service as site_service
from infranet.site.pages import Site
from infranet.storage.models import Event, EventProposal
from infranet.storage.types import utcnow
from tests.bot_fixtures import ADMIN_ID, BotHarness
from tests.conftest import make_context
from tests.http_app import BASE
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401


class Later:
    """Real time, moved on by the test: the form token wants a few seconds of reading."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.fixture
async def ctx(db_url: str, tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[AppContext]:
    """The `bot` fixture's context, with the SMTP server and the site's address."""
    context = await make_context(db_url, tmp_path / "data", smtp=smtp.smtp_settings(),
                                 http={"public_base_url": BASE})
    context.clock = Later()
    yield context
    await context.db.dispose()


def site_client(ctx: AppContext) -> httpx.AsyncClient:
    app = create_app(ctx, [site_service.build(ctx)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.8", 1)),
                             base_url=BASE)


async def propose(ctx: AppContext, client: httpx.AsyncClient, title: str, mail: str,
                  lang: str = "pl") -> int:
    path = "/events/new" + ("?lang=en" if lang == "en" else "")
    page = await client.get(path)
    found = re.search(r'name="token" value="([^"]+)"', page.text)
    assert found
    assert isinstance(ctx.clock, Later)
    ctx.clock.offset += timedelta(seconds=30)
    day = (utcnow() + timedelta(days=40)).date()
    sent = await client.post(path, data={
        "token": unescape(found.group(1)), "step": "send", "title": title,
        "start_date": day.isoformat(), "start_time": "10:00", "end_time": "12:00",
        "district": "elcki", "category": "meeting", "organiser_name": "Koło Gospodyń <Ełk>",
        "email": mail, "location": "Ełk, Dom Kultury"})
    assert sent.status_code == 200, sent.text[-800:]
    async with ctx.db.read() as session:
        return int(await session.scalar(select(Event.id).where(Event.title == title)) or 0)


def mails_to(smtp: SmtpServer, address: str) -> list[EmailMessage]:
    found = []
    for message in smtp.messages:
        if address in message.recipients:
            parsed = message.parse()
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_admin_publishes_in_the_bot_and_the_proposer_is_mailed_the_link(
        bot: BotHarness, smtp: SmtpServer) -> None:
    ctx = bot.ctx
    async with site_client(ctx) as client:
        event_id = await propose(ctx, client, "Spotkanie sąsiedzkie & <kawa>", "ala@example.org")
    waiting = await bot.api.next_reply(ADMIN_ID)
    assert "Do zatwierdzenia" in waiting.text and "Spotkanie sąsiedzkie & <kawa>" in waiting.text
    assert f"#{event_id}" in waiting.text and "Ełk, Dom Kultury" in waiting.text
    assert "Koło Gospodyń <Ełk>" in waiting.text  # who runs it, as the proposer typed it
    done = await bot.api.click(ADMIN_ID, waiting, waiting.button("Opublikuj"))
    assert "Opublikowano" in done.text
    site = Site(ctx)
    assert await proposal_outcomes.tell_outcomes(site) == 1
    [mail] = mails_to(smtp, "ala@example.org")
    assert mail["Subject"] == "Opublikowano: Spotkanie sąsiedzkie & <kawa>"
    assert f"{BASE}/events/{event_id}-spotkanie-sasiedzkie-kawa" in text_of(mail)
    assert await proposal_outcomes.tell_outcomes(site) == 0  # never twice
    assert len(mails_to(smtp, "ala@example.org")) == 1
    async with ctx.db.read() as session:
        kept = (await session.scalars(select(EventProposal))).one()
    assert kept.outcome == "published" and kept.told_at is not None


async def test_admin_rejects_and_the_proposer_is_told_in_english(
        bot: BotHarness, smtp: SmtpServer) -> None:
    ctx = bot.ctx
    async with site_client(ctx) as client:
        await propose(ctx, client, "Neighbours' breakfast", "bob@example.org", lang="en")
    waiting = await bot.api.next_reply(ADMIN_ID)
    assert "Neighbours' breakfast" in waiting.text
    done = await bot.api.click(ADMIN_ID, waiting, waiting.button("Odrzuć"))
    assert "Odrzucono" in done.text
    assert await proposal_outcomes.tell_outcomes(Site(ctx)) == 1
    [mail] = mails_to(smtp, "bob@example.org")
    assert mail["Subject"] == "Not published: Neighbours' breakfast"
    body = text_of(mail)
    assert body.startswith("Hello,") and "has not been published" in body and "/events/" not in body



async def test_a_refused_outcome_mail_is_not_retried_and_the_admins_hear_of_it(
        bot: BotHarness, smtp: SmtpServer) -> None:
    ctx = bot.ctx
    smtp.reject(lambda rcpt: rcpt.startswith("gone@"), 550)
    async with site_client(ctx) as client:
        event_id = await propose(ctx, client, "Festyn <na> łące", "gone@example.org")
    waiting = await bot.api.next_reply(ADMIN_ID)
    await bot.api.click(ADMIN_ID, waiting, waiting.button("Opublikuj"))
    assert await proposal_outcomes.tell_outcomes(Site(ctx)) == 0
    alert = await bot.api.next_reply(ADMIN_ID)
    assert f"#{event_id} „Festyn <na> łące”" in alert.text and "gone@example.org" in alert.text
    assert "550" in alert.text
    assert await proposal_outcomes.tell_outcomes(Site(ctx)) == 0  # claimed once: not tried again
    assert mails_to(smtp, "gone@example.org") == []
    await bot.api.silence(ADMIN_ID, 0.5)
