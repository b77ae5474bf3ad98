"""Organiser notices tell the truth: "Powiadomiłem organizatorów" names only the
organisations actually reached, in the bot or by e-mail (a real SMTP server,
aiosmtpd), and names apart those that could not be reached, with their contact."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime

from sqlalchemy import select

from infranet.calendar import events as calendar
from infranet.calendar.event_input import EventInput
from infranet.calendar.event_links import event_url
from infranet.config import SmtpSettings
from infranet.storage.actors import Actor
from infranet.storage.models import Event
from tests.bot_fixtures import BotHarness, skip_optional_steps
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ALICE, BOB = 1001, 2002
START, END = datetime(2026, 12, 5, 9, tzinfo=UTC), datetime(2026, 12, 5, 12, tzinfo=UTC)


async def _event_of(bot: BotHarness, org: str, title: str, **contact: str) -> None:
    """An event of `org` (created when missing), posted by the operator: the organisation
    need not have anybody in the bot."""
    organisation = await bot.org(org, **contact)
    async with bot.ctx.db.transaction() as session:
        await calendar.add_event(session, bot.ctx, Actor.cli(), EventInput(
            title=title, start=START, end=END, district="olsztyński",
            organisation_id=organisation.id))


async def _keep_clashing_date(bot: BotHarness) -> None:
    """Alice posts an event at the same time and keeps her date."""
    api = bot.api
    await api.ask(ALICE, "/event")
    await api.ask(ALICE, "Spotkanie sieci")
    reply = await api.ask(ALICE, "5.12.2026 10-11")
    category = await api.answer(ALICE, reply, reply.button("Całe województwo"))
    audience = await api.answer(ALICE, category, category.button("spotkanie"))
    place = await api.answer(ALICE, audience, audience.button("Dalej"))
    summary = await skip_optional_steps(api, ALICE, place)
    warning = await api.click(ALICE, summary, summary.button("Potwierdź"))
    saved = await api.click(ALICE, warning, warning.button("Zostaw"))
    assert "Zapisane" in saved.text


async def _setup(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja Alfa", contact_email="alfa@example.org")
    await bot.member(ALICE, "Fundacja Alfa", name="Alice")
    # In the bot, but Bob blocked it: reached by e-mail instead.
    await _event_of(bot, "Stowarzyszenie Beta", "Forum Beta", contact_email="beta@example.org")
    await bot.member(BOB, "Stowarzyszenie Beta", name="Bob")
    bot.api.chats_blocked.add(BOB)
    # Nobody in the bot, an e-mail address: reached by e-mail.
    await _event_of(bot, "Fundacja Gamma", "Warsztaty Gamma", contact_email="gamma@example.org")
    # Nobody in the bot, no e-mail: cannot be reached; its phone is shown.
    await _event_of(bot, "Koło Delta", "Zebranie Delta", phone="+48 89 123 45 67")


async def test_told_lists_only_organisations_reached(bot: BotHarness, smtp: SmtpServer) -> None:
    await _setup(bot)
    bot.ctx.settings.smtp = SmtpSettings.model_validate(smtp.smtp_settings())
    await _keep_clashing_date(bot)
    told = await bot.api.next_reply(ALICE)
    assert told.text.startswith("Powiadomiłem organizatorów:")
    assert "Fundacja Gamma (e-mailem na gamma@example.org)" in told.text
    assert "Stowarzyszenie Beta (e-mailem na beta@example.org)" in told.text
    assert "Delta" not in told.text
    missed = await bot.api.next_reply(ALICE)
    assert "Nie udało się powiadomić: Koło Delta" in missed.text
    assert "+48 89 123 45 67" in missed.text
    mails = {m["To"]: m for m in smtp.parsed()}
    assert set(mails) == {"gamma@example.org", "beta@example.org"}
    gamma = mails["gamma@example.org"]
    body = gamma.get_content()
    assert "Fundacja Alfa planuje „Spotkanie sieci”" in body and "„Warsztaty Gamma”" in body
    assert "alfa@example.org" in body and "<b>" not in body
    # the e-mail gives both events' pages on the site, as plain addresses
    async with bot.ctx.db.read() as session:
        pages = {e.title: event_url(bot.ctx.settings.http.public_base_url, e.id, e.title)
                 for e in (await session.scalars(select(Event))).all()}
    assert pages["Spotkanie sieci"] in body and pages["Warsztaty Gamma"] in body
    assert "<a " not in body
    assert "Ten sam termin" in gamma["Subject"]
    assert gamma["Reply-To"] == "alfa@example.org"


async def test_refused_email_is_not_reported_as_told(bot: BotHarness, smtp: SmtpServer) -> None:
    await _setup(bot)
    bot.ctx.settings.smtp = SmtpSettings.model_validate(smtp.smtp_settings())
    smtp.reject(lambda rcpt: rcpt == "gamma@example.org", 550)
    await _keep_clashing_date(bot)
    told = await bot.api.next_reply(ALICE)
    assert "Stowarzyszenie Beta" in told.text and "Gamma" not in told.text
    missed = [(await bot.api.next_reply(ALICE)).text for _ in range(2)]
    assert any("Fundacja Gamma" in m and "gamma@example.org" in m for m in missed)
    assert any("Koło Delta" in m for m in missed)


async def test_without_smtp_the_notice_goes_to_the_outbox(bot: BotHarness) -> None:
    await _setup(bot)
    assert not bot.ctx.settings.smtp.host
    await _keep_clashing_date(bot)
    told = await bot.api.next_reply(ALICE)
    assert "Fundacja Gamma (e-mailem na gamma@example.org)" in told.text
    box = mailbox.Maildir(str(bot.ctx.data_dir / "outbox"), create=False)
    assert sorted(m["To"] for m in box) == ["beta@example.org", "gamma@example.org"]
