"""Joining the network through the bot, admins' decisions, admin commands."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from infranet.network.members import get_member
from infranet.storage.models import AuditLog, MemberStatus, Organisation, OrgStatus
from tests.bot_fixtures import ADMIN_ID, BotHarness
from tests.botapi import User

USER = 7001


async def _status(bot: BotHarness, telegram_id: int) -> str | None:
    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, telegram_id)
        return member.status if member else None


async def test_join_existing_org_approved_and_user_told(bot: BotHarness) -> None:
    await bot.org("Stowarzyszenie Wspólnota Warmii", type="COP")
    api = bot.api
    assert "organizację" in (await api.ask(USER, "/join")).text
    pick = await api.ask(USER, "wspolnota")  # diacritics and case do not matter
    sent = await api.click(USER, pick, pick.button("Wspólnota Warmii"))
    assert "wysłana" in sent.text
    request = await api.next_reply(ADMIN_ID)
    assert "Prośba o dołączenie" in request.text and "Stowarzyszenie Wspólnota Warmii" in request.text
    assert await _status(bot, USER) == MemberStatus.PENDING

    decided = await api.click(ADMIN_ID, request, request.button("Zatwierdź"))
    assert decided.kind == "edit" and "Zatwierdzono" in decided.text
    told = await api.next_reply(USER)
    assert "zatwierdzona" in told.text
    assert await _status(bot, USER) == MemberStatus.APPROVED

    # Pressed again (or by a second admin): nothing changes, the admin is told why.
    api.press(ADMIN_ID, request, request.button("Zatwierdź"))
    assert "już rozpatrzona" in await api.next_answer()
    assert "Zatwierdzono" in api.messages[ADMIN_ID][request.message_id].text
    await api.silence(USER, 0.3)
    # The new member now sees member commands in /help.
    assert "Witaj" in (await api.ask(USER, "/start")).text


async def test_join_proposing_new_org_rejected(bot: BotHarness) -> None:
    api = bot.api
    user = User(USER, "Maria", language_code="en")
    await api.ask(user, "/join")
    offer = await api.ask(user, "Fundacja Nowa Droga")
    assert "found no organisation" in offer.text
    ask_name = await api.click(user, offer, offer.button("Propose"))
    assert "full name" in ask_name.text
    await bot.org("Fundacja Istniejąca")
    taken = await api.ask(user, "fundacja istniejąca")
    assert "already in the network" in taken.text  # said at once, in the user's language
    kinds = await api.ask(user, "Fundacja <Nowa> Droga & Przyjaciele")
    ask_area = await api.click(user, kinds, kinds.button("OWES"))
    assert "districts" in ask_area.text
    wrong = await api.ask(user, "olsztynski, Gdańsk")
    assert "Gdańsk" in wrong.text  # unknown district named, nothing lost
    assert "e-mail" in (await api.ask(user, "olsztyński, ełcki")).text
    assert "does not look like" in (await api.ask(user, "not-an-address")).text
    summary = await api.ask(user, "Biuro@Nowa-Droga.example.org")
    assert "Fundacja <Nowa> Droga & Przyjaciele" in summary.text  # escaped, shown as typed
    assert "powiat olsztyński" in summary.text.lower() or "olsztyński" in summary.text
    done = await api.click(user, summary, summary.button("Confirm"))
    assert "went to the admins" in done.text
    request = await api.next_reply(ADMIN_ID)
    assert "Nowa organizacja" in request.text and "OWES" in request.text
    async with bot.ctx.db.transaction() as session:
        org = await session.scalar(select(Organisation).where(
            Organisation.name == "Fundacja <Nowa> Droga & Przyjaciele"))
        assert org is not None and org.status == OrgStatus.PENDING
    await api.click(ADMIN_ID, request, request.button("Odrzuć"))
    told = await api.next_reply(USER)
    assert "rejected" in told.text
    async with bot.ctx.db.transaction() as session:
        org = await session.scalar(select(Organisation).where(Organisation.id == org.id))
        assert org is not None and org.status == OrgStatus.REJECTED
    assert await _status(bot, USER) == MemberStatus.REJECTED


async def test_non_member_refusals_and_forged_callbacks(bot: BotHarness) -> None:
    api = bot.api
    await bot.org("Fundacja Testowa")
    await api.ask(USER, "/join")
    pick = await api.ask(USER, "Testowa")
    await api.click(USER, pick, pick.button("Testowa"))
    request = await api.next_reply(ADMIN_ID)
    stranger = 7002
    for command in ("/members", "/approve #1", "/block #1", "/promote #1"):
        reply = await api.ask(stranger, command)
        assert reply.text.endswith("Dołącz przez /join."), command  # one line on how to join
    plain = await bot.member(7005, "Fundacja Testowa")
    for command in ("/members", "/approve #1", "/block #1", "/promote #1"):
        assert "tylko administratorzy" in (await api.ask(plain.telegram_id, command)).text
    async with bot.ctx.db.transaction() as session:
        before = await session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1))
    # A non-admin (the requester themself) forges the admin's Approve button.
    forged = await api.click(USER, request, request.button("Zatwierdź"))
    assert "/join" in forged.text
    forged = await api.click(7005, request, request.button("Zatwierdź"))
    assert "tylko administratorzy" in forged.text
    # Nonsense payloads on a known prefix.
    api.drain(ADMIN_ID)
    api.press(ADMIN_ID, request, "jr:abc:ok")
    assert "nieaktualny" in await api.next_answer()
    assert "Nie znaleziono" in (await api.click(ADMIN_ID, request, "jr:99999:ok")).text
    # A button of an older version named the member, not the request: it decides nothing.
    old = await api.click(ADMIN_ID, request, "mem:1:ok")
    assert "starszej wersji" in old.text and "/approve" in old.text
    assert await _status(bot, USER) == MemberStatus.PENDING
    async with bot.ctx.db.transaction() as session:
        after = await session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1))
    assert before == after


async def test_admin_commands(bot: BotHarness) -> None:
    api = bot.api
    member = await bot.member(7003, "Fundacja Testowa", name="Anna Nowak")
    listing = await api.ask(ADMIN_ID, "/members")
    assert "Anna Nowak" in listing.text and f"#{member.id}" in listing.text
    promoted = await api.ask(ADMIN_ID, f"/promote #{member.id}")
    assert "administratorem" in promoted.text
    assert "administratora" in (await api.next_reply(7003)).text
    assert "/members" in (await api.ask(7003, "/help")).text
    await asyncio.sleep(0.3)  # the menu is set after the commit, in the background
    assert "members" in {c["command"] for c in api.commands["chat:7003:"]}
    other = await bot.member(7004, "Fundacja Testowa", name="Jan")
    confirm = await api.ask(7003, f"/block #{other.id}")
    assert "Zablokować" in confirm.text and "Jan" in confirm.text
    blocked = await api.click(7003, confirm, confirm.button("Zablokuj"))
    assert "Zablokowano" in blocked.text
    await api.next_reply(7004)
    assert await _status(bot, 7004) == MemberStatus.BLOCKED
    # An owner ([telegram] admin_ids) may block an admin.
    confirm = await bot.api.ask(ADMIN_ID, f"/block #{member.id}")
    await bot.api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))
    await asyncio.sleep(0.3)
    assert "chat:7003:" not in api.commands
    assert "zablokowane" in (await api.ask(7004, "/join")).text
    usage = await api.ask(ADMIN_ID, "/block")
    assert "/block #nr" in usage.text
    assert "Nie znaleziono" in (await api.ask(ADMIN_ID, "/promote #4242")).text
    assert "podaj numer członka" in (await api.ask(ADMIN_ID, "/promote Jan")).text
    assert "Anna Nowak" in (await api.ask(ADMIN_ID, f"/promote tg:{member.telegram_id}")).text


async def test_join_conversation_survives_restart(bot: BotHarness) -> None:
    await bot.org("Lokalna Grupa Działania Mazury")
    api = bot.api
    await api.ask(USER, "/join")
    await bot.restart()
    pick = await api.ask(USER, "mazury")
    assert "Mazury" in pick.text or pick.buttons
    sent = await api.click(USER, pick, pick.button("Mazury"))
    assert "wysłana" in sent.text


async def test_join_from_a_group_goes_private(bot: BotHarness) -> None:
    reply = await bot.api.ask(USER, "/join", chat_id=-100500, chat_type="supergroup")
    assert "prywatnej" in reply.text
    link = reply.buttons[0][1]
    assert link == "https://t.me/infranet_test_bot?start=join"
    # Telegram turns the link into "/start join" in the private chat: the form begins.
    assert "Jaką organizację" in (await bot.api.ask(USER, "/start join")).text
    assert "Cześć" in (await bot.api.ask(USER + 1, "/start")).text


async def test_an_unreachable_admin_does_not_break_the_request(bot: BotHarness) -> None:
    await bot.org("Fundacja Testowa")
    bot.api.chats_blocked.add(ADMIN_ID)  # the admin never started the bot: 403 for them
    await bot.api.ask(USER, "/join")
    pick = await bot.api.ask(USER, "Testowa")
    sent = await bot.api.click(USER, pick, pick.button("Testowa"))
    assert "wysłana" in sent.text
    assert await _status(bot, USER) == MemberStatus.PENDING
    assert await bot.api.refusal("sendMessage", "Forbidden")


async def test_roles_take_effect_at_once_between_the_steps_of_a_form(bot: BotHarness) -> None:
    """Who speaks is remembered between updates (bot/people.py): approving, blocking and
    joining must still change the very next answer."""
    api = bot.api
    member = await bot.member(7010, "Fundacja Testowa", name="Ewa")
    assert "Jak się nazywa" in (await api.ask(7010, "/event")).text
    assert "Kiedy" in (await api.ask(7010, "Spotkanie sieci")).text  # remembered as a member
    confirm = await api.ask(ADMIN_ID, f"/block #{member.id}")
    assert "Zablokowano" in (await api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))).text
    assert "zablokowane" in (await api.next_reply(7010)).text  # told
    refused = await api.ask(7010, "5.12.2030 10-12")  # the form's next step, right after
    assert "zablokowane" in refused.text  # told they are blocked, not sent to /join
    assert "zablokowane" in (await api.ask(7010, "/event")).text

    # A stranger remembered as nobody: the join request and its approval count at once.
    assert "tylko zatwierdzeni" in (await api.ask(7011, "/my")).text
    await api.ask(7011, "/join")
    pick = await api.ask(7011, "Testowa")
    await api.click(7011, pick, pick.button("Testowa"))
    request = await api.next_reply(ADMIN_ID)
    assert "tylko zatwierdzeni" in (await api.ask(7011, "/event")).text  # pending: not yet
    await api.click(ADMIN_ID, request, request.button("Zatwierdź"))
    await api.next_reply(7011)  # told it was approved
    assert "Jak się nazywa" in (await api.ask(7011, "/event")).text
    # A change made in storage by another way in (the harness writes rows and raises the
    # people signal, as every business function that changes people does) counts too.
    await bot.member(7011, "Fundacja Testowa", admin=True, name="Ewa")
    assert "/members" in (await api.ask(7011, "/help")).text
    # every change was settled: the memory is in use again
    assert bot.ctx.changes.people.in_flight == 0


async def test_a_refusal_leaves_the_speaker_known(bot: BotHarness) -> None:
    """A refused request rolls its transaction back; who speaks, read there and
    remembered, must still be usable by the next update."""
    api = bot.api
    await bot.member(7020, "Fundacja Testowa", name="Ola")
    for user, expected in ((7020, "/event"), (7021, "/join")):
        assert "xyzzyqq" in (await api.ask(user, "/check 5.12.2030 xyzzyqq")).text
        assert expected in (await api.ask(user, "/help")).text


async def test_an_admin_without_an_organisation_posts_for_the_secretariat(bot: BotHarness) -> None:
    """The config admin has no organisation: after set-up they speak for the secretariat, a
    real organisation; what they post is its event (never "—"), and /my shows it to edit."""
    from datetime import UTC, datetime, timedelta

    from infranet.calendar import events as calendar
    from infranet.calendar.event_input import EventInput
    from infranet.network.members import ensure_secretariat
    from infranet.storage.actors import Actor

    async with bot.ctx.db.transaction() as session:  # what prepare_database does at set-up
        await ensure_secretariat(session, bot.ctx.settings.network.secretariat_name)
    api = bot.api
    listing = await api.ask(ADMIN_ID, "/members")
    assert "Sekretariat sieci" in listing.text and "— —" not in listing.text
    async with bot.ctx.db.transaction() as session:
        admin = await get_member(session, ADMIN_ID)
        assert admin is not None
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        event = await calendar.add_event(session, bot.ctx, Actor.of(admin), EventInput(
            title="Spotkanie sekretariatu", start=start, end=start + timedelta(hours=1),
            district="olsztyński"))
        assert event.organisation is not None and event.organisation.name == "Sekretariat sieci"
    head = await api.ask(ADMIN_ID, "/my")
    assert "Sekretariat sieci" in head.text
    mine = head if "Spotkanie sekretariatu" in head.text else await api.next_reply(ADMIN_ID)
    assert "Spotkanie sekretariatu" in mine.text
    assert any(str(event.id) in data for _label, data in mine.buttons)  # edit / cancel buttons
    shown = await api.ask(ADMIN_ID, "/events")
    assert "Sekretariat sieci" in shown.text


async def test_join_proposing_an_org_in_a_city_powiat(bot: BotHarness) -> None:
    """A city with powiat rights ("m. Elbląg") is stored as its slug, which is also a word
    people type for two districts: the confirm step must not read it back as typed text."""
    api = bot.api
    await api.ask(USER, "/join")
    offer = await api.ask(USER, "Stowarzyszenie Elbląskie")
    ask_name = await api.click(USER, offer, offer.button("Zgłoś nową"))
    assert ask_name.text
    kinds = await api.ask(USER, "Stowarzyszenie Elbląskie")
    await api.click(USER, kinds, kinds.button("OWES"))
    assert "e-mail" in (await api.ask(USER, "m. Elbląg, ełcki")).text
    summary = await api.ask(USER, "biuro@elblag.example.org")
    assert "Elbląg" in summary.text
    done = await api.click(USER, summary, summary.button("Potwierdź"))
    assert "administrator" in done.text.lower(), done.text
    async with bot.ctx.db.transaction() as session:
        org = await session.scalar(select(Organisation).where(
            Organisation.name == "Stowarzyszenie Elbląskie"))
        assert org is not None and org.status == OrgStatus.PENDING
    request = await api.next_reply(ADMIN_ID)
    approved = await api.click(ADMIN_ID, request, request.button("Zatwierdź"))
    assert "Zatwierdzono" in approved.text, approved.text
    assert await _status(bot, USER) == MemberStatus.APPROVED
    orgs = await api.ask(USER, "/orgs")
    assert "Stowarzyszenie Elbląskie" in orgs.text
