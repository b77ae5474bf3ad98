"""Newsletter commands in the bot, and newsletter alerts reaching the admins."""

from __future__ import annotations

import asyncio
import logging
import mailbox

import pytest
from sqlalchemy import select

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
    await bot.ctx.alerts.notify("the SMTP server refuses connections", "serwer SMTP odrzuca połączenia")
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


# --- what the newsletter's alerts offer: resend the unknown ones, resume a paused issue --------


async def _issue_for(bot: BotHarness, emails: list[str]) -> int:
    from infranet.newsletter.issues import add_note, build_issue
    from infranet.storage.actors import Actor

    async with bot.ctx.db.transaction() as session:
        for email in emails:
            await subscribe(session, bot.ctx, email, source="import", consented=True)
        await add_note(session, bot.ctx, Actor.cli(), "Notka wydania")
        built = await build_issue(session, bot.ctx, Actor.cli(), period_key="alerts")
    assert built.issue is not None and built.recipients == len(emails)
    return built.issue.id


async def _set_status(bot: BotHarness, issue_id: int, emails: list[str], status: str) -> None:
    """What a crash leaves: deliveries the server may or may not have got."""
    from sqlalchemy import update

    from infranet.storage.models import Delivery

    async with bot.ctx.db.transaction() as session:
        await session.execute(update(Delivery).where(
            Delivery.issue_id == issue_id, Delivery.email.in_(emails))
            .values(status=status, handed_at=bot.ctx.now(), claimed_by=None))


async def _statuses(bot: BotHarness, issue_id: int) -> dict[str, str]:
    from infranet.storage.models import Delivery

    async with bot.ctx.db.transaction() as session:
        rows = await session.scalars(select(Delivery).where(Delivery.issue_id == issue_id))
        return {d.email: d.status for d in rows.all()}


async def test_resend_unknown_from_the_alert_resends_exactly_those_once(bot: BotHarness) -> None:
    from infranet.newsletter.recovery import alert_unknown

    api = bot.api
    await bot.member(USER, "Fundacja Testowa")
    emails = ["a@example.org", "b@example.org", "c@example.org"]
    issue_id = await _issue_for(bot, emails)
    await _set_status(bot, issue_id, emails[:2], "unknown")
    await _set_status(bot, issue_id, emails[2:], "sent")
    await alert_unknown(bot.ctx, [(issue_id, 2)])
    alert = await api.next_reply(ADMIN_ID)
    assert f"#{issue_id}" in alert.text and "nie wiadomo" in alert.text
    button = alert.button("Wyślij ponownie (2)")

    forged = await api.ask(USER, "/start")  # not an admin: the server refuses, nothing changes
    assert "tylko administratorzy" in (await api.click(USER, forged, button)).text

    confirm = await api.click(ADMIN_ID, alert, button)
    assert "2 wiadomości" in confirm.text and "drugą kopię" in confirm.text
    # a delivery that became unknown after the alert is not part of what it offered
    await _set_status(bot, issue_id, emails[2:], "unknown")
    done = await api.click(ADMIN_ID, confirm, confirm.button("Tak"))
    assert f"#{issue_id}: 2 wiadomości" in done.text
    await _wait_for_mail(bot, "a@example.org")
    await _wait_for_mail(bot, "b@example.org")
    for _ in range(50):
        if (await _statuses(bot, issue_id))["b@example.org"] == "sent":
            break
        await asyncio.sleep(0.1)
    assert await _statuses(bot, issue_id) == {"a@example.org": "sent", "b@example.org": "sent",
                                              "c@example.org": "unknown"}

    again = await api.click(ADMIN_ID, confirm, confirm.button("Tak"))  # pressed twice
    assert "już załatwił" in again.text
    await asyncio.sleep(0.3)
    assert sorted(_recipients(bot)) == ["a@example.org", "b@example.org"]


async def test_a_paused_issue_is_resumed_from_its_alert(bot: BotHarness) -> None:
    """A real SMTP server refuses the sender (DMARC) for the first readers: the issue pauses,
    the admins get an alert with a button, and the button resumes it once."""
    from infranet.config import NewsletterSettings, SmtpSettings
    from infranet.newsletter.issues import send_pending
    from tests.smtp_server import SmtpServer

    api = bot.api
    bot.ctx.settings.newsletter = NewsletterSettings.model_validate(
        {**bot.ctx.settings.newsletter.model_dump(), "pause_sample": 5})
    with SmtpServer() as server:
        bot.ctx.settings.smtp = SmtpSettings.model_validate(server.smtp_settings(concurrency=1))
        server.reject(lambda r: r.endswith("@strict.example"), 550,
                      "5.7.26 Unauthenticated email is not accepted due to DMARC policy")
        emails = ["s1@strict.example", "s2@strict.example", "ok1@example.org", "ok2@example.org",
                  "ok3@example.org", "ok4@example.org"]
        issue_id = await _issue_for(bot, emails)
        report = await send_pending(bot.ctx)
        assert report.paused == [issue_id]
        alert = await api.next_reply(ADMIN_ID)
        assert f"#{issue_id}" in alert.text and "wstrzymano" in alert.text
        button = alert.button("Wznów")
        await bot.member(USER, "Fundacja Testowa")
        forged = await api.ask(USER, "/start")
        assert "tylko administratorzy" in (await api.click(USER, forged, button)).text
        assert len(server.recipients()) <= 1  # at most the one claimed ahead went out

        resumed = await api.click(ADMIN_ID, alert, button)
        assert f"#{issue_id} wznowione" in resumed.text
        for _ in range(100):
            if len(server.recipients()) == 4:
                break
            await asyncio.sleep(0.1)
        assert sorted(server.recipients()) == [e for e in sorted(emails) if "strict" not in e]
        again = await api.click(ADMIN_ID, alert, button)
        assert "już załatwił" in again.text
        async with bot.ctx.db.transaction() as session:
            disabled = {s.email: s.hard_bounces for s in (await session.scalars(select(Subscriber))).all()}
        assert disabled["s1@strict.example"] == 0 and disabled["s2@strict.example"] == 0
