"""Client referrals through the bot, the duplicate-support warning, the purge; /orgs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from infranet.network.referrals import normalise_nip, parse_identifier
from infranet.network.service import PURGE_JOB_ID, purge_referrals
from infranet.network.service import build as build_network
from infranet.storage.models import AuditLog, Referral, ReferralStatus
from tests.bot_fixtures import ADMIN_ID, BotHarness
from tests.botapi import Sent

A, B, C = 3101, 3201, 3301  # members of three organisations


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


async def _refer(bot: BotHarness, who: int, search: str, target: str, client: str,
                 ids: str | None = "skip") -> Sent:
    api = bot.api
    assert "Do jakiej organizacji" in (await api.ask(who, "/refer")).text
    pick = await api.ask(who, search)
    kind = await api.click(who, pick, pick.button(target))
    ask_name = await api.click(who, kind, kind.button("NGO"))
    assert "Nazwa" in ask_name.text
    ask_ids = await api.ask(who, client)
    assert "KRS" in ask_ids.text
    if ids == "skip":
        await api.click(who, ask_ids, ask_ids.button("Pomiń"))
    else:
        assert ids is not None
        await api.ask(who, ids)
    await api.ask(who, "Pomoc w założeniu spółdzielni socjalnej")
    summary = await api.ask(who, "tel. 600 100 200, prezes@klient.example.org")
    assert "zgodził" in summary.text
    return await api.click(who, summary, summary.button("wyślij"))


async def test_referral_accepted(bot: BotHarness) -> None:
    await _setup(bot)
    sent = await _refer(bot, A, "szkolenia ekonomia społeczna", "Elbląg", "Stowarzyszenie <Razem>")
    assert "wysłane (odbiorca: Ośrodek Wsparcia" in sent.text
    incoming = await bot.api.next_reply(B)
    assert "Stowarzyszenie <Razem>" in incoming.text and "600 100 200" in incoming.text
    done = await bot.api.click(B, incoming, incoming.button("Przyjmij"))
    assert "Przyjęto" in done.text
    told = await bot.api.next_reply(A)
    assert "przyjmuje skierowanie" in told.text
    listing = await bot.api.ask(A, "/referrals")
    assert "Stowarzyszenie <Razem>" in listing.text and "przyjęte" in listing.text
    details = await bot.api.click(A, listing, listing.button("#1"))
    closed = await bot.api.click(A, details, details.button("Zamknij"))
    assert "zamknięte" in closed.text
    await bot.api.silence(C, 0.2)  # a third organisation sees nothing
    await bot.api.silence(ADMIN_ID, 0.1)  # nor do the admins


async def test_referral_declined_and_forgeries(bot: BotHarness) -> None:
    await _setup(bot)
    await _refer(bot, A, "Elbląg", "Elbląg", "Grupa Sąsiedzka")
    incoming = await bot.api.next_reply(B)
    # The referrer, another organisation and an admin cannot decide on it.
    # Each forges the Accept payload under a message in their own chat.
    for forger, reason in ((A, "tylko organizacja"), (C, "Nie znaleziono"),
                           (ADMIN_ID, "nie jest przypisane")):
        own = await bot.api.ask(forger, "/help")
        refused = await bot.api.click(forger, own, incoming.button("Przyjmij"))
        assert reason in refused.text
    async with bot.ctx.db.transaction() as session:
        referral = await session.scalar(select(Referral))
        assert referral is not None and referral.status == ReferralStatus.PENDING
    declined = await bot.api.click(B, incoming, incoming.button("Odmów"))
    assert "Odmówiono" in declined.text
    assert "nie może przyjąć" in (await bot.api.next_reply(A)).text
    again = await bot.api.click(B, incoming, incoming.button("Przyjmij"))
    assert again.kind == "edit" and "odrzucone — Bartek" in again.text
    assert "już rozpatrzone przez: Bartek" in await bot.api.next_answer()
    # A stranger is told how to join.
    assert "/join" in (await bot.api.ask(4444, "/refer")).text
    assert "/join" in (await bot.api.ask(4444, "/referrals")).text


async def test_duplicate_support_warning_to_both_sides_only(bot: BotHarness) -> None:
    await _setup(bot)
    await _refer(bot, C, "Olsztyn", "Centrum", "Fundacja Klient", ids="KRS 0000123456")
    first = await bot.api.next_reply(A)
    await bot.api.click(A, first, first.button("Przyjmij"))
    assert "przyjmuje" in (await bot.api.next_reply(C)).text
    # The same client (by KRS, under another spelling) is now referred by A to B.
    # The warning comes before sending (tests/test_bot_referrals_flow.py), then B gets it too.
    warning_a = await _refer(bot, A, "Elbląg", "Elbląg", "FUNDACJA  KLIENT!", ids="0000123456")
    assert "Ten sam klient" in warning_a.text and "Fundusz Lokalny Mazury" in warning_a.text
    sent = await bot.api.click(A, warning_a, warning_a.button("Wyślij mimo to"))
    assert "wysłane" in sent.text
    incoming_b = await bot.api.next_reply(B)
    assert "Nowe skierowanie" in incoming_b.text
    assert "Ten sam klient" in incoming_b.text and "Fundusz Lokalny Mazury" in incoming_b.text
    await bot.api.silence(C, 0.3)


async def test_invalid_krs_and_nip_are_explained(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    await api.ask(A, "/refer")
    pick = await api.ask(A, "grants")
    kind = await api.click(A, pick, pick.button("Fundusz"))
    await api.click(A, kind, kind.button("NGO"))
    await api.ask(A, "Fundacja X")
    assert "cyfra kontrolna" in (await api.ask(A, "NIP 525-224-84-82")).text
    assert "10 cyfr" in (await api.ask(A, "KRS 12345")).text
    assert "Czego klient potrzebuje" in (await api.ask(A, "NIP 525-224-84-81")).text
    assert "limit to 2000" in (await api.ask(A, "x" * 2001)).text


def test_identifiers() -> None:
    assert normalise_nip("PL 525-224-84-81") == "5252248481"
    assert parse_identifier("0000123456") == ("0000123456", None)
    assert parse_identifier("5252248481") == (None, "5252248481")


async def test_contact_details_purged_after_retention(bot: BotHarness) -> None:
    await _setup(bot)
    await _refer(bot, A, "Elbląg", "Elbląg", "Jan Kowalski")
    incoming = await bot.api.next_reply(B)
    await bot.api.click(B, incoming, incoming.button("Odmów"))
    assert await purge_referrals(bot.ctx) == 0
    real_clock = bot.ctx.clock
    bot.ctx.clock = lambda: real_clock() + timedelta(days=bot.ctx.settings.referrals.retention_days + 1)
    try:
        assert await purge_referrals(bot.ctx) == 1
        assert await purge_referrals(bot.ctx) == 0  # idempotent
    finally:
        bot.ctx.clock = real_clock
    async with bot.ctx.db.transaction() as session:
        referral = await session.scalar(select(Referral))
        assert referral is not None
        assert referral.client_contact is None and referral.need is None
        assert referral.purged_at is not None
        logged = await session.scalar(select(AuditLog).where(AuditLog.action == "referral.purge"))
        assert logged is not None and logged.details["count"] == 1
    assert "(dane usunięte)" not in (await bot.api.ask(A, "/referrals")).text  # an NGO keeps its name

    job = next(j for j in build_network(bot.ctx).jobs if j.id == PURGE_JOB_ID)
    assert "hour='4'" in str(job.trigger)


async def test_directory_search_and_contacts(bot: BotHarness) -> None:
    await _setup(bot)
    everyone = await bot.api.ask(5555, "/orgs")
    assert "(3)" in everyone.text and "Ośrodek Wsparcia" in everyone.text
    assert "owes@example.org" not in everyone.text  # not published: strangers do not see it
    assert "Osoby kontaktowe" not in everyone.text  # strangers see no people
    assert "owes@example.org" in (await bot.api.ask(A, "/orgs")).text  # members do
    legal = await bot.api.ask(A, "/orgs doradztwo prawne")
    assert "Centrum Organizacji" in legal.text and "Ośrodek" not in legal.text
    by_district = await bot.api.ask(A, "/orgs elblaski")
    assert "Ośrodek Wsparcia" in by_district.text and "Bartek" in by_district.text
    none = await bot.api.ask(A, "/orgs zzzz <b>")
    assert "zzzz <b>" in none.text
    group = await bot.api.ask(A, "/orgs", chat_id=-100900, chat_type="group")
    assert "(3)" in group.text and "Osoby kontaktowe" not in group.text


async def test_directory_pages(bot: BotHarness) -> None:
    for index in range(20):
        await bot.org(f"Stowarzyszenie Numer {index:02d}", services=["training"])
    first = await bot.api.ask(5555, "/orgs szkolenia")
    assert "Strona 1 z 3" in first.text
    second = await bot.api.click(5555, first, first.button("Dalej"))
    assert second.kind == "edit" and "Strona 2 z 3" in second.text


async def test_forgotten_referral_is_closed_then_purged(bot: BotHarness) -> None:
    await _setup(bot)
    await _refer(bot, A, "Elbląg", "Elbląg", "Grupa Zapomniana")
    await bot.api.next_reply(B)  # never answered
    days = bot.ctx.settings.referrals.retention_days
    real_clock = bot.ctx.clock
    try:
        bot.ctx.clock = lambda: real_clock() + timedelta(days=days + 1)
        assert await purge_referrals(bot.ctx) == 0  # closed now, purged later
        async with bot.ctx.db.transaction() as session:
            referral = await session.scalar(select(Referral))
            assert referral is not None and referral.status == ReferralStatus.CLOSED
            assert referral.client_contact is not None
        bot.ctx.clock = lambda: real_clock() + timedelta(days=2 * days + 2)
        assert await purge_referrals(bot.ctx) == 1
    finally:
        bot.ctx.clock = real_clock
