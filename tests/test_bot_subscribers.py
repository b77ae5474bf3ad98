"""/subscribers: the admins see how many read the newsletter, by status, language and
district, and never an address in the chat. Through the real Application and the emulator."""

from __future__ import annotations

from infranet.newsletter.roster import unsubscribe_address
from infranet.newsletter.subscribers import subscribe
from infranet.storage.actors import Actor
from tests.bot_fixtures import ADMIN_ID, BotHarness

USER = 9201


async def test_admins_see_counts_without_addresses(bot: BotHarness) -> None:
    async with bot.ctx.db.transaction() as session:
        for email, prefs in {"ala@example.org": {"districts": ["ełcki"]},
                             "bob@example.org": {"language": "en"},
                             "cyryl@example.org": {"districts": ["ełcki", "m. Olsztyn"]},
                             "dora@example.org": {}}.items():
            await subscribe(session, bot.ctx, email, source="import", consented=True, **prefs)
        await subscribe(session, bot.ctx, "ewa@example.org", source="form")  # pending
        await unsubscribe_address(session, bot.ctx, Actor.cli(), "dora@example.org")

    await bot.member(USER, "Fundacja Testowa")
    assert "tylko administratorzy" in (await bot.api.ask(USER, "/subscribers")).text

    shown = (await bot.api.ask(ADMIN_ID, "/subscribers")).text
    assert "Subskrybenci newslettera: 5" in shown
    assert "potwierdzeni: 3" in shown and "wypisani: 1" in shown
    assert "czekają na potwierdzenie: 1" in shown
    assert "pl: 4" in shown and "en: 1" in shown
    # Confirmed readers per district: two chose Ełk, one Olsztyn, one reads everything.
    assert "ełcki: 2" in shown and "Olsztyn: 1" in shown and "cały region: 1" in shown
    assert "@example.org" not in shown
