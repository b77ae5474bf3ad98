"""A bounce mailbox nobody can read is a silent failure (bounces disable nobody, complaints
unsubscribe nobody): the admins hear of it once, from one instance, and once when it is
read again, and /healthz shows it. Against a real Dovecot."""

from __future__ import annotations

import asyncio
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import SecretStr

from infranet.newsletter.service import NewsletterService
from tests.imap_server import ImapServer, imap_fixture  # noqa: F401
from tests.newsletter_support import newsletter_context


async def until(condition: object, seconds: float) -> None:
    for _ in range(int(seconds * 10)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_admins_hear_once_when_the_mailbox_fails_and_once_when_it_is_back(
        db_url: str, tmp_path: Path, imap: ImapServer) -> None:
    told: list[tuple[str, str]] = []

    async def tell_admins(text_en: str, text_pl: str) -> None:
        told.append((text_en, text_pl))

    ctx = await newsletter_context(db_url, tmp_path,
                                   bounces=imap.settings(password="wrong-pw", poll_interval_s=5))
    # Two instances on one database, both failing to log in.
    first, second = NewsletterService(ctx, AsyncIOScheduler()), NewsletterService(ctx, AsyncIOScheduler())
    ctx.alerts.register(tell_admins)  # one context, as both instances here share it
    try:
        await first.start()
        await second.start()
        await until(lambda: told, 20)
        await asyncio.sleep(1)  # the other instance's second failure, told to nobody
        assert len(told) == 1
        english, polish = told[0]
        assert "nie mogę odczytać skrzynki zwrotów" in polish and "bounce mailbox" in english
        assert "wrong-pw" not in english + polish and ".." not in english
        health = first.status()["bounces"]
        assert health["ok"] is False and "refused the login" in health["error"]
        assert "wrong-pw" not in str(health)

        ctx.settings.bounces.password = SecretStr(imap.password)  # the admin fixes it
        await until(lambda: len(told) == 2, 20)
        assert "znów jest odczytywana" in told[1][1]
        await until(lambda: first.status()["bounces"] == {"ok": True}, 10)
        await asyncio.sleep(1)
        assert len(told) == 2
    finally:
        ctx.alerts.unregister(tell_admins)
        await first.stop()
        await second.stop()
        await ctx.db.dispose()
