"""Newsletter commands in the bot, and newsletter alerts reaching the admins."""

from __future__ import annotations

import asyncio
import logging
import mailbox

import pytest
from sqlalchemy import select

from infranet.newsletter import alerts
from infranet.newsletter.outbound import outbox_dir
from infranet.newsletter.subscribers import subscribe
from infranet.storage.models import NewsletterNote, Subscriber, SubscriberStatus
from tests.bot_fixtures import ADMIN_ID, BotHarness

USER = 9101


def _recipients(bot: BotHarness) -> list[str]:
    path = outbox_dir(bot.ctx)
    if not path.exists():
        return []
    box = mailbox.Maildir(str(path), factory=None, create=False)
    return [str(message["To"]) for message in box]


async def _wait_for_mail(bot: BotHarness, address: str, seconds: float = 10) -> None:
    for _ in range(int(seconds * 10)):
        if any(address in to for to in _recipients(bot)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message to {address} in the outbox: {_recipients(bot)}")


async def test_subscribe_from_the_bot(bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="infranet")
    api = bot.api
    assert "/subscribe adres@example.org" in (await api.ask(USER, "/subscribe")).text
    bad = await api.ask(USER, "/subscribe ala@@example")
    assert "ala@@example" in bad.text
    good = await api.ask(USER, "/subscribe Ala@Example.org")
    assert "ala@example.org" in good.text and "Sprawdź skrzynkę" in good.text
    await _wait_for_mail(bot, "ala@example.org")
    # the outbox's log line says where the message went, not to whom
    assert "a***@example.org" in caplog.text and "ala@example.org" not in caplog.text
    async with bot.ctx.db.transaction() as session:
        row = await session.scalar(select(Subscriber))
        assert row is not None and row.status == SubscriberStatus.PENDING
        assert row.consent_source == "bot" and row.language == "pl"
    # Asking again gives the same answer: whether an address is known stays private.
    assert "Sprawdź skrzynkę" in (await api.ask(USER, "/subscribe ala@example.org")).text
    private = await api.ask(USER, "/subscribe x@example.org", chat_id=-100200, chat_type="group")
    assert "prywatnej" in private.text


async def test_admin_note_preview_and_send(bot: BotHarness) -> None:
    api = bot.api
    await bot.member(USER, "Fundacja Testowa")
    assert "tylko administratorzy" in (await api.ask(USER, "/newsletter_note Hej")).text
    assert "tylko administratorzy" in (await api.ask(USER, "/newsletter_send")).text
    saved = await api.ask(ADMIN_ID, "/newsletter_note Nabór do <Rady> & spotkanie 5 > 3")
    assert "Notka #1" in saved.text
    async with bot.ctx.db.transaction() as session:
        note = await session.scalar(select(NewsletterNote))
        assert note is not None and note.text == "Nabór do <Rady> & spotkanie 5 > 3"
        await subscribe(session, bot.ctx, "czytelnik@example.org", source="import", consented=True)
    shown = await api.ask(ADMIN_ID, "/newsletter_preview")
    assert "Podgląd" in shown.text
    assert "Nabór do <Rady> & spotkanie 5 > 3" in " ".join(
        [shown.text, *(m.text for m in api.drain(ADMIN_ID))])
    confirm = await api.ask(ADMIN_ID, "/newsletter_send")
    forged = await api.ask(USER, "/start")
    assert "tylko administratorzy" in (await api.click(USER, forged, confirm.button("Wyślij"))).text
    started = await api.click(ADMIN_ID, confirm, confirm.button("Wyślij"))
    assert "liczba odbiorców: 1" in started.text
    await _wait_for_mail(bot, "czytelnik@example.org")


async def test_newsletter_alerts_reach_admins(bot: BotHarness) -> None:
    await bot.member(ADMIN_ID + 1, None, admin=True, language="en")
    await alerts.notify("the SMTP server refuses connections", "serwer SMTP odrzuca połączenia")
    assert "serwer SMTP odrzuca" in (await bot.api.next_reply(ADMIN_ID)).text
    assert "SMTP server refuses" in (await bot.api.next_reply(ADMIN_ID + 1)).text


async def test_subscribe_answers_before_the_mail_server_does(bot: BotHarness) -> None:
    """The answer must not wait for the SMTP exchange: how long it takes would tell whether
    a confirmation e-mail went out, i.e. whether the address was new."""
    import threading
    import time

    from infranet.config import SmtpSettings
    from tests.smtp_server import SmtpServer

    release = threading.Event()
    with SmtpServer() as server:
        server.handler.on_message = lambda _count: release.wait(5)  # a mail server taking its time
        bot.ctx.settings.smtp = SmtpSettings.model_validate(server.smtp_settings())
        started = time.monotonic()
        answer = await bot.api.ask(USER, "/subscribe wolno@example.org")
        waited = time.monotonic() - started
        assert "Sprawdź skrzynkę" in answer.text and waited < 2, waited
        release.set()
        for _ in range(100):  # and the confirmation still goes out
            if server.recipients():
                break
            await asyncio.sleep(0.05)
        assert server.recipients() == ["wolno@example.org"]
