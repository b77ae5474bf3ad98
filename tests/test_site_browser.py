"""Every kind of page of the public site in a real browser (Debian's Chromium): no serious
or critical accessibility violation (axe-core), readable at 390 px without sideways
scrolling, no request to another server, and usable with the keyboard.

With INFRANET_SCREENSHOTS=DIR each page is also saved at 390 and 1280 px for a person
to look at."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from infranet.calendar.event_links import event_path
from infranet.context import AppContext
from infranet.storage.models import Event
from tests.browser_support import NARROW, WIDE, Browser
from tests.http_app import assembled, served
from tests.test_insight_indicators import _network

# (name, path): one of each kind of page, on the network of tests/test_insight_indicators
# ("EVENT" is replaced by the path of the network's weekly series).
PAGES = [
    ("home", "/"),
    ("list-filtered", "/events?area=elcki&category=meeting&lang=en"),
    ("search", "/events?q=klub"),
    ("month", "/events?view=month&month=2026-12"),
    ("event", "EVENT"),
    ("trainings", "/trainings"),
    ("organisations", "/organisations"),
    ("feeds", "/calendar?area=elcki"),
    ("embed", "/embed?area=elcki&limit=5"),
    ("propose", "/events/new"),
    ("insight", "/insight?year=2026&indicator=events&service=legal-advice"),
    ("insight-en", "/insight?year=2026&indicator=subscribers&measure=count&lang=en"),
    ("problem", "/events?area=nowhere"),
    ("not-found", "/events/999999"),
]


async def _series_path(ctx: AppContext) -> str:
    async with ctx.db.read() as session:
        event = (await session.execute(select(Event.id, Event.title).where(
            Event.title == "Klub wolontariusza"))).one()
    return event_path(event.id, event.title)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_every_page_kind_passes_in_a_real_browser(ctx: AppContext, browser: Browser) -> None:
    await _network(ctx)
    event = await _series_path(ctx)
    async with assembled(ctx) as app, served(app.app) as url:
        problems: list[str] = []
        for name, path in PAGES:
            path = event if path == "EVENT" else path
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
