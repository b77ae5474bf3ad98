"""The public site's event list, filters, search and month view, through the assembled app
on both engines: what a visitor reads on `/events` and `/`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import unescape
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from infranet.calendar import site_listing
from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event, cancel_event, moderate_event, update_event
from infranet.calendar.proposals import Proposal, propose
from infranet.context import AppContext
from infranet.network.orgs import OrgInput, add_organisation
from infranet.storage.actors import Actor
from tests.http_app import assembled

W = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tuesday 1 December 2026, 9:00 in Warsaw


@pytest.fixture(autouse=True)
def _fixed_clock(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW


@dataclass
class Seeded:
    org_a: int
    org_b: int
    workshop: int
    escaped: int


def at(day: int, hour: int, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=W)


async def seed(ctx: AppContext) -> Seeded:
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        a = await add_organisation(s, ctx, cli, OrgInput(name="Fundacja Zielona Łąka"))
        b = await add_organisation(s, ctx, cli, OrgInput(name="Stowarzyszenie Brzeg"))

        async def add(title: str, start: datetime | date, end: datetime | date, **kw: object) -> int:
            return (await add_event(s, ctx, cli, EventInput(title, start, end, **kw))).id  # type: ignore[arg-type]

        workshop = await add("Warsztaty w Łodzi", at(5, 10), at(5, 14), district="olsztyński",
                             category="training", audiences=["ngo"], organisation_id=a.id,
                             location="Dom Kultury, ul. Źródlana 3", description="Dla NGO z okolic.")
        await add("Forum regionalne", date(2026, 12, 6), date(2026, 12, 6), all_day=True,
                  district="region", category="conference", organisation_id=b.id)
        await add("Targi NGO", date(2026, 12, 10), date(2026, 12, 12), all_day=True,
                  district="ełcki", category="fair", organisation_id=b.id)
        await add("Dyżur prawny", at(2, 16), at(2, 18), district="olsztyn", category="consultation",
                  audiences=["seniors"], rrule="FREQ=WEEKLY;COUNT=3", organisation_id=b.id)
        escaped = await add("<script>alert(1)</script> i </b>", at(7, 12), at(7, 13),
                            district="olsztyński", category="meeting", organisation_id=b.id)
        cancelled = await add("Spotkanie przełożone", at(8, 12), at(8, 13), district="olsztyński",
                              category="meeting", organisation_id=b.id)
        await cancel_event(s, ctx, cli, cancelled)
        await add("Obóz zimowy", at(14, 10), at(16, 12), district="piski", category="other",
                  audiences=["youth"], organisation_id=b.id)
        await add("Dawno temu", at(20, 10, month=11), at(20, 12, month=11), district="olsztyński",
                  category="meeting", organisation_id=b.id)
        await add("Nocny maraton", at(18, 22), at(19, 2), district="olsztyński", category="meeting",
                  organisation_id=b.id)
        await add("Przełom miesięcy", date(2026, 11, 29), date(2026, 12, 2), all_day=True,
                  district="olsztyński", category="meeting", organisation_id=b.id)
        for i in range(6):
            await add(f"Dzień pełen spotkań {i}", at(20, 9 + i), at(20, 10 + i), district="elbląski",
                      category="meeting", organisation_id=b.id)
    return Seeded(a.id, b.id, workshop, escaped)


def days_of(html: str) -> dict[str, list[str]]:
    """Day heading -> titles listed under it (in order), as a visitor reads the list."""
    out: dict[str, list[str]] = {}
    for part in html.split("<h2")[1:]:
        heading = unescape(re.sub(r"<[^>]+>", "", part.split("</h2>")[0].split(">", 1)[1])).strip()
        out[heading] = [unescape(t) for t in re.findall(r'<a href="/events/\d+[^"]*">([^<]*)</a>', part)]
    return out


def month_cells(html: str) -> dict[str, str]:
    """ISO day -> the HTML of its cell in the month grid."""
    found = re.findall(r'<time datetime="(2026-12-\d\d)">.*?</time>(.*?)</td>', html, re.S)
    return dict(found)


def titles(html: str) -> list[str]:
    return [t for day in days_of(html).values() for t in day]


async def get(ctx: AppContext, path: str) -> tuple[int, str]:
    async with assembled(ctx) as app, app.client() as client:
        response = await client.get(path)
    return response.status_code, response.text


async def test_list_by_day_in_polish_and_english_with_series_all_day_and_multi_day(ctx: AppContext) -> None:
    seeded = await seed(ctx)
    async with assembled(ctx) as app, app.client() as client:
        pl = (await client.get("/events")).text
        home = await client.get("/")
        en = (await client.get("/events?lang=en")).text
    assert home.status_code == 200 and days_of(home.text) == days_of(pl)
    days = days_of(pl)
    assert list(days)[:5] == ["wtorek, 1 grudnia 2026", "środa, 2 grudnia 2026", "sobota, 5 grudnia 2026",
                              "niedziela, 6 grudnia 2026", "poniedziałek, 7 grudnia 2026"]
    # Running since November: under the list's first day, where what is on now is looked for.
    assert days["wtorek, 1 grudnia 2026"] == ["Przełom miesięcy"]
    assert days["środa, 2 grudnia 2026"] == ["Dyżur prawny"]
    assert days["środa, 9 grudnia 2026"] == ["Dyżur prawny"]  # the weekly series, expanded
    assert days["środa, 16 grudnia 2026"] == ["Dyżur prawny"]
    assert "Dawno temu" not in titles(pl)  # past events are not upcoming
    assert days["czwartek, 10 grudnia 2026"] == ["Targi NGO"]  # three days, listed once
    # Times in the region's zone; all-day and multi-day events say so.
    workshop = pl.split("Warsztaty w Łodzi")[0].rsplit("<li", 1)[1]
    assert "10:00–14:00" in workshop
    forum = pl.split("Forum regionalne")[0].rsplit("<li", 1)[1]
    assert "cały dzień" in forum
    fair = pl.split("Targi NGO")[0].rsplit("<li", 1)[1]
    assert "10 grudnia 2026 – sobota, 12 grudnia 2026" in fair
    camp = pl.split("Obóz zimowy")[0].rsplit("<li", 1)[1]
    assert "14 grudnia 2026" in camp and "16 grudnia 2026" in camp
    # Place, district, category and organiser; a link to the event's page.
    meta = pl.split("Warsztaty w Łodzi")[1].split("</li>")[0]
    assert "Dom Kultury, ul. Źródlana 3" in meta and "olsztyński" in meta
    assert "Szkolenie" in meta or "szkolenie" in meta
    assert "Fundacja Zielona Łąka" in meta
    assert f'href="/events/{seeded.workshop}-warsztaty-w-lodzi"' in pl
    # A cancelled event is listed, marked.
    cancelled = pl.split("Spotkanie przełożone")[0].rsplit("<li", 1)[1]
    assert 'class="cancelled"' in cancelled and "Odwołane" in cancelled
    # English: days in English, links keep the language.
    assert "Saturday, 5 December 2026" in days_of(en)
    assert "all day" in en and "Cancelled" in en
    assert f'href="/events/{seeded.workshop}-warsztaty-w-lodzi?lang=en"' in en
    assert '<html lang="en">' in en


async def test_filters_area_with_parents_category_audience_and_organisation(ctx: AppContext) -> None:
    seeded = await seed(ctx)
    async with assembled(ctx) as app, app.client() as client:
        async def shown(query: str) -> set[str]:
            response = await client.get(f"/events?{query}")
            assert response.status_code == 200, response.text
            return set(titles(response.text))

        powiat = await shown("area=olsztynski")
        assert {"Warsztaty w Łodzi", "Forum regionalne"} <= powiat  # the region's event too
        assert not {"Targi NGO", "Dyżur prawny", "Obóz zimowy"} & powiat
        subregion = await shown("area=podregion-olsztynski")
        assert {"Warsztaty w Łodzi", "Forum regionalne", "Dyżur prawny"} <= subregion
        assert "Targi NGO" not in subregion
        both = await shown("area=olsztyn&area=elcki")
        assert {"Dyżur prawny", "Targi NGO", "Forum regionalne"} <= both
        assert "Warsztaty w Łodzi" not in both
        assert await shown("category=fair") == {"Targi NGO"}
        seniors = await shown("audience=seniors")
        assert "Dyżur prawny" in seniors and "Forum regionalne" in seniors  # no audience: everyone
        assert "Warsztaty w Łodzi" not in seniors and "Obóz zimowy" not in seniors
        assert await shown(f"org={seeded.org_a}") == {"Warsztaty w Łodzi"}
        assert await shown("category=training&area=elcki") == set()
        page = (await client.get("/events?category=fair&area=elcki")).text
    assert "Brak nadchodzących wydarzeń" not in page
    # The feeds of the same filters, one click away; the filter is shown and removable.
    assert 'href="/calendar.ics?area=elcki&amp;category=fair"' in page
    assert 'href="/events.rss?area=elcki&amp;category=fair"' in page
    assert 'href="/events?category=fair"' in page  # removes the area


@pytest.mark.parametrize("driver_max", [3000, 0], ids=["by-word-index", "walking-in-time-order"])
async def test_search_without_diacritics_in_any_case_and_by_organiser(
        ctx: AppContext, driver_max: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same answers whether a rare word names the events to read or, when every word is
    common (here: any word), the listing walks events in time order testing each."""
    monkeypatch.setattr(site_listing, "DRIVER_MAX", driver_max)
    await seed(ctx)
    async with assembled(ctx) as app, app.client() as client:
        async def found(q: str) -> list[str]:
            response = await client.get(f"/events?q={quote(q)}")
            assert response.status_code == 200
            return titles(response.text)

        assert await found("lodz") == ["Warsztaty w Łodzi"]
        assert await found("ŁÓDŹ") == ["Warsztaty w Łodzi"]
        assert await found("łódź") == ["Warsztaty w Łodzi"]
        assert await found("zrodlana") == ["Warsztaty w Łodzi"]  # the place
        assert await found("okolic ngo") == ["Warsztaty w Łodzi"]  # the description, every word
        assert await found("zielona laka") == ["Warsztaty w Łodzi"]  # the organisation's name
        assert await found("DYŻUR") == ["Dyżur prawny"] * 3
        assert await found("50%_") == []
        none = (await client.get("/events?q=nieistniejace")).text
        both = await found("lodz warsztaty")
        combined = titles((await client.get("/events?q=targi&area=elcki")).text)
    assert "Brak nadchodzących wydarzeń" in none
    assert both == ["Warsztaty w Łodzi"]
    assert combined == ["Targi NGO"]


