"""Every kind of page of the public site in a real browser (Debian's Chromium): no serious
or critical accessibility violation (axe-core), readable at 390 px without sideways
scrolling, no request to another server, and usable with the keyboard.

With INFRANET_SCREENSHOTS=DIR each page is also saved at 390 and 1280 px for a person
to look at."""

from __future__ import annotations

import pytest

from infranet.context import AppContext
from tests.browser_support import NARROW, WIDE, Browser
from tests.http_app import assembled, served
from tests.test_insight_indicators import _network

# (name, path): one of each kind of page, on the network of tests/test_insight_indicators.
PAGES = [
    ("insight", "/insight?year=2026&indicator=events&service=legal-advice"),
    ("insight-en", "/insight?year=2026&indicator=subscribers&measure=count&lang=en"),
    ("problem", "/insight?year=1999"),
]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_every_page_kind_passes_in_a_real_browser(ctx: AppContext, browser: Browser) -> None:
    await _network(ctx)
    async with assembled(ctx) as app, served(app.app) as url:
        problems: list[str] = []
        for name, path in PAGES:
            await browser.open(url + path, WIDE)
            await browser.screenshot(name, WIDE)
            problems += [f"{name}: {v}" for v in await browser.violations()]
            problems += [f"{name}: loaded {u}" for u in browser.requests_elsewhere(url)]
            await browser.open(url + path, NARROW)
            await browser.screenshot(name, NARROW)
            if (wider := await browser.overflows()) > 0:
                problems.append(f"{name}: {wider}px wider than a 390px screen")
        assert not problems, "\n".join(problems)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_keyboard_reaches_the_content_first(ctx: AppContext, browser: Browser) -> None:
    async with assembled(ctx) as app, served(app.app) as url:
        await browser.open(url + "/insight")
        first = await browser.tab_to(1)
        assert 'class="skip"' in first and "#content" in first
        second = await browser.tab_to(2)
        assert "brand" in second
