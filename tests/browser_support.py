"""A real browser for the site's tests: Debian's Chromium, headless, driven by Selenium
through Debian's chromedriver, with axe-core (tests/browser/package.json, installed by
`npm ci` there) injected into each page to check accessibility.

Selenium's calls block, and the page under test is served by uvicorn on the test's own
event loop, so every browser call runs in a thread (`await browser.open(...)`).

`.ci/run` installs chromium, chromium-driver and axe-core when they are missing; on a
machine without them the browser tests are skipped with a reason saying what to install.
Screenshots go to `$INFRANET_SCREENSHOTS` when it is set, for a person to look at.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

AXE_JS = Path(__file__).parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
NARROW = 390
WIDE = 1280


def _missing() -> str | None:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return "Chromium is missing: apt-get install chromium chromium-driver (.ci/run does it)"
    if not AXE_JS.exists():
        return "axe-core is missing: npm ci --prefix tests/browser (.ci/run does it)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing: make .venv/.installed"
    return None


class Browser:
    """One headless Chromium window; methods are awaited and run the driver in a thread."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.axe_source = AXE_JS.read_text()

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, url: str, width: int = WIDE) -> None:
        def go() -> None:
            self.driver.set_window_size(width, 900)
            self.driver.get(url)
        await self._call(go)

    async def run(self, script: str, *args: Any) -> Any:
        return await self._call(self.driver.execute_script, script, *args)

    async def text(self) -> str:
        return str(await self.run("return document.body.innerText"))

    async def title(self) -> str:
        return str(await self.run("return document.title"))

    async def overflows(self) -> int:
        """How many CSS pixels the page is wider than the window (0: no sideways scrolling)."""
        return int(await self.run(
            "return Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"))

    async def violations(self, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
        """axe-core's violations of those impacts, as readable lines (empty: none)."""
        def check() -> list[dict[str, Any]]:
            self.driver.execute_script(self.axe_source)
            self.driver.set_script_timeout(30)
            return self.driver.execute_async_script(  # type: ignore[no-any-return]
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {resultTypes: ['violations']})"
                ".then(r => done(r.violations), e => done([{id: 'axe-error', impact: 'critical',"
                " help: String(e), nodes: []}]));")
        found = await self._call(check)
        return [f"{v['id']} ({v['impact']}): {v['help']} — "
                + "; ".join(n.get("html", "")[:120] for n in v.get("nodes", [])[:3])
                for v in found if v.get("impact") in impacts]

    async def screenshot(self, name: str, width: int) -> None:
        folder = os.environ.get("INFRANET_SCREENSHOTS")
        if not folder:
            return

        def shoot() -> None:
            self.driver.set_window_size(width, 900)
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(width, min(int(height) + 120, 6000))
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(Path(folder) / f"{name}-{width}.png"))
            self.driver.set_window_size(width, 900)
        await self._call(shoot)

    async def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        await self._call(lambda: self.driver.find_element(By.CSS_SELECTOR, css).click())

    async def fill(self, css: str, value: str) -> None:
        from selenium.webdriver.common.by import By

        def type_in() -> None:
            field = self.driver.find_element(By.CSS_SELECTOR, css)
            field.clear()
            field.send_keys(value)
        await self._call(type_in)

    async def tab_to(self, presses: int) -> str:
        """The outer HTML of what has focus after pressing Tab `presses` times from the top
        of the freshly loaded page (Chrome starts from the last focused element otherwise)."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        def tab() -> str:
            self.driver.refresh()
            chain = ActionChains(self.driver)
            for _ in range(presses):
                chain.send_keys(Keys.TAB)
            chain.perform()
            return str(self.driver.execute_script("return document.activeElement.outerHTML"))
        return str(await self._call(tab))

    def requests_elsewhere(self, own_origin: str) -> list[str]:
        """URLs the page loaded from anywhere but `own_origin` (fonts, trackers, tiles)."""
        entries = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        return [u for u in entries if not u.startswith(own_origin) and not u.startswith("data:")]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=pl"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=Service(executable_path=shutil.which("chromedriver")))
    try:
        yield Browser(driver)
    finally:
        driver.quit()