async def test_month_grid_with_more_link_prev_next_and_filters_kept(ctx: AppContext) -> None:
    await seed(ctx)
    status, html = await get(ctx, "/events?view=month&month=2026-12&category=meeting")
    assert status == 200
    assert "<caption>Wydarzenia w miesiącu: grudzień 2026</caption>" in html
    headers = re.findall(r'<th scope="col">([^<]+)</th>', html)
    assert headers[0] == "poniedziałek" and headers[6] == "niedziela"
    cells = month_cells(html)
    assert len(cells) == 31
    # 1 December 2026 is a Tuesday: one blank cell before it.
    first_row = html.split("<tbody>")[1].split("</tr>")[0]
    assert first_row.count('class="blank"') == 1
    day20 = cells["2026-12-20"]
    assert day20.count("Dzień pełen spotkań") == 4
    assert "+2 więcej" in day20
    assert 'href="/events?category=meeting&amp;from=2026-12-20"' in day20
    assert "Spotkanie przełożone" in cells["2026-12-08"] and "Odwołane" in cells["2026-12-08"]
    assert "Targi" not in html  # filtered out
    # Over midnight: on both days; begun in November: on its December days.
    assert [d for d, c in cells.items() if "Nocny maraton" in c] == ["2026-12-18", "2026-12-19"]
    assert "22:00" in cells["2026-12-18"] and "22:00" not in cells["2026-12-19"]  # starts the day before
    assert [d for d, c in cells.items() if "Przełom miesięcy" in c] == ["2026-12-01", "2026-12-02"]
    assert 'href="/events?category=meeting&amp;view=month&amp;month=2026-11"' in html
    assert 'href="/events?category=meeting&amp;view=month&amp;month=2027-01"' in html
    # Multi-day events are on each of their days; series on each of theirs.
    status, html = await get(ctx, "/events?view=month&month=2026-12&lang=en")
    cells = month_cells(html)
    assert [d for d, c in cells.items() if "Targi NGO" in c] == ["2026-12-10", "2026-12-11", "2026-12-12"]
    assert [d for d, c in cells.items() if "Obóz zimowy" in c] == ["2026-12-14", "2026-12-15", "2026-12-16"]
    assert [d for d, c in cells.items() if "Dyżur prawny" in c] == ["2026-12-02", "2026-12-09", "2026-12-16"]
    assert "<caption>Events in December 2026</caption>" in html and "+2 more" in html
    # The day's list the "+2" link leads to.
    status, html = await get(ctx, "/events?category=meeting&from=2026-12-20")
    assert status == 200
    assert next(iter(days_of(html))) == "niedziela, 20 grudnia 2026"
    assert titles(html)[:6] == [f"Dzień pełen spotkań {i}" for i in range(6)]


