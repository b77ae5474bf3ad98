"""Decision buttons act on exactly what they show: a join request or a waiting event is
decided once, every admin's copy then shows the outcome and who decided, an old copy
changes nothing, and forged callback data is refused quietly."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from infranet.calendar import events as calendar
from infranet.calendar.event_input import EventInput
from infranet.network.members import get_member
from infranet.storage.actors import Actor
from infranet.storage.models import Event, MembershipRequest, MemberStatus, Moderation, RequestStatus
from tests.bot_fixtures import ADMIN_ID, BotHarness

ADMIN2 = 900002
USER = 7101
POSTER = 7102


async def _admins(bot: BotHarness) -> None:
    await bot.member(ADMIN_ID, None, admin=True, name="Anna Admin")
    await bot.member(ADMIN2, None, admin=True, name="Ewa Druga")


async def _join(bot: BotHarness, query: str, label: str) -> None:
    api = bot.api
    assert "organizację" in (await api.ask(USER, "/join")).text
    pick = await api.ask(USER, query)
    assert "wysłana" in (await api.click(USER, pick, pick.button(label))).text


async def _member(bot: BotHarness) -> tuple[str, str | None]:
    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, USER)
        assert member is not None
        return member.status, member.organisation.name if member.organisation else None


async def test_a_stale_approve_cannot_approve_a_later_request(bot: BotHarness) -> None:
    """Rejected for A, the user asks for B: the second admin's old Approve (of A) must not
    make them a member of B, with access to B's referrals."""
    await _admins(bot)
    await bot.org("Fundacja Alfa")
    await bot.org("Stowarzyszenie Beta")
    api = bot.api
    await _join(bot, "Alfa", "Alfa")
    first_1, first_2 = await api.next_reply(ADMIN_ID), await api.next_reply(ADMIN2)
    assert "Fundacja Alfa" in first_1.text and "Fundacja Alfa" in first_2.text

    rejected = await api.click(ADMIN_ID, first_1, first_1.button("Odrzuć"))
    assert "Odrzucono" in rejected.text and "Anna Admin" in rejected.text
    # The other admin's copy now says what happened and who decided, without buttons.
    edited = await api.next_reply(ADMIN2)
    assert edited.kind == "edit" and edited.message_id == first_2.message_id
    assert "Odrzucono" in edited.text and "Anna Admin" in edited.text and not edited.buttons
    assert "odrzucona" in (await api.next_reply(USER)).text

    await _join(bot, "Beta", "Beta")
    second_1, second_2 = await api.next_reply(ADMIN_ID), await api.next_reply(ADMIN2)
    assert "Stowarzyszenie Beta" in second_2.text

    # The old Approve, as the second admin saw it before the edit reached them.
    api.press(ADMIN2, first_2, first_2.button("Zatwierdź"))
    answer = await api.next_answer()
    assert "już rozpatrzona" in answer and "Anna Admin" in answer and "odrzucona" in answer
    assert await _member(bot) == (MemberStatus.PENDING, "Stowarzyszenie Beta")
    await api.silence(USER, 0.3)  # nobody told them anything

    # The new request is decided by its own buttons; the first admin's copy follows.
    approved = await api.click(ADMIN2, second_2, second_2.button("Zatwierdź"))
    assert "Zatwierdzono" in approved.text and "Ewa Druga" in approved.text
    follow = await api.next_reply(ADMIN_ID)
    assert follow.message_id == second_1.message_id and "Ewa Druga" in follow.text
    assert await _member(bot) == (MemberStatus.APPROVED, "Stowarzyszenie Beta")
    async with bot.ctx.db.transaction() as session:
        rows = (await session.scalars(select(MembershipRequest).order_by(MembershipRequest.id))).all()
        assert [(r.status, r.decided_by_name) for r in rows] == [
            (RequestStatus.REJECTED, "Anna Admin"), (RequestStatus.APPROVED, "Ewa Druga")]
        assert all(r.decided_at is not None for r in rows)


async def test_a_new_request_voids_the_copies_of_one_still_waiting(bot: BotHarness) -> None:
    await _admins(bot)
    await bot.org("Fundacja Alfa")
    await bot.org("Stowarzyszenie Beta")
    api = bot.api
    await _join(bot, "Alfa", "Alfa")
    first = await api.next_reply(ADMIN2)
    api.drain(ADMIN_ID)
    await _join(bot, "Beta", "Beta")  # asked again before anyone decided
    voided = await api.next_reply(ADMIN2)
    assert voided.message_id == first.message_id and "nową prośbę" in voided.text
    assert "Stowarzyszenie Beta" in (await api.next_reply(ADMIN2)).text
    api.press(ADMIN2, first, first.button("Zatwierdź"))
    assert "nieaktualna" in await api.next_answer()
    assert await _member(bot) == (MemberStatus.PENDING, "Stowarzyszenie Beta")


