"""The bot's runtime: webhook mode, flood control, rate limit, errors, timeouts, long texts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.applications import Starlette
from telegram.ext import CommandHandler

from infranet.bot.common import split_html, visible_length
from infranet.bot.service import build
from infranet.context import AppContext
from tests.bot_fixtures import ADMIN_ID, BotHarness, start_bot
from tests.botapi import BotApi, parse_html

USER = 8001


async def test_webhook_mode_checks_the_secret(ctx: AppContext, botapi: BotApi) -> None:
    harness = await start_bot(ctx, botapi, mode="webhook", webhook_secret="s3cret-Token_1")
    try:
        assert botapi.webhook["secret_token"] == "s3cret-Token_1"
        assert botapi.webhook["url"].endswith("/telegram/webhook")
        assert not any(method == "getUpdates" for method, _ in botapi.calls)
        app = Starlette(routes=harness.runtime.routes)
        update = botapi.message_update(USER, "/start")
        update["update_id"] = 1
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as client:
            wrong = await client.post("/telegram/webhook", json=update,
                                      headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
            missing = await client.post("/telegram/webhook", json=update)
            assert wrong.status_code == missing.status_code == 403
            await botapi.silence(USER, 0.5)
            right = await client.post("/telegram/webhook", json=update,
                                      headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"})
            assert right.status_code == 200
        assert "Cześć" in (await botapi.next_reply(USER)).text
    finally:
        await harness.stop()


async def test_flood_control_is_retried_not_lost(bot: BotHarness) -> None:
    bot.api.flood("sendMessage", times=2, retry_after=1)
    reply = await bot.api.ask(USER, "/start", wait=15)
    assert "Cześć" in reply.text
    refusals = [d for m, d in bot.api.errors if m == "sendMessage"]
    assert len(refusals) == 2 and all("Too Many Requests" in d for d in refusals)


async def test_commands_per_minute_limit_is_polite(ctx: AppContext, botapi: BotApi) -> None:
    bot = await start_bot(ctx, botapi, commands_per_minute=3)
    try:
        for _ in range(3):
            assert "Cześć" in (await bot.api.ask(USER, "/start")).text
        slow = await bot.api.ask(USER, "/start")
        assert "najwyżej 3 na minutę" in slow.text
        bot.api.send_text(USER, "/help")
        await bot.api.silence(USER, 0.5)  # one polite line, not one per command
        # Someone else is not affected.
        assert "Cześć" in (await bot.api.ask(USER + 1, "/start")).text
    finally:
        await bot.stop()


async def test_unexpected_error_is_logged_with_update_id_and_no_traceback(
        bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    async def boom(update: Any, context: Any) -> None:
        raise RuntimeError("kaboom")

    assert bot.runtime.application is not None
    bot.runtime.application.add_handler(CommandHandler("boom", boom), group=-1)
    with caplog.at_level(logging.ERROR, logger="infranet.bot.runtime"):
        update_id = bot.api.send_text(USER, "/boom")
        reply = await bot.api.next_reply(USER)
    assert f"zgłoszenie {update_id}" in reply.text
    assert "kaboom" not in reply.text and "Traceback" not in reply.text
    assert any(f"update {update_id} failed" in r.getMessage() for r in caplog.records)


async def test_conversation_timeout_says_so(bot: BotHarness) -> None:
    bot.ctx.settings.telegram.conversation_timeout_s = 1  # below the configurable minimum, for speed
    await bot.restart()
    await bot.org("Fundacja Testowa")
    await bot.api.ask(USER, "/join")
    expired = await bot.api.next_reply(USER, wait=5)
    assert "wygasła" in expired.text
    # After the timeout, text is not taken as an answer to the old question.
    reply = await bot.api.ask(USER, "Testowa")
    assert "Nie wiem, do czego" in reply.text


async def test_cancel_leaves_the_conversation(bot: BotHarness) -> None:
    await bot.api.ask(USER, "/join")
    assert "Anulowano" in (await bot.api.ask(USER, "/cancel")).text
    assert "nic do anulowania" in (await bot.api.ask(USER, "/cancel")).text


async def test_over_long_input_is_answered_with_the_limit(bot: BotHarness) -> None:
    await bot.api.ask(USER, "/join")
    reply = await bot.api.ask(USER, "x" * 250)
    assert "250 znaków, limit to 200" in reply.text
    assert "x" * 5 in (await bot.api.ask(USER, "Fundacja xxxxx")).text  # still in the same step


async def test_long_listing_is_split_below_telegram_limit(bot: BotHarness) -> None:
    for index in range(120):
        await bot.member(10_000 + index, f"Organizacja numer {index} " + "ż" * 20,
                         name=f"Członek {index} <&> " + "ą" * 20)
    bot.api.send_text(ADMIN_ID, "/members")
    parts = []
    while True:
        try:
            parts.append(await bot.api.next_reply(ADMIN_ID, wait=2))
        except AssertionError:
            break
    assert len(parts) >= 3
    assert all(len(p.text) <= 4096 for p in parts)
    assert "Członek 119 <&>" in "".join(p.text for p in parts)
    assert not bot.api.errors


def test_split_html_keeps_tags_whole() -> None:
    paragraphs = [f"<b>Nagłówek {i}</b>\n" + "treść &amp; " * 40 for i in range(40)]
    text = "\n\n".join(paragraphs)
    parts = split_html(text, 1000)
    assert len(parts) > 1
    for part in parts:
        assert visible_length(part) <= 1000
        parse_html(part)  # raises on a cut tag or entity
    one_huge_line = "<i>" + "a" * 5000 + "</i>"
    parts = split_html(one_huge_line)
    assert [visible_length(p) for p in parts] == [4096, 904]


async def test_group_chat_answers_listings_only(bot: BotHarness) -> None:
    group = -100777
    help_text = await bot.api.ask(USER, "/help", chat_id=group, chat_type="supergroup")
    assert "/start" in help_text.text
    bot.api.send_text(USER, "/nonsense", chat_id=group, chat_type="supergroup")
    await bot.api.silence(group, 0.5)  # other bots' commands are not answered in groups


async def test_no_token_leaves_the_bot_off(ctx: AppContext) -> None:
    component = build(ctx, AsyncIOScheduler())
    status = component.status() if component.status else {}
    assert status["enabled"] is False and "@BotFather" in status["hint"]
    await asyncio.sleep(0)


async def test_bot_runs_inside_the_service(fresh_db_url: str, tmp_path: Any, botapi: BotApi) -> None:
    """`infranet run` in-process: migrate, HTTP, scheduler and the polling bot in one loop."""
    from pydantic import SecretStr

    from infranet.app import Service
    from infranet.config import Settings
    from tests.botapi import TOKEN
    from tests.conftest import TEST_SECRET

    settings = Settings(database={"url": fresh_db_url}, service={"data_dir": tmp_path / "data"},
                        http={"port": 0},
                        telegram={"token": SecretStr(TOKEN), "base_url": botapi.base_url,
                                  "admin_ids": [ADMIN_ID]})
    service = Service(AppContext.create(settings, secret_key=TEST_SECRET))
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.started.wait(), 30)
        assert "Cześć" in (await botapi.ask(USER, "/start")).text
        assert "/members" in (await botapi.ask(ADMIN_ID, "/help")).text  # admin from admin_ids
        port = service.server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient() as client:
            health = (await client.get(f"http://127.0.0.1:{port}/healthz")).json()
        assert health["parts"]["bot"] == {"ok": True, "enabled": True, "mode": "polling",
                                          "username": "infranet_test_bot"}
        assert service.scheduler.get_job("referrals-purge") is not None
        # app.py hands the bot this process's newsletter sender (no module global between them)
        parts = {c.name: c for c in service.components}
        runtime, newsletter = parts["bot"].start.__self__, parts["newsletter"].start.__self__  # type: ignore[union-attr]
        assert runtime.application.start_sending == newsletter.kick
    finally:
        service.stopping.set()
        await asyncio.wait_for(task, 15)
    assert "token" not in str(health).lower()


async def test_refused_token_or_unreachable_api_leaves_the_service_up(
        ctx: AppContext, botapi: BotApi, caplog: pytest.LogCaptureFixture) -> None:
    from pydantic import SecretStr

    from infranet.bot.runtime import BotRuntime

    refused = await start_bot(ctx, botapi, token=SecretStr("999:not-the-token"))
    status = refused.runtime.status()
    assert status["ok"] is False and "refused the token" in status["error"]
    await refused.stop()

    with socket_closed() as port:
        ctx.settings.telegram.base_url = f"http://127.0.0.1:{port}/bot"
        runtime = BotRuntime(ctx)
        with caplog.at_level(logging.ERROR):
            await runtime.start()  # does not raise
        status = runtime.status()
        assert status["ok"] is False and "retrying" in status["error"]
        assert "999:not-the-token" not in caplog.text and "TEST-token" not in caplog.text
        await runtime.stop()


def socket_closed() -> Any:
    """A loopback port nobody listens on."""
    import contextlib
    import socket

    @contextlib.contextmanager
    def port() -> Any:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            number = sock.getsockname()[1]
        yield number

    return port()


async def test_a_message_that_cannot_be_edited_is_answered_anew(bot: BotHarness) -> None:
    choose = await bot.api.ask(USER, "/lang")
    del bot.api.messages[USER][choose.message_id]  # deleted meanwhile
    answer = await bot.api.click(USER, choose, choose.button("English"))
    assert answer.kind == "send" and "English" in answer.text
