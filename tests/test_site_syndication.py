"""`/events.rss`, `/sitemap.xml` and the ICS feeds' links to event pages, through the
assembled app on both engines."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import icalendar

from infranet.calendar.event_links import event_url
from infranet.context import AppContext
from tests.http_app import BASE, assembled
from tests.test_site_event_page import HOSTILE, page_of, seed
from tests.test_site_event_page import site_ctx as site_ctx  # the fixture

SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def rss_xml(body: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(body)  # noqa: S314  (the app's own answer)


async def test_rss_lists_upcoming_events_with_filters(site_ctx: AppContext) -> None:
    ctx = site_ctx
    data = await seed(ctx)
    async with assembled(ctx) as app, app.client() as http:
        everything = await http.get("/events.rss")
        trainings = await http.get("/events.rss?category=training")
        elk = await http.get("/events.rss?area=ełcki&lang=en")
        searched = await http.get("/events.rss?q=seniora")
        bad = [await http.get(f"/events.rss?{query}") for query in (
            "category=nope", "area=atlantyda", "org=x", "audience=" + "a," * 200, "q=" + "x" * 300,
            "area=" + "%C3%B3" * 3000)]
        bad_en = await http.get("/events.rss?category=nope&lang=en")
    assert everything.status_code == 200
    assert everything.headers["content-type"].startswith("application/rss+xml")
    channel = rss_xml(everything.content).find("channel")
    assert channel is not None
    items = channel.findall("item")
    titles = [item.findtext("title") for item in items]
    assert "Warsztaty grantowe" in titles and HOSTILE in titles  # escaped in XML, read back whole
    assert "Odwołane: Odwołany koncert" in titles
    assert "Czeka na decyzję" not in titles  # not published
    assert titles.count("Klub seniora") == 1  # a series once, by its next date
    timed = next(item for item in items if item.findtext("title") == "Warsztaty grantowe")
    url = BASE + page_of(data["timed"])
    assert timed.findtext("link") == url
    guid = timed.find("guid")
    assert guid is not None and guid.text == url and guid.get("isPermaLink") == "true"
    assert timed.findtext("pubDate") == "Sat, 05 Dec 2026 09:00:00 GMT"
    assert "sobota, 5 grudnia 2026, 10:00–14:00" in (timed.findtext("description") or "")
    only = rss_xml(trainings.content).findall("channel/item")
    assert [item.findtext("title") for item in only] == ["Warsztaty grantowe"]
    in_elk = [item.findtext("title") for item in rss_xml(elk.content).findall("channel/item")]
    assert "Dzień otwarty" in in_elk and "Warsztaty grantowe" not in in_elk
    assert "Targi NGO" in in_elk  # a region-wide event belongs to every area
    descriptions = [item.findtext("description") or "" for item in rss_xml(elk.content)
                    .findall("channel/item")]
    assert any(d.startswith("Tuesday, 8 December 2026, all day") for d in descriptions)
    found = [item.findtext("title") for item in rss_xml(searched.content).iter("item")]
    assert found == ["Klub seniora"]
    for answer in bad:
        assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/plain")
    assert bad[0].text.startswith("Rodzaj: ") and "nope" in bad[0].text  # the field, in Polish
    assert bad_en.status_code == 400 and "nope" in bad_en.text and "Rodzaj" not in bad_en.text


async def test_sitemap_lists_main_pages_and_upcoming_event_pages(site_ctx: AppContext) -> None:
    ctx = site_ctx
    data = await seed(ctx)
    async with assembled(ctx) as app, app.client() as http:
        answer = await http.get("/sitemap.xml")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    root = rss_xml(answer.content)
    entries = {u.findtext(f"{SITEMAP}loc"): u.findtext(f"{SITEMAP}lastmod")
               for u in root.findall(f"{SITEMAP}url")}
    assert BASE + "/" in entries and BASE + "/events" in entries and BASE + "/trainings" in entries
    for name in ("timed", "all_day", "multi", "series", "hostile"):
        assert BASE + page_of(data[name]) in entries, name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entries[BASE + page_of(data[name])] or "")
    assert BASE + page_of(data["pending"]) not in entries
    assert BASE + page_of(data["cancelled"]) not in entries


async def test_feed_events_link_to_their_pages_and_say_things_once(site_ctx: AppContext) -> None:
    ctx = site_ctx
    data = await seed(ctx)
    async with assembled(ctx) as app, app.client() as http:
        feed = await http.get("/calendar.ics")
    events = {str(e["SUMMARY"]): e for e in icalendar.Calendar.from_ical(feed.content).walk("VEVENT")}
    timed = events["Warsztaty grantowe"]
    assert str(timed["URL"]) == event_url(BASE, data["timed"].id, "Warsztaty grantowe")
    assert "https://laki.example.org/warsztaty" in str(timed["DESCRIPTION"])  # the organiser's link
    assert "https://laki.example.org/zapisy" in str(timed["DESCRIPTION"])
    assert str(timed["LOCATION"]) == "ul. Kopernika 1, Olsztyn, m. Olsztyn"
    assert [str(c) for c in timed["CATEGORIES"].cats] == ["szkolenie"]
    for event in events.values():
        assert str(event["URL"]).startswith(BASE + "/events/")
        extra = [name for name in event if name.startswith("X-")]
        assert extra in ([], ["X-INFRANET-AUDIENCES"]), extra
    assert b"X-INFRANET-DESCRIPTION" not in feed.content and b"X-INFRANET-LOCATION" not in feed.content
