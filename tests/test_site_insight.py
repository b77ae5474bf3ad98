"""`/insight` through the assembled app: the map and table of a chosen indicator, white
spots, the map as SVG and PNG downloads, and never a person's data."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from infranet.context import AppContext
from tests.http_app import assembled
from tests.test_insight_indicators import _network

SVG = "{http://www.w3.org/2000/svg}"


def _row(html: str, powiat: str) -> list[str]:
    match = re.search(rf'<th scope="row">{powiat}</th>(.*?)</tr>', html, re.S)
    assert match, powiat
    return re.findall(r'<td class="num">(.*?)</td>', match.group(1))


async def test_the_insight_page_shows_the_chosen_indicator_per_powiat(ctx: AppContext) -> None:
    await _network(ctx)
    async with assembled(ctx) as app, app.client() as client:
        page = await client.get("/insight?year=2026&indicator=events&measure=residents"
                                "&service=legal-advice")
        assert page.status_code == 200
        html = page.text
        assert "Wydarzenia na 10 tys. mieszkańców, 2026" in html
        assert _row(html, "ełcki") == ["2", "0,2"]  # 2 events, 84,500 residents
        assert _row(html, "olsztyński") == ["5", "0,4"]
        assert _row(html, "bartoszycki") == ["0", "0,0"]
        svg = ET.fromstring(html[html.index("<svg"):html.index("</svg>") + 6])  # noqa: S314
        paths = {p.get("data-teryt"): p for p in svg.iter(f"{SVG}path") if p.get("data-teryt")}
        assert len(paths) == 21
        assert paths["2814"].get("class") != paths["2801"].get("class")  # olsztyński vs bartoszycki
        # services per powiat: Alfa's legal advice in olsztyński only
        services = html[html.index('id="services"'):html.index('id="white-spots"')]
        row = re.search(r'<th scope="row">olsztyński</th>(.*?)</tr>', services, re.S)
        assert row and re.findall(r">(\d+)</td>", row.group(1))[:3] == ["1", "1", "0"]
        # white spots of legal advice: everywhere but olsztyński, nearest is Fundacja Alfa
        spots = html[html.index('id="white-spots"'):]
        assert "<strong>ełcki</strong>: brak. Najbliżej:" in spots
        assert "Fundacja Alfa (olsztyński)" in spots
        # counts only: no member, subscriber or referred client appears
        for private in ("Alice", "@example.org", "Klub Sportowy Orzeł", "Klub Orzeł", "0000123456",
                        "Regielnicy"):
            assert private not in html

        english = await client.get("/insight?year=2026&indicator=subscribers&measure=count&lang=en")
        assert english.status_code == 200
        assert "Newsletter readers, 2026" in english.text and 'lang="en"' in english.text
        assert _row(english.text, "ełcki")[0] == "3"


async def test_the_map_downloads_as_svg_and_png(ctx: AppContext) -> None:
    await _network(ctx)
    async with assembled(ctx) as app, app.client() as client:
        svg = await client.get("/insight/map.svg?year=2026&indicator=organisations&measure=count")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        root = ET.fromstring(svg.text)  # noqa: S314
        assert len([p for p in root.iter(f"{SVG}path") if p.get("data-teryt")]) == 21
        png = await client.get("/insight/map.png?year=2026&indicator=organisations&measure=count")
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")


async def test_bad_choices_are_explained_not_failed(ctx: AppContext) -> None:
    async with assembled(ctx) as app, app.client() as client:
        for query, words in (("year=1999", "Rok „1999” jest spoza zakresu"),
                             ("year=20x6", "Rok „20x6” jest spoza zakresu"),
                             ("indicator=<script>", "indicator"),
                             ("measure=" + "x" * 5000, "measure"),
                             ("service=legal-advice&service=none", "legal-advice")):
            answer = await client.get(f"/insight?{query}")
            assert answer.status_code == 400, query
            assert words in answer.text and "<script>" not in answer.text
        assert (await client.get("/insight/map.png?year=3000")).status_code == 400
