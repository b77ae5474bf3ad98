"""The public event page `/events/<id>-<slug>` and its `.ics`, through the assembled app on
both engines: what a visitor reads in Polish and English (timed, all-day, multi-day,
recurring, cancelled), the slug redirect, 404s, the JSON-LD and Open Graph a search engine
or a link preview reads, and the "add to my calendar" links."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import icalendar
import pytest
from sqlalchemy import update

from infranet.calendar.event_input import EventInput
from infranet.calendar.event_links import event_path
from infranet.calendar.events import add_event, cancel_event
from infranet.context import AppContext
from infranet.network.orgs import OrgInput, add_organisation
from infranet.network.public_contacts import set_publication
from infranet.storage.actors import Actor
from infranet.storage.districts import district_ids
from infranet.storage.models import Event, Moderation, Training
from tests.conftest import make_context
from tests.http_app import BASE, assembled

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOSTILE = "Zebranie </script><script>alert(1)</script> & <b>"


@pytest.fixture
async def site_ctx(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    context = await make_context(db_url, tmp_path / "data", http={"public_base_url": BASE})
    context.clock = lambda: NOW
    yield context
    await context.db.dispose()


def local(day: date, hour: int, minute: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo("Europe/Warsaw"))


async def seed(ctx: AppContext) -> dict[str, Any]:
    actor = Actor.cli()
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, actor, OrgInput(
            name="Fundacja Łąki", type="COP", districts=["m. Olsztyn"],
            contact_email="biuro@laki.example.org", phone="89 123 45 67",
            website="https://laki.example.org"))
        await set_publication(session, actor, org.id, email=True)  # the phone stays private

        async def add(data: EventInput, **extra: Any) -> Event:
            row = await add_event(session, ctx, actor, data)
            if extra:
                await session.execute(update(Event).where(Event.id == row.id).values(**extra))
            return row

        timed = await add(EventInput(
            title="Warsztaty grantowe", start=local(date(2026, 12, 5), 10), end=local(date(2026, 12, 5), 14),
            district="m. Olsztyn", category="training", audiences=["ngo", "seniors"],
            organisation_id=org.id, location="ul. Kopernika 1, Olsztyn",
            description="Pierwsza linia\nDruga <linia> https://example.org/a?x=1&y=2.",
            url="https://laki.example.org/warsztaty", registration_url="https://laki.example.org/zapisy"),
            cost_pln=Decimal("25.00"))
        all_day = await add(EventInput(
            title="Dzień otwarty", start=date(2026, 12, 8), end=date(2026, 12, 8), all_day=True,
            district="ełcki", category="fair"), cost_pln=Decimal("0"), organiser_name="KGW Stare Juchy")
        multi = await add(EventInput(
            title="Targi NGO", start=date(2026, 12, 5), end=date(2026, 12, 7), all_day=True,
            district="region", category="fair", location="online"))
        series = await add(EventInput(
            title="Klub seniora", start=local(date(2026, 12, 1), 17), end=local(date(2026, 12, 1), 19),
            district="m. Olsztyn", category="meeting", organisation_id=org.id,
            rrule="FREQ=WEEKLY;BYDAY=TU;UNTIL=20270630"))
        cancelled = await add(EventInput(
            title="Odwołany koncert", start=local(date(2026, 12, 10), 18), end=local(date(2026, 12, 10), 20),
            district="m. Olsztyn", category="other"))
        hostile = await add(EventInput(
            title=HOSTILE, start=local(date(2026, 12, 12), 10), end=local(date(2026, 12, 12), 11),
            district="m. Olsztyn", category="other"))
        pending = await add(EventInput(
            title="Czeka na decyzję", start=local(date(2026, 12, 12), 10), end=local(date(2026, 12, 12), 11),
            district="m. Olsztyn", category="other"), moderation=Moderation.PENDING)
        await cancel_event(session, ctx, actor, cancelled.id)
    return {"org": org.id, "timed": timed, "all_day": all_day, "multi": multi, "series": series,
            "cancelled": cancelled, "hostile": hostile, "pending": pending}


def page_of(event: Event) -> str:
    return event_path(event.id, event.title)


def text_of(html: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, spaces squeezed."""
    body = html.split("<main", 1)[1]
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


