"""Referrals without dead ends, end to end through the Bot API emulator:

- accepting keeps the client's details on screen, and `/referrals` opens each
  referral's details (the two organisations and the admins only; the referrer sees
  who decided and when);
- the duplicate-support warning comes before anything about the client is stored,
  with "send anyway" and "cancel";
- an organisation with nobody in the bot is told by e-mail (a real SMTP server), or
  the member hears it cannot be reached, with its contact, before anything is stored.
"""

from __future__ import annotations

from sqlalchemy import func, select

from infranet.config import SmtpSettings
from infranet.storage.models import Referral, ReferralStatus
from tests.bot_fixtures import ADMIN_ID, BotHarness
from tests.botapi import Sent
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401

A, B, C = 3101, 3201, 3301  # members of three organisations
NEED = "Pomoc w założeniu spółdzielni socjalnej"
CONTACT = "tel. 600 100 200, prezes@klient.example.org"


async def _setup(bot: BotHarness) -> None:
    await bot.org("Centrum Organizacji Pozarządowych Olsztyn", type="COP",
                  services=["information", "legal-advice"], districts=["m. Olsztyn"],
                  contact_email="cop@example.org")
    await bot.org("Ośrodek Wsparcia Ekonomii Społecznej Elbląg", type="OWES",
                  services=["training", "social-economy"], districts=["elbląski"],
                  contact_email="owes@example.org")
    await bot.org("Fundusz Lokalny Mazury", type="local-fund", services=["grants"])
    await bot.member(A, "Centrum Organizacji Pozarządowych Olsztyn", name="Alicja")
    await bot.member(B, "Ośrodek Wsparcia Ekonomii Społecznej Elbląg", name="Bartek")
    await bot.member(C, "Fundusz Lokalny Mazury", name="Celina")


async def _count(bot: BotHarness) -> int:
    async with bot.ctx.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Referral)) or 0)


async def _summary(bot: BotHarness, who: int, search: str, target: str, client: str,
                   ids: str = "skip") -> Sent:
    """The /refer form up to its confirmation screen."""
    api = bot.api
    await api.ask(who, "/refer")
    pick = await api.ask(who, search)
    kind = await api.click(who, pick, pick.button(target))
    await api.click(who, kind, kind.button("NGO"))
    ask_ids = await api.ask(who, client)
    if ids == "skip":
        await api.click(who, ask_ids, ask_ids.button("Pomiń"))
    else:
        await api.ask(who, ids)
    await api.ask(who, NEED)
    summary = await api.ask(who, CONTACT)
    assert "zgodził" in summary.text
    return summary


