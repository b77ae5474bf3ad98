"""Blocking through the bot: a confirmation first, admins protected from each other (only an
owner, a Telegram id in `[telegram] admin_ids`, blocks or demotes an admin), a blocked user
told so (not sent to /join), and the way back: /unblock and `infranet member unblock`."""

from __future__ import annotations

import asyncio

import pytest

from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.network.members import get_member
from infranet.storage.models import MemberStatus, Role
from tests.bot_fixtures import ADMIN_ID, BotHarness
from tests.botapi import User

HELPER = 7301  # an admin, not an owner
MEMBER = 7302


async def _state(bot: BotHarness, telegram_id: int) -> tuple[str, str]:
    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, telegram_id)
        assert member is not None
        return member.status, member.role


async def run(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


async def test_block_asks_first_and_cancel_keeps_the_member(bot: BotHarness) -> None:
    api = bot.api
    member = await bot.member(MEMBER, "Fundacja Testowa", name="Jan Kowalski")
    confirm = await api.ask(ADMIN_ID, f"/block #{member.id}")
    assert "Zablokować" in confirm.text and "Jan Kowalski" in confirm.text
    assert "Fundacja Testowa" in confirm.text and f"/unblock #{member.id}" in confirm.text
    assert await _state(bot, MEMBER) == (MemberStatus.APPROVED, Role.MEMBER)  # asked, not done
    kept = await api.click(ADMIN_ID, confirm, confirm.button("Anuluj"))
    assert "Nie zablokowano" in kept.text and not kept.buttons
    assert await _state(bot, MEMBER) == (MemberStatus.APPROVED, Role.MEMBER)

    confirm = await api.ask(ADMIN_ID, f"/block #{member.id}")
    done = await api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))
    assert "Zablokowano" in done.text
    assert "zablokowane" in (await api.next_reply(MEMBER)).text
    assert await _state(bot, MEMBER) == (MemberStatus.BLOCKED, Role.MEMBER)
    # The same confirmation pressed again blocks nothing twice and says so.
    again = await api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))
    assert "już zablokowany" in again.text
    await api.silence(MEMBER, 0.3)


async def test_a_blocked_user_is_told_so_in_their_language(bot: BotHarness) -> None:
    api = bot.api
    member = await bot.member(MEMBER, "Fundacja Testowa")
    confirm = await api.ask(ADMIN_ID, f"/block #{member.id}")
    await api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))
    await api.next_reply(MEMBER)
    for command in ("/event", "/my", "/refer"):
        reply = await api.ask(MEMBER, command)
        assert "zablokowane" in reply.text and "/join" not in reply.text, command
    english = User(MEMBER + 1, language_code="en")
    other = await bot.member(english.id, "Fundacja Testowa")
    confirm = await api.ask(ADMIN_ID, f"/block #{other.id}")
    await api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))
    await api.next_reply(english.id)
    reply = await api.ask(english, "/event")
    assert "blocked" in reply.text and "/join" not in reply.text


async def test_only_an_owner_blocks_or_demotes_an_admin(bot: BotHarness) -> None:
    api = bot.api
    helper = await bot.member(HELPER, "Fundacja Testowa", admin=True, name="Pomocnik")
    second = await bot.member(HELPER + 1, "Fundacja Testowa", admin=True, name="Drugi Admin")
    refused = await api.ask(HELPER, f"/block #{second.id}")
    assert "tylko właściciel" in refused.text and not refused.buttons
    assert "tylko właściciel" in (await api.ask(HELPER, f"/demote #{second.id}")).text
    async with bot.ctx.db.transaction() as session:
        owner = await get_member(session, ADMIN_ID)
        assert owner is not None
    assert "właścicielem" in (await api.ask(HELPER, f"/block #{owner.id}")).text
    assert await _state(bot, HELPER + 1) == (MemberStatus.APPROVED, Role.ADMIN)

    # A confirmation forged by the helper (the owner's button) changes nothing either.
    own = await api.ask(HELPER, "/start")
    await asyncio.sleep(0.3)
    api.drain(HELPER)
    forged = await api.click(HELPER, own, f"blk:{second.id}:ok")
    assert "tylko właściciel" in forged.text
    assert await _state(bot, HELPER + 1) == (MemberStatus.APPROVED, Role.ADMIN)

    demoted = await api.ask(ADMIN_ID, f"/demote #{second.id}")
    assert "nie jest już administratorem" in demoted.text
    assert "Nie masz już praw" in (await api.next_reply(HELPER + 1)).text
    assert await _state(bot, HELPER + 1) == (MemberStatus.APPROVED, Role.MEMBER)
    confirm = await api.ask(ADMIN_ID, f"/block #{helper.id}")
    await api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))
    assert await _state(bot, HELPER) == (MemberStatus.BLOCKED, Role.MEMBER)


async def test_unblock_in_the_bot_and_the_cli(bot: BotHarness, capsys: pytest.CaptureFixture[str]) -> None:
    api = bot.api
    member = await bot.member(MEMBER, "Fundacja Testowa", name="Jan")
    confirm = await api.ask(ADMIN_ID, f"/block #{member.id}")
    await api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))
    await api.next_reply(MEMBER)
    unblocked = await api.ask(ADMIN_ID, f"/unblock #{member.id}")
    assert "Odblokowano" in unblocked.text
    assert "odblokował" in (await api.next_reply(MEMBER)).text
    assert await _state(bot, MEMBER) == (MemberStatus.APPROVED, Role.MEMBER)
    assert "Jak się nazywa" in (await api.ask(MEMBER, "/event")).text
    assert "nie jest zablokowany" in (await api.ask(ADMIN_ID, f"/unblock #{member.id}")).text
    assert "/unblock" in (await api.ask(ADMIN_ID, "/unblock")).text  # usage

    confirm = await api.ask(ADMIN_ID, f"/block #{member.id}")
    await api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))
    capsys.readouterr()
    assert await run(bot.ctx, "member", "unblock", str(MEMBER)) == 0
    assert "unblocked" in capsys.readouterr().out
    assert await _state(bot, MEMBER) == (MemberStatus.APPROVED, Role.MEMBER)
    assert await run(bot.ctx, "member", "unblock", str(MEMBER)) == 1
    assert "not blocked" in capsys.readouterr().err
    assert await run(bot.ctx, "member", "unblock", "424242") == 1
    assert "424242" in capsys.readouterr().err


async def test_blocking_a_requester_settles_their_request(bot: BotHarness) -> None:
    api = bot.api
    await bot.member(ADMIN_ID, None, admin=True, name="Anna Admin")
    await bot.org("Fundacja Testowa")
    await api.ask(MEMBER, "/join")
    pick = await api.ask(MEMBER, "Testowa")
    await api.click(MEMBER, pick, pick.button("Testowa"))
    request = await api.next_reply(ADMIN_ID)
    async with bot.ctx.db.transaction() as session:
        member = await get_member(session, MEMBER)
        assert member is not None
    confirm = await api.ask(ADMIN_ID, f"/block #{member.id}")
    await api.click(ADMIN_ID, confirm, confirm.button("Zablokuj"))
    api.press(ADMIN_ID, request, request.button("Zatwierdź"))
    answer = await api.next_answer()
    assert "już rozpatrzona" in answer and "Anna Admin" in answer and "odrzucona" in answer
    assert await _state(bot, MEMBER) == (MemberStatus.BLOCKED, Role.MEMBER)