def json_ld_of(html: str) -> dict[str, Any]:
    found = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.DOTALL)
    assert len(found) == 1, found
    data: dict[str, Any] = json.loads(found[0])
    return data


def meta(html: str, prop: str) -> str:
    found = re.search(rf'<meta property="{re.escape(prop)}" content="([^"]*)">', html)
    assert found, prop
    return unescape(found.group(1))


async def test_a_timed_event_in_polish_and_english(site_ctx: AppContext) -> None:
    ctx = site_ctx
    data = await seed(ctx)
    timed = data["timed"]
    async with assembled(ctx) as app, app.client() as http:
        pl = await http.get(page_of(timed))
        en = await http.get(page_of(timed) + "?lang=en")
    assert pl.status_code == 200 and pl.headers["content-type"].startswith("text/html")
    text = text_of(pl.text)
    assert "sobota, 5 grudnia 2026, 10:00–14:00" in text
    assert "Warsztaty grantowe" in text and "ul. Kopernika 1, Olsztyn" in text
    assert "szkolenie" in text and "organizacje pozarządowe, seniorzy" in text
    assert "Fundacja Łąki" in text, text
    assert "biuro@laki.example.org" in text and "89 123 45 67" not in pl.text
    assert "25 zł" in text
    assert '<a href="https://laki.example.org/zapisy" rel="nofollow noopener">Zapisz się</a>' in pl.text
    assert 'href="https://laki.example.org/warsztaty"' in pl.text
    # OpenStreetMap search for the place, a plain link
    assert ('href="https://www.openstreetmap.org/search?query=ul.%20Kopernika%201%2C%20Olsztyn%2C%20'
            'm.%20Olsztyn"' in pl.text)
    # the description: escaped first, its line break kept, its URL a link without the full stop
    assert "Druga &lt;linia&gt; " in pl.text and "<linia>" not in pl.text
    assert ('<a href="https://example.org/a?x=1&amp;y=2" rel="nofollow noopener">'
            'https://example.org/a?x=1&amp;y=2</a>.') in pl.text
    assert "Pierwsza linia\nDruga" in pl.text and "white-space: pre-line" in pl.text
    assert '<html lang="en">' in en.text
    en_text = text_of(en.text)
    assert "Saturday, 5 December 2026, 10:00–14:00" in en_text
    assert "training" in en_text and "PLN 25" in en_text and "Register" in en_text


async def test_all_day_multi_day_recurring_and_cancelled(site_ctx: AppContext) -> None:
    ctx = site_ctx
    data = await seed(ctx)
    async with assembled(ctx) as app, app.client() as http:
        pages = {name: (await http.get(page_of(data[name]))).text
                 for name in ("all_day", "multi", "series", "cancelled")}
        en = {name: (await http.get(page_of(data[name]) + "?lang=en")).text
              for name in ("all_day", "multi", "series", "cancelled")}
    all_day = text_of(pages["all_day"])
    assert "wtorek, 8 grudnia 2026, cały dzień" in all_day
    assert "KGW Stare Juchy" in all_day and "bezpłatne" in all_day
    assert "Tuesday, 8 December 2026, all day" in text_of(en["all_day"]) and "free" in text_of(en["all_day"])
    assert "5–7 grudnia 2026" in text_of(pages["multi"])
    assert "openstreetmap" not in pages["multi"]  # online: no map
    series = text_of(pages["series"])
    assert "co tydzień we wtorek do 30 czerwca 2027" in series
    assert "wtorek, 1 grudnia 2026, 17:00–19:00" in series  # the next dates
    assert "wtorek, 29 grudnia 2026, 17:00–19:00" in series
    assert "every week on Tuesday until 30 June 2027" in text_of(en["series"])
    cancelled = text_of(pages["cancelled"])
    assert cancelled.index("To wydarzenie zostało odwołane.") < cancelled.index("Odwołany koncert")
    assert "This event has been cancelled." in text_of(en["cancelled"])
    assert json_ld_of(pages["cancelled"])["eventStatus"] == "https://schema.org/EventCancelled"


