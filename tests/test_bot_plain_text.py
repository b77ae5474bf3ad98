"""Text is plain text in the bot (issue 11): the real Application against the strict Bot API
emulator, which refuses a message whose `<` or `&` is not escaped. Both engines."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from infranet.storage.models import Event, Member
from tests.bot_fixtures import ADMIN_ID, BotHarness
from tests.botapi import User

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw
ALICE, STRANGER = 1001, 7007
TITLE = "Szkolenie <dla> seniorów & <b>"


async def test_an_event_titled_like_html_is_stored_as_typed_and_shown_escaped(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await bot.org("Fundacja <Alfa> & Co", contact_email="alfa@example.org")
    await bot.member(ALICE, "Fundacja <Alfa> & Co", name="Alice")
    api = bot.api
    await api.ask(ALICE, "/event")
    # typed with invisible characters and a line break in it: they do not survive
    when = await api.ask(ALICE, "Szkolenie\x07 <dla>\u202e seniorów\n& <b>")
    assert "Kiedy" in when.text
    reply = await api.ask(ALICE, "7.12.2026 cały dzień")
    category = await api.answer(ALICE, reply, reply.button("Całe województwo"))
    audience = await api.answer(ALICE, category, category.button("inne"))
    place = await api.answer(ALICE, audience, audience.button("Dalej"))
    assert "Miejsce" in place.text
    link = await api.ask(ALICE, "Sala <3> & Co\x1b")
    description = await api.answer(ALICE, link, link.button("Pomiń"))
    assert "opis" in description.text.lower()
    summary = await api.ask(ALICE, "Linia 1 a < b\r\nLinia <2> & 3\x00")
    assert TITLE in summary.text and "Sala <3> & Co" in summary.text
    assert "Linia 1 a < b\nLinia <2> & 3" in summary.text
    assert "Szkolenie &lt;dla&gt; seniorów &amp; &lt;b&gt;" in summary.raw
    saved = await api.click(ALICE, summary, summary.button("Potwierdź"))
    assert "Zapisane" in saved.text
    async with bot.ctx.db.transaction() as session:
        row = (await session.scalars(select(Event))).one()
        assert (row.title, row.location, row.description) == (
            TITLE, "Sala <3> & Co", "Linia 1 a < b\nLinia <2> & 3")

    listing = await api.ask(STRANGER, "/events month")
    assert TITLE in listing.text and "Fundacja <Alfa> & Co" in listing.text
    heading = await api.ask(ALICE, "/my")
    assert "Fundacja <Alfa> & Co" in heading.text
    assert TITLE in (await api.next_reply(ALICE)).text  # one message per event
    orgs = await api.ask(STRANGER, "/orgs alfa")
    assert "Fundacja <Alfa> & Co" in orgs.text
    assert api.errors == []


async def test_a_telegram_name_with_controls_is_stored_plain_and_shown_escaped(bot: BotHarness) -> None:
    await bot.org("Stowarzyszenie Wspólnota Warmii", type="COP")
    api = bot.api
    user = User(7100, "Ala\u202e <Kot> & Pies\x1b")
    await api.ask(user, "/join")
    pick = await api.ask(user, "wspolnota")
    sent = await api.click(user, pick, pick.button("Wspólnota Warmii"))
    assert "wysłana" in sent.text
    request = await api.next_reply(ADMIN_ID)
    assert "Ala <Kot> & Pies" in request.text and "\u202e" not in request.text
    async with bot.ctx.db.transaction() as session:
        member = (await session.scalars(select(Member).where(Member.telegram_id == 7100))).one()
        assert member.display_name == "Ala <Kot> & Pies"
    assert api.errors == []


async def test_a_referral_is_summarised_and_stored_as_plain_text(bot: BotHarness) -> None:
    from infranet.storage.models import Referral
    from tests.test_bot_referrals import A, B
    from tests.test_bot_referrals import _setup as referral_setup

    await referral_setup(bot)
    api = bot.api
    await api.ask(A, "/refer")
    pick = await api.ask(A, "Elbląg")
    kind = await api.click(A, pick, pick.button("Elbląg"))
    ask_name = await api.click(A, kind, kind.button("NGO"))
    ask_ids = await api.ask(A, "Koło <Gospodyń> &\u202e Co\x1b")
    await api.click(A, ask_ids, ask_ids.button("Pomiń"))
    await api.ask(A, "Pomoc\r\nw <założeniu> & prowadzeniu\x00")
    summary = await api.ask(A, "tel. 600\x07 100 200\u2028prezes@klient.example.org")
    assert "Nazwa" in ask_name.text and "zgodził" in summary.text
    assert "Koło <Gospodyń> & Co" in summary.text
    assert "Pomoc\nw <założeniu> & prowadzeniu" in summary.text
    assert "tel. 600 100 200 prezes@klient.example.org" in summary.text
    await api.click(A, summary, summary.button("wyślij"))
    incoming = await api.next_reply(B)
    assert "Koło <Gospodyń> & Co" in incoming.text
    async with bot.ctx.db.transaction() as session:
        row = (await session.scalars(select(Referral))).one()
        assert (row.client_name, row.need, row.client_contact) == (
            "Koło <Gospodyń> & Co", "Pomoc\nw <założeniu> & prowadzeniu",
            "tel. 600 100 200 prezes@klient.example.org")
    assert api.errors == []