async def test_a_copy_that_cannot_be_edited_is_skipped_quietly(
        bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    await _admins(bot)
    await bot.org("Fundacja Alfa")
    api = bot.api
    await _join(bot, "Alfa", "Alfa")
    copy_1, copy_2 = await api.next_reply(ADMIN_ID), await api.next_reply(ADMIN2)
    del api.messages[ADMIN2][copy_2.message_id]  # the second admin deleted their copy
    caplog.set_level(logging.INFO)
    approved = await api.click(ADMIN_ID, copy_1, copy_1.button("Zatwierdź"))
    assert "Zatwierdzono" in approved.text
    assert "zatwierdzona" in (await api.next_reply(USER)).text
    assert "not found" in await api.refusal("editMessageText", "not found")
    await api.silence(ADMIN2, 0.3)  # no new message in its place
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_one_press_in_members_changes_only_its_row(bot: BotHarness) -> None:
    await _admins(bot)
    await bot.org("Fundacja Alfa")
    api = bot.api
    for user in (7201, 7202):
        await api.ask(user, "/join")
        pick = await api.ask(user, "Alfa")
        await api.click(user, pick, pick.button("Alfa"))
    await api.replies(ADMIN_ID, 2)  # the two requests
    listing = await api.ask(ADMIN_ID, "/members")
    assert "Członkowie" in listing.text
    hint = await api.next_reply(ADMIN_ID)
    assert len(hint.buttons) == 4
    first_row = hint.buttons[0][1]
    pressed = await api.click(ADMIN_ID, hint, first_row)
    assert pressed.message_id == hint.message_id
    assert "Zatwierdzono" in pressed.text and "Prośby czekające" in pressed.text
    assert len(pressed.buttons) == 2  # the other request keeps its buttons
    async with bot.ctx.db.transaction() as session:
        statuses = sorted([(await get_member(session, u)).status for u in (7201, 7202)])  # type: ignore[union-attr]
    assert statuses == [MemberStatus.APPROVED, MemberStatus.PENDING]


async def _pending_event(bot: BotHarness, title: str) -> Event:
    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, POSTER)
        assert member is not None
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)
        return await calendar.add_event(session, bot.ctx, Actor.of(member), EventInput(
            title=title, start=start, end=start + timedelta(hours=2), district="olsztyński"))


async def test_moderation_copies_follow_the_decision_and_an_edit_voids_old_buttons(
        bot: BotHarness) -> None:
    bot.ctx.settings.calendar.moderation = "all"
    await _admins(bot)
    await bot.member(POSTER, "Fundacja Plakat", name="Piotr")
    api = bot.api
    event = await _pending_event(bot, "Forum pierwsze")
    copy_1, copy_2 = await api.next_reply(ADMIN_ID), await api.next_reply(ADMIN2)
    assert "Forum pierwsze" in copy_2.text

    # Edited while waiting: the button of the old text publishes nothing, shows the new one.
    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, POSTER)
        assert member is not None
        start = event.starts_at + timedelta(days=1)
        await calendar.update_event(session, bot.ctx, Actor.of(member), event.id, EventInput(
            title="Forum przeniesione", start=start, end=start + timedelta(hours=2),
            district="olsztyński"))
    current = await api.click(ADMIN_ID, copy_1, copy_1.button("Opublikuj"))
    assert "Forum przeniesione" in current.text and "obecna wersja" in current.text
    async with bot.ctx.db.transaction() as session:
        row = await session.get(Event, event.id)
        assert row is not None and row.moderation == Moderation.PENDING

    done = await api.click(ADMIN_ID, current, current.button("Opublikuj"))
    assert "Opublikowano" in done.text and "Anna Admin" in done.text
    follow = await api.next_reply(ADMIN2)
    assert follow.message_id == copy_2.message_id and "Opublikowano" in follow.text
    assert "Anna Admin" in follow.text and not follow.buttons
    api.press(ADMIN2, copy_2, copy_2.button("Odrzuć"))
    answer = await api.next_answer()
    assert "już rozpatrzone" in answer and "Anna Admin" in answer and "opublikowano" in answer
    async with bot.ctx.db.transaction() as session:
        row = await session.get(Event, event.id)
        assert row is not None and row.moderation == Moderation.PUBLISHED