async def test_slug_is_canonicalised_and_unknown_ids_are_404(site_ctx: AppContext) -> None:
    ctx = site_ctx
    data = await seed(ctx)
    timed = data["timed"]
    async with assembled(ctx) as app, app.client() as http:
        for ref in (str(timed.id), f"{timed.id}-stary-tytul", f"{timed.id}-"):
            moved = await http.get(f"/events/{ref}")
            assert moved.status_code == 301 and moved.headers["location"] == page_of(timed), ref
        kept = await http.get(f"/events/{timed.id}?lang=en")
        assert kept.status_code == 301 and kept.headers["location"] == page_of(timed) + "?lang=en"
        for ref in ("999999", str(data["pending"].id), "abc", "12abc", "99999999999999999999",
                    "١٢", "-1", "0", f"{timed.id}.ics.ics", "%00"):
            missing = await http.get(f"/events/{ref}")
            assert missing.status_code == 404, ref
            assert "Nie ma takiego wydarzenia" in missing.text and "<main" in missing.text
        english = await http.get("/events/999999?lang=en")
        assert english.status_code == 404 and "No such event" in english.text
        assert (await http.get(f"/events/{data['pending'].id}.ics")).status_code == 404


async def test_structured_data_open_graph_and_canonical(site_ctx: AppContext) -> None:
    ctx = site_ctx
    data = await seed(ctx)
    async with assembled(ctx) as app, app.client() as http:
        timed = (await http.get(page_of(data["timed"]))).text
        hostile = (await http.get(page_of(data["hostile"]))).text
        all_day = (await http.get(page_of(data["all_day"]))).text
        multi = (await http.get(page_of(data["multi"]))).text
    url = BASE + page_of(data["timed"])
    ld = json_ld_of(timed)
    assert ld["@type"] == "Event" and ld["name"] == "Warsztaty grantowe" and ld["url"] == url
    assert (ld["startDate"], ld["endDate"]) == ("2026-12-05T10:00:00+01:00", "2026-12-05T14:00:00+01:00")
    assert ld["eventStatus"] == "https://schema.org/EventScheduled"
    assert ld["eventAttendanceMode"] == "https://schema.org/OfflineEventAttendanceMode"
    assert ld["location"]["@type"] == "Place"
    assert ld["location"]["address"]["streetAddress"] == "ul. Kopernika 1, Olsztyn"
    assert ld["organizer"] == {"@type": "Organization", "name": "Fundacja Łąki",
                               "url": "https://laki.example.org"}
    assert ld["offers"]["price"] == "25.00" and ld["offers"]["priceCurrency"] == "PLN"
    assert ld["description"].startswith("Pierwsza linia\nDruga <linia>")
    assert f'<link rel="canonical" href="{url}">' in timed
    assert f'<link rel="alternate" hreflang="en" href="{url}?lang=en">' in timed
    assert f'<link rel="alternate" hreflang="pl" href="{url}">' in timed
    assert meta(timed, "og:title") == "Warsztaty grantowe" and meta(timed, "og:url") == url
    assert meta(timed, "og:type") == "website" and meta(timed, "og:description").startswith("Pierwsza")
    # a title that tries to end the block ends nothing: one block, read back whole
    assert "</script><script>alert(1)" not in hostile
    assert json_ld_of(hostile)["name"] == HOSTILE
    assert "\\u003c/script\\u003e" in hostile
    assert meta(hostile, "og:title") == HOSTILE
    day = json_ld_of(all_day)
    assert (day["startDate"], day["endDate"]) == ("2026-12-08", "2026-12-08")
    assert day["offers"]["price"] == "0.00" and day["organizer"]["name"] == "KGW Stare Juchy"
    online = json_ld_of(multi)
    assert (online["startDate"], online["endDate"]) == ("2026-12-05", "2026-12-07")
    assert online["eventAttendanceMode"] == "https://schema.org/OnlineEventAttendanceMode"
    assert "offers" not in online  # cost not stated


def link_params(html: str, prefix: str) -> dict[str, list[str]]:
    found = re.search(rf'href="({re.escape(prefix)}[^"]*)"', html)
    assert found, prefix
    return parse_qs(urlsplit(unescape(found.group(1))).query)