async def test_titles_are_escaped(ctx: AppContext) -> None:
    seeded = await seed(ctx)
    for path in ("/events", "/events?view=month&month=2026-12", "/events?q=script"):
        status, html = await get(ctx, path)
        assert status == 200
        assert "<script>" not in html and "</b>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; i &lt;/b&gt;" in html
    status, html = await get(ctx, "/events?q=%3C%2Fb%3E%22%3E%3Cscript%3E")
    assert status == 200 and "<script>" not in html
    assert f"/events/{seeded.escaped}-script-alert-1-script-i-b" in html


async def test_hostile_parameters_are_400_with_a_message_in_the_page_language(ctx: AppContext) -> None:
    await seed(ctx)
    cases = [
        ("area=nigdzie", "Nie można zastosować filtra"),
        ("category=party", "Nie można zastosować filtra: Kategoria: nieznane party"),
        ("audience=aliens", "Nie można zastosować filtra: Dla kogo: nieznane aliens"),
        ("org=abc", "Nie można zastosować filtra: Organizacja: &#39;abc&#39; to nie jest numer"),
        ("area=" + "&area=".join(["olsztynski"] * 150), "Nie można zastosować filtra"),
        ("view=month&month=2026-13", "Miesiąc „2026-13” jest niepoprawny"),
        ("view=month&month=99999-01", "jest niepoprawny"),
        ("view=year", "Nieznany widok"),
        ("q=" + "a" * 201, "Wyszukiwany tekst ma 201 znaków"),
        ("from=2026-02-30", "Data początkowa „2026-02-30” jest niepoprawna"),
        ("after=12.x", "Link „Późniejsze wydarzenia” jest uszkodzony"),
        ("after=" + "9" * 30 + ".1", "jest uszkodzony"),
        ("q=" + "ą" * 5000, "Adres strony jest za długi"),
    ]
    async with assembled(ctx) as app, app.client() as client:
        for query, message in cases:
            response = await client.get(f"/events?{query}")
            assert response.status_code == 400, query
            assert message in response.text, (query, response.text[-2000:])
            assert 'role="alert"' in response.text
        english = await client.get("/events?view=month&month=2026-13&lang=en")
        junk = await client.get("/events?q=%00%ff%fe%F0%9F%92%A9&area=%00")
        emoji = await client.get("/events?q=%F0%9F%92%A9%00")
    assert english.status_code == 400 and "The month “2026-13” is not valid" in english.text
    assert junk.status_code == 400
    # Symbols only are no words to look for: the list, unfiltered, with the query kept in the box.
    assert emoji.status_code == 200 and "Warsztaty w Łodzi" in emoji.text