async def test_pending_list_items_are_copies_too(bot: BotHarness) -> None:
    bot.ctx.settings.calendar.moderation = "all"
    await _admins(bot)
    await bot.member(POSTER, "Fundacja Plakat")
    api = bot.api
    await _pending_event(bot, "Forum drugie")
    await api.next_reply(ADMIN_ID)
    announced = await api.next_reply(ADMIN2)
    listed = await api.ask(ADMIN_ID, "/pending")
    assert "Forum drugie" in listed.text
    await api.click(ADMIN2, announced, announced.button("Odrzuć"))
    follows = await api.replies(ADMIN_ID, 2)  # the announced copy and the listed one
    assert listed.message_id in {f.message_id for f in follows}
    assert all("Odrzucono" in f.text and "Ewa Druga" in f.text for f in follows)


@pytest.mark.parametrize("data", [
    "jr:99999999999999999999:ok", "jr:-5:ok", "jr:²:ok", "jr:1:ok:x:y",
    "mem:99999999999999999999:ok", "mem:-5:ok",
    "mod:ev:99999999999999999999:0:ok", "mod:ev:1:99999999999999999999:ok", "mod:tr:١:0:no",
    "nl:send", "nl:send:zzzzzzzzzzzz", "nl:send:0123456789ab",
    "blk:99999999999999999999:ok", "blk:-1:ok",
])
async def test_forged_callback_numbers_are_refused_quietly(
        bot: BotHarness, data: str, caplog: pytest.LogCaptureFixture) -> None:
    api = bot.api
    own = await api.ask(ADMIN_ID, "/start")
    await asyncio.sleep(0.3)
    api.drain(ADMIN_ID)
    caplog.set_level(logging.INFO)
    api.press(ADMIN_ID, own, data)
    assert "nieaktualny" in await api.next_answer()
    if not data.startswith("mem:"):  # (a real button of an older version is edited to say so)
        await api.silence(ADMIN_ID, 0.2)  # nothing said or edited beyond the short answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_newsletter_send_is_confirmed_once(bot: BotHarness) -> None:
    """A double tap on "Send now", or an old confirmation pressed later, must not build and
    send a second issue to every subscriber."""
    from sqlalchemy import func

    from infranet.newsletter.subscribers import subscribe
    from infranet.storage.models import NewsletterIssue

    await _admins(bot)
    api = bot.api
    async with bot.ctx.db.transaction() as session:
        await subscribe(session, bot.ctx, "czytelnik@example.org", source="import", consented=True)
    confirm = await api.ask(ADMIN_ID, "/newsletter_send")
    started = await api.click(ADMIN_ID, confirm, confirm.button("Wyślij"))
    assert "Wydanie #1" in started.text
    await asyncio.sleep(1.1)  # a new second: a new manual issue key, as a later tap would have
    api.press(ADMIN_ID, confirm, confirm.button("Wyślij"))
    answer = await api.next_answer()
    assert "już zatwierdził" in answer and "Anna Admin" in answer
    async with bot.ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(NewsletterIssue)) == 1

    cancelled = await api.ask(ADMIN2, "/newsletter_send")
    assert "Anulowano" in (await api.click(ADMIN2, cancelled, cancelled.button("Anuluj"))).text
    api.press(ADMIN2, cancelled, cancelled.button("Wyślij"))
    assert "anulował" in await api.next_answer()
    async with bot.ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(NewsletterIssue)) == 1


async def test_an_event_cancelled_while_waiting_is_not_published(bot: BotHarness) -> None:
    bot.ctx.settings.calendar.moderation = "all"
    await _admins(bot)
    await bot.member(POSTER, "Fundacja Plakat")
    api = bot.api
    event = await _pending_event(bot, "Forum odwołane")
    copy = await api.next_reply(ADMIN_ID)
    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, POSTER)
        assert member is not None
        await calendar.cancel_event(session, bot.ctx, Actor.of(member), event.id)
    said = await api.click(ADMIN_ID, copy, copy.button("Opublikuj"))
    assert "odwołał" in said.text and not said.buttons
    async with bot.ctx.db.transaction() as session:
        row = await session.get(Event, event.id)
        assert row is not None and row.moderation == Moderation.PENDING
