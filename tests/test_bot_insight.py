"""/insight and /report in the chat, through the Bot API emulator, both engines: members get
the year's totals with the link to the map; admins get the yearly evaluation as a PDF whose
text carries the figures; others are refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from tests.bot_fixtures import BotHarness
from tests.test_insight_indicators import NOW, _network

ADMIN, MEMBER, STRANGER = 5101, 5201, 5301


async def test_members_see_the_years_figures_and_the_map_link(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await _network(bot.ctx)
    await bot.member(MEMBER, "Fundacja Alfa", name="Marta")
    answer = await bot.api.ask(MEMBER, "/insight 2026")
    assert "Sieć w liczbach – 2026" in answer.text
    assert "Organizacje: 3" in answer.text and "Wydarzenia: 8" in answer.text
    assert "Nabory na szkolenia: 1 (miejsca: 20)" in answer.text
    assert "Bez wydarzeń: 19 powiatów" in answer.text
    assert "/insight?year=2026" in answer.text
    wrong = await bot.api.ask(MEMBER, "/insight 1990")
    assert "Rok „1990” jest spoza zakresu" in wrong.text
    stranger = await bot.api.ask(STRANGER, "/insight")
    assert "Sieć w liczbach" not in stranger.text


async def test_admins_get_the_yearly_evaluation_as_a_pdf(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: NOW
    await _network(bot.ctx)
    await bot.member(ADMIN, "Sekretariat", admin=True, name="Ada")
    await bot.member(MEMBER, "Fundacja Alfa", name="Marta")
    told = await bot.api.ask(ADMIN, "/report 2026")
    assert "Przygotowuję ewaluację za 2026" in told.text
    chat_id, name, pdf, caption = await bot.api.next_document()
    assert (chat_id, name, caption) == (ADMIN, "ewaluacja-2026.pdf", "Ewaluacja porozumienia 2026")
    assert pdf.startswith(b"%PDF")
    if shutil.which("pdftotext"):
        done = await asyncio.to_thread(subprocess.run, ["pdftotext", "-", "-"], input=pdf,
                                       capture_output=True, check=True)
        text = done.stdout.decode()
        assert "Ewaluacja porozumienia 2026" in text and "Organizacje członkowskie" in text
    refused = await bot.api.ask(MEMBER, "/report 2026")
    assert "Przygotowuję" not in refused.text
    with pytest.raises(TimeoutError):
        await bot.api.next_document(wait=1.0)