async def test_add_to_calendar_links_and_ics(site_ctx: AppContext) -> None:
    ctx = site_ctx
    data = await seed(ctx)
    timed, series = data["timed"], data["series"]
    async with assembled(ctx) as app, app.client() as http:
        page = (await http.get(page_of(timed))).text
        day_page = (await http.get(page_of(data["all_day"]))).text
        ics = await http.get(f"/events/{timed.id}.ics")
        series_ics = await http.get(f"/events/{series.id}.ics")
        head = await http.head(f"/events/{timed.id}.ics")
        series_page = (await http.get(page_of(series))).text
    google = link_params(page, "https://calendar.google.com/calendar/render?")
    assert google["action"] == ["TEMPLATE"] and google["text"] == ["Warsztaty grantowe"]
    assert google["dates"] == ["20261205T090000Z/20261205T130000Z"]
    assert google["location"] == ["ul. Kopernika 1, Olsztyn, m. Olsztyn"]
    assert BASE + page_of(timed) in google["details"][0]
    outlook = link_params(page, "https://outlook.live.com/calendar/0/action/compose?")
    assert outlook["subject"] == ["Warsztaty grantowe"] and outlook["allday"] == ["false"]
    assert outlook["startdt"] == ["2026-12-05T10:00:00+01:00"]
    assert outlook["enddt"] == ["2026-12-05T14:00:00+01:00"]
    day_google = link_params(day_page, "https://calendar.google.com/calendar/render?")
    assert day_google["dates"] == ["20261208/20261209"]
    day_outlook = link_params(day_page, "https://outlook.live.com/calendar/0/action/compose?")
    assert day_outlook["allday"] == ["true"] and day_outlook["startdt"] == ["2026-12-08"]
    assert f'href="/events/{timed.id}.ics"' in page

    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert ics.headers["content-disposition"] == f'attachment; filename="warsztaty-grantowe-{timed.id}.ics"'
    [vevent] = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "Warsztaty grantowe"
    assert vevent["DTSTART"].dt == local(date(2026, 12, 5), 10)
    assert str(vevent["URL"]) == BASE + page_of(timed)
    assert "https://laki.example.org/warsztaty" in str(vevent["DESCRIPTION"])
    [repeated] = icalendar.Calendar.from_ical(series_ics.content).walk("VEVENT")
    assert repeated["RRULE"].to_ical().decode().startswith("FREQ=WEEKLY")
    assert "BYDAY=TU" in repeated["RRULE"].to_ical().decode()
    assert head.status_code == 200
    google_series = link_params(series_page, "https://calendar.google.com/calendar/render?")
    assert google_series["recur"][0].startswith("RRULE:FREQ=WEEKLY")
    assert google_series["dates"] == ["20261201T160000Z/20261201T180000Z"]  # the series' first


async def test_a_training_session_shows_its_notice_cost(site_ctx: AppContext) -> None:
    ctx = site_ctx
    data = await seed(ctx)
    async with ctx.db.transaction() as session:
        ids = await district_ids(session)
        paid = Training(title="Księgowość NGO", organisation_id=data["org"], district_id=ids["elblag"],
                        deadline=date(2026, 12, 20), target_group="księgowi", cost_pln=Decimal("120"))
        free = Training(title="RODO", organisation_id=data["org"], district_id=ids["elblag"],
                        deadline=date(2026, 12, 20), target_group="wszyscy")
        session.add_all([paid, free])
        await session.flush()
        sessions = {}
        for training in (paid, free):
            row = await add_event(session, ctx, Actor.cli(), EventInput(
                title=f"{training.title}: zajęcia 1", start=local(date(2026, 12, 21), 9),
                end=local(date(2026, 12, 21), 15), district="elblag", category="training",
                organisation_id=data["org"], training_id=training.id))
            sessions[training.title] = row
    async with assembled(ctx) as app, app.client() as http:
        paid_page = (await http.get(page_of(sessions["Księgowość NGO"]))).text
        free_page = (await http.get(page_of(sessions["RODO"]))).text
    assert "120 zł" in text_of(paid_page) and json_ld_of(paid_page)["offers"]["price"] == "120.00"
    assert "bezpłatne" in text_of(free_page) and json_ld_of(free_page)["offers"]["price"] == "0.00"