async def test_accepting_keeps_the_client_and_details_open_from_referrals(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    summary = await _summary(bot, A, "Elbląg", "Elbląg", "Stowarzyszenie Razem")
    await api.click(A, summary, summary.button("wyślij"))
    incoming = await api.next_reply(B)
    accepted = await api.click(B, incoming, incoming.button("Przyjmij"))
    # The accepting organisation still sees who the client is, the need and the contact.
    assert accepted.kind == "edit" and "Przyjęto skierowanie" in accepted.text
    assert "Stowarzyszenie Razem" in accepted.text and NEED in accepted.text
    assert "600 100 200" in accepted.text and "przyjęte — Bartek" in accepted.text
    # The referrer hears who decided, and can open the details.
    told = await api.next_reply(A)
    assert "przyjmuje skierowanie" in told.text and "Bartek" in told.text
    details = await api.click(A, told, told.button("Szczegóły"))
    assert details.kind == "send" and "Status: przyjęte — Bartek" in details.text
    assert "Od: Centrum Organizacji Pozarządowych Olsztyn (Alicja)" in details.text
    # The receiver opens it from /referrals: a button per referral.
    listing = await api.ask(B, "/referrals")
    opened = await api.click(B, listing, listing.button("#1"))
    assert NEED in opened.text and "prezes@klient.example.org" in opened.text
    # An old Accept says who decided and changes nothing.
    again = await api.click(B, incoming, incoming.button("Odmów"))
    assert again.kind == "edit" and "przyjęte — Bartek" in again.text
    assert "rozpatrzone przez: Bartek" in await api.next_answer()
    async with bot.ctx.db.read() as session:
        row = await session.scalar(select(Referral))
        assert row is not None and row.status == ReferralStatus.ACCEPTED
    # A third organisation cannot open it (checked on the server, forged button).
    own = await api.ask(C, "/help")
    refused = await api.click(C, own, listing.button("#1"))
    assert "Nie znaleziono" in refused.text and NEED not in refused.text
    # An admin sees the record, not the client's details.
    mine = await api.ask(ADMIN_ID, "/help")
    record = await api.click(ADMIN_ID, mine, listing.button("#1"))
    assert "Status: przyjęte — Bartek" in record.text
    assert "tylko obie organizacje" in record.text
    assert NEED not in record.text and "600 100 200" not in record.text
    # Closing from the details view.
    closed = await api.click(A, details, details.button("Zamknij"))
    assert "zamknięte" in closed.text
    assert api.errors == []


async def test_duplicate_warning_before_anything_is_stored(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    first = await _summary(bot, C, "Olsztyn", "Centrum", "Fundacja Klient", ids="KRS 0000123456")
    await api.click(C, first, first.button("wyślij"))
    incoming = await api.next_reply(A)
    await api.click(A, incoming, incoming.button("Przyjmij"))
    await api.next_reply(C)
    assert await _count(bot) == 1
    # The same client (by KRS) is referred by A to B: the warning comes first.
    summary = await _summary(bot, A, "Elbląg", "Elbląg", "FUNDACJA  KLIENT!", ids="0000123456")
    warning = await api.click(A, summary, summary.button("wyślij"))
    assert "Ten sam klient" in warning.text and "Fundusz Lokalny Mazury" in warning.text
    assert "Nic jeszcze nie zapisałem" in warning.text
    labels = [label for label, _ in warning.buttons]
    assert "Wyślij mimo to" in labels and "Anuluj" in labels
    assert await _count(bot) == 1  # nothing about the client stored yet
    await api.silence(B, 0.2)
    cancelled = await api.click(A, warning, warning.button("Anuluj"))
    assert "Anulowano" in cancelled.text or "anulowan" in cancelled.text.lower()
    assert await _count(bot) == 1
    await api.silence(B, 0.2)
    # Again, and this time sent anyway: B gets it with the same warning.
    summary = await _summary(bot, A, "Elbląg", "Elbląg", "FUNDACJA  KLIENT!", ids="0000123456")
    warning = await api.click(A, summary, summary.button("wyślij"))
    sent = await api.click(A, warning, warning.button("Wyślij mimo to"))
    assert "wysłane" in sent.text
    assert await _count(bot) == 2
    to_b = await api.next_reply(B)
    assert "Nowe skierowanie" in to_b.text and "Ten sam klient" in to_b.text
    await api.silence(C, 0.2)  # the earlier organisation hears nothing of it


async def test_organisation_without_anybody_in_the_bot_gets_an_email(
        bot: BotHarness, smtp: SmtpServer) -> None:
    await _setup(bot)
    bot.ctx.settings.smtp = SmtpSettings.model_validate(smtp.smtp_settings())
    await bot.org("Fundacja Bez Bota", services=["accounting"], contact_email="biuro@bezbota.example")
    api = bot.api
    summary = await _summary(bot, A, "Bez Bota", "Bez Bota", "Stowarzyszenie Klient")
    # Before anything is stored, the member is told how the referral will travel.
    assert "nie korzysta z bota" in summary.text and "e-mailem na biuro@bezbota.example" in summary.text
    assert await _count(bot) == 0
    sent = await api.click(A, summary, summary.button("wyślij"))
    assert "wysyłam je e-mailem na biuro@bezbota.example" in sent.text
    emailed = await api.next_reply(A)
    assert "wysłane e-mailem" in emailed.text
    [mail] = smtp.parsed()
    assert mail["To"] == "biuro@bezbota.example" and mail["Reply-To"] == "cop@example.org"
    body = mail.get_content()
    assert "Stowarzyszenie Klient" in body and NEED in body and "600 100 200" in body
    assert "Alicja" in body


async def test_refused_email_is_told_to_the_referrer(bot: BotHarness, smtp: SmtpServer) -> None:
    await _setup(bot)
    bot.ctx.settings.smtp = SmtpSettings.model_validate(smtp.smtp_settings())
    smtp.reject(lambda rcpt: rcpt.endswith("@bezbota.example"), 550)
    await bot.org("Fundacja Bez Bota", services=["accounting"], contact_email="biuro@bezbota.example",
                  phone="+48 55 111 22 33")
    api = bot.api
    summary = await _summary(bot, A, "Bez Bota", "Bez Bota", "Stowarzyszenie Klient")
    await api.click(A, summary, summary.button("wyślij"))
    failed = await api.next_reply(A)
    assert "Nie udało się dostarczyć skierowania #1" in failed.text
    assert "+48 55 111 22 33" in failed.text


async def test_unreachable_organisation_is_said_before_the_client_is_asked(bot: BotHarness) -> None:
    await _setup(bot)
    await bot.org("Koło Bez Kontaktu", services=["accounting"], phone="+48 89 765 43 21")
    api = bot.api
    await api.ask(A, "/refer")
    pick = await api.ask(A, "Koło Bez")
    said = await api.click(A, pick, pick.button("Koło Bez Kontaktu"))
    assert "nie da się powiadomić" in said.text and "+48 89 765 43 21" in said.text
    assert "Kim jest klient" not in said.text
    # The form stays at the choice of organisation: another one can be picked.
    pick = await api.ask(A, "Elbląg")
    kind = await api.click(A, pick, pick.button("Elbląg"))
    assert "Kim jest klient" in kind.text
    assert await _count(bot) == 0


async def test_members_leaving_after_the_summary_are_caught_before_storing(bot: BotHarness) -> None:
    """The summary promised delivery in the bot; everyone left: the screen is redone
    with the e-mail route instead of storing the client under an untrue promise."""
    await _setup(bot)
    api = bot.api
    summary = await _summary(bot, A, "Elbląg", "Elbląg", "Grupa Sąsiedzka")
    assert "e-mailem" not in summary.text
    async with bot.ctx.db.transaction() as session:
        from infranet.network.members import get_member

        member = await get_member(session, B)
        assert member is not None
        member.organisation_id = None
    again = await api.click(A, summary, summary.button("wyślij"))
    assert "Zmieniło się" in again.text and "e-mailem na owes@example.org" in again.text
    assert await _count(bot) == 0


async def _stored_referrals(bot: BotHarness, count: int) -> None:
    """`count` referrals from A's organisation to B's, made directly in storage."""
    from infranet.network.members import get_member
    from infranet.network.orgs import find_organisation
    from infranet.network.referrals import ReferralInput, create_referral
    from infranet.storage.actors import Actor

    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, A)
        target = await find_organisation(session, "Ośrodek Wsparcia Ekonomii Społecznej Elbląg")
        assert member is not None
        for index in range(count):
            await create_referral(session, bot.ctx, Actor.of(member), ReferralInput(
                to_org_id=target.id, client_kind="group", client_name=f"Grupa {index:02d}",
                client_contact="tel. 600 000 000", need="Doradztwo", consent=True))


async def test_every_referral_is_reachable_from_referrals(bot: BotHarness) -> None:
    await _setup(bot)
    await _stored_referrals(bot, 11)
    api = bot.api
    first = await api.ask(B, "/referrals")
    labels = [label for label, _ in first.buttons]
    assert "#11" in labels and "#4" in labels and "#3" not in labels
    assert "Strona 1 z 2" in first.text
    second = await api.click(B, first, first.button("Dalej"))
    assert second.kind == "edit" and "Strona 2 z 2" in second.text
    labels = [label for label, _ in second.buttons]
    assert {"#1", "#2", "#3"} <= set(labels) and "#4" not in labels
    opened = await api.click(B, second, second.button("#1"))
    assert "Grupa 00" in opened.text and "Przyjmij" in opened.buttons[0][0]
    accepted = await api.click(B, opened, opened.button("Przyjmij"))
    assert "Przyjęto skierowanie #1" in accepted.text and "tel. 600 000 000" in accepted.text
    assert api.errors == []


async def test_two_members_deciding_at_once_one_decision_counts(bot: BotHarness) -> None:
    """Two members of the receiving organisation press Accept and Decline at the same
    moment: one decision is stored, the other is told who decided."""
    import asyncio

    from infranet.errors import ValidationFailed
    from infranet.network.members import get_member
    from infranet.network.referrals import decide_referral
    from infranet.storage.actors import Actor

    await _setup(bot)
    await bot.member(B + 1, "Ośrodek Wsparcia Ekonomii Społecznej Elbląg", name="Beata")
    await _stored_referrals(bot, 1)

    async def decide(telegram_id: int, accept: bool) -> str:
        try:
            async with bot.ctx.db.transaction() as session:
                member = await get_member(session, telegram_id)
                assert member is not None
                await decide_referral(session, bot.ctx, Actor.of(member), 1, accept)
                return "decided"
        except ValidationFailed as exc:
            return exc.localized("pl")

    results = await asyncio.gather(decide(B, True), decide(B + 1, False))
    assert results.count("decided") == 1
    assert any("już rozpatrzone przez:" in r for r in results)
    async with bot.ctx.db.read() as session:
        row = await session.get(Referral, 1)
        assert row is not None
        assert row.status in (ReferralStatus.ACCEPTED, ReferralStatus.DECLINED)