async def test_language_switch_and_views_keep_the_filters(ctx: AppContext) -> None:
    await seed(ctx)
    status, html = await get(ctx, "/events?category=training&q=lodz")
    assert status == 200
    assert 'href="/events?category=training&amp;q=lodz&amp;lang=en"' in html
    assert 'href="/events?category=training&amp;q=lodz&amp;view=month&amp;month=2026-12"' in html
    assert 'href="/calendar.ics?category=training"' in html  # the feed has no search
    assert 'href="/events.rss?category=training&amp;q=lodz"' in html
    assert 'value="lodz"' in html
    status, html = await get(ctx, "/events?category=training&q=lodz&lang=en")
    assert 'href="/events?category=training&amp;q=lodz"' in html  # back to Polish
    assert 'href="/events.rss?category=training&amp;q=lodz&amp;lang=en"' in html


async def test_later_events_link_pages_without_repeats_or_gaps(ctx: AppContext) -> None:
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        ids = []
        for i in range(60):
            start = at(3, 8) + timedelta(minutes=5 * (i // 2))  # pairs start together
            ids.append((await add_event(s, ctx, cli, EventInput(
                f"Punkt {i:02d}", start, start + timedelta(hours=1), district="olsztynski"))).id)
        await update_event(s, ctx, cli, ids[0], EventInput(
            "Punkt 00", at(3, 8), at(3, 9), district="olsztynski"))
        await add_event(s, ctx, cli, EventInput("Cotygodniowe", at(3, 9), at(3, 10),
                                                district="olsztynski", rrule="FREQ=WEEKLY;COUNT=2"))
        for i in range(3):  # the region's, listed with the powiat's (read district by district)
            await add_event(s, ctx, cli, EventInput(f"Regionalne {i}", at(3, 8 + i), at(3, 9 + i)))
        await add_event(s, ctx, cli, EventInput("Gdzie indziej", at(3, 9), at(3, 10), district="elcki"))
    expected = sorted([f"Punkt {i:02d}" for i in range(60)] + ["Cotygodniowe"] * 2
                      + [f"Regionalne {i}" for i in range(3)])
    async with assembled(ctx) as app, app.client() as client:
        for first, extra in (("/events", ["Gdzie indziej"]), ("/events?area=olsztynski", [])):
            seen: list[str] = []
            path: str | None = first
            while path:
                html = (await client.get(path)).text
                seen += titles(html)
                starts = re.findall(r'<time datetime="([^"]+)">\d', html)
                assert starts == sorted(starts)  # in time order on every page
                found = re.search(r'<a class="button" href="([^"]+)" rel="next">', html)
                path = unescape(found.group(1)) if found else None
            assert sorted(seen) == sorted(expected + extra), first


async def test_a_proposed_event_is_found_by_its_free_text_organiser_once_published(ctx: AppContext) -> None:
    async with ctx.db.transaction() as s:
        row = await propose(s, ctx, Proposal(
            event=EventInput("Jarmark świąteczny", at(12, 10), at(12, 15), district="olsztyński",
                             category="fair"),
            organiser_name="Koło Gospodyń Wiejskich w Żabim Rogu", cost_pln=None,
            email="kgw@example.org", name=None, language="pl"), "token-key-1")
    status, html = await get(ctx, "/events?q=zabi+rog")
    assert status == 200 and "Jarmark świąteczny" not in html  # waiting for an admin
    async with ctx.db.transaction() as s:
        await moderate_event(s, ctx, Actor.cli(), row.id, True)
    status, html = await get(ctx, "/events?q=zabim+gospodyn")
    assert titles(html) == ["Jarmark świąteczny"]
    assert "organizator: Koło Gospodyń Wiejskich w Żabim Rogu" in html
