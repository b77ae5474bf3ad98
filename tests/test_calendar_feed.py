"""ICS feeds over real HTTP (the Starlette app through httpx): RFC 5545 properties parsed
back by icalendar and by vobject, conditional GET, gzip, cache invalidation, filters and
the JSON API (the page that picks a feed is the site's: tests/test_site_embed.py). Both engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
import vobject
from sqlalchemy import update

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event, cancel_event, update_event
from infranet.calendar.feed import FeedCache
from infranet.calendar.feed_filter import FeedFilter
from infranet.calendar.service import build
from infranet.context import AppContext
from infranet.http import create_app
from infranet.network.orgs import OrgInput, add_organisation
from infranet.network.public_contacts import set_publication
from infranet.storage.actors import Actor
from infranet.storage.models import Event, Member, MemberStatus, Moderation

W = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def client(ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    ctx.clock = lambda: NOW
    app = create_app(ctx, [build(ctx)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        yield http


async def seed(ctx: AppContext) -> dict[str, int]:
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        org = await add_organisation(s, ctx, cli, OrgInput(
            name="COP Olsztyn, Warmia; \"demo\"", contact_email="cop@example.org", phone="+48 89 000 00 01"))
        # Published, so the public feed and API show them (tests/test_public_contacts.py: unpublished).
        await set_publication(s, cli, org.id, email=True, phone=True)
        ids = {}
        ids["timed"] = (await add_event(s, ctx, cli, EventInput(
            "Szkolenie: RODO, część 1; zażółć gęślą jaźń — " + "długi tytuł " * 6,
            datetime(2026, 12, 5, 10, tzinfo=W), datetime(2026, 12, 5, 14, tzinfo=W),
            district="olsztyński", category="training", audiences=["ngo"], organisation_id=org.id,
            description="Pierwsza linia\nDruga, z przecinkiem; i średnikiem", location="ul. Partyzantów 1",
            url="https://cop.example.org/rodo", registration_url="https://cop.example.org/zapisy"))).id
        ids["allday"] = (await add_event(s, ctx, cli, EventInput(
            "Targi NGO", date(2026, 12, 18), date(2026, 12, 20), all_day=True, district="giżycki",
            category="fair", audiences=["residents"]))).id
        ids["series"] = (await add_event(s, ctx, cli, EventInput(
            "Spotkanie sieci", datetime(2027, 3, 16, 11, tzinfo=W), datetime(2027, 3, 16, 13, tzinfo=W),
            district="region", category="meeting", audiences=["ngo"], rrule="FREQ=WEEKLY;COUNT=3"))).id
        ids["cancelled"] = (await add_event(s, ctx, cli, EventInput(
            "Odwołane", datetime(2026, 12, 7, 10, tzinfo=W), datetime(2026, 12, 7, 11, tzinfo=W),
            district="ełcki", category="meeting"))).id
        ids["old"] = (await add_event(s, ctx, cli, EventInput(
            "Dawno temu", datetime(2026, 6, 1, 10, tzinfo=W), datetime(2026, 6, 1, 11, tzinfo=W),
            district="ełcki"))).id
        ids["pending"] = (await add_event(s, ctx, cli, EventInput(
            "Czeka na moderację", datetime(2026, 12, 9, 10, tzinfo=W),
            datetime(2026, 12, 9, 11, tzinfo=W)))).id
        await cancel_event(s, ctx, cli, ids["cancelled"])
        await s.execute(update(Event).where(Event.id == ids["pending"]).values(moderation=Moderation.PENDING))
    return ids


def by_summary(cal: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}


async def test_feed_is_valid_rfc5545_for_icalendar_and_vobject(ctx: AppContext,
                                                               client: httpx.AsyncClient) -> None:
    ids = await seed(ctx)
    response = await client.get("/calendar.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    body = response.content
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))
    cal = icalendar.Calendar.from_ical(body)
    assert str(cal["X-WR-CALNAME"]).startswith("Kalendarz sieci") and cal["NAME"] == cal["X-WR-CALNAME"]
    assert cal["X-WR-TIMEZONE"] == "Europe/Warsaw" and cal["X-PUBLISHED-TTL"] == "PT60M"
    assert cal["REFRESH-INTERVAL"].params["VALUE"] == "DURATION"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Warsaw"]
    events = by_summary(cal)
    assert set(events) == {"Spotkanie sieci", "Targi NGO", "Odwołane",
                           next(k for k in events if k.startswith("Szkolenie"))}
    timed = next(e for k, e in events.items() if k.startswith("Szkolenie"))
    assert "zażółć gęślą jaźń" in str(timed["SUMMARY"])
    assert timed.decoded("DTSTART") == datetime(2026, 12, 5, 10, tzinfo=W)
    assert str(timed["DTSTART"].params["TZID"]) == "Europe/Warsaw"
    assert str(timed["DESCRIPTION"]).startswith("Pierwsza linia\nDruga, z przecinkiem; i średnikiem")
    assert "https://cop.example.org/zapisy" in str(timed["DESCRIPTION"])
    assert str(timed["LOCATION"]) == "ul. Partyzantów 1, olsztyński"
    # URL: the event's page on the site; the organiser's own page is in the description
    assert str(timed["URL"]).startswith("http://127.0.0.1:8080/events/")
    assert "Strona organizatora: https://cop.example.org/rodo" in str(timed["DESCRIPTION"])
    # nothing said twice: place, description, district and category only where clients read them
    assert not [name for name in timed if name.startswith("X-") and name != "X-INFRANET-AUDIENCES"]
    assert timed["ORGANIZER"] == "mailto:cop@example.org"
    assert timed["ORGANIZER"].params["CN"] == "COP Olsztyn, Warmia; demo"
    assert [str(c) for c in timed["CATEGORIES"].cats] == ["szkolenie"]
    for prop in ("UID", "DTSTAMP", "CREATED", "LAST-MODIFIED", "SEQUENCE"):
        assert prop in timed
    allday = events["Targi NGO"]
    assert allday.decoded("DTSTART") == date(2026, 12, 18)
    assert allday.decoded("DTEND") == date(2026, 12, 21)  # exclusive
    assert events["Spotkanie sieci"]["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=3"
    assert events["Odwołane"]["STATUS"] == "CANCELLED" and events["Odwołane"]["SEQUENCE"] == 1
    assert timed["STATUS"] == "CONFIRMED"
    # A second, independent parser; vobject expands the series in local time across DST.
    parsed = vobject.readOne(body.decode("utf-8"))
    vevents = {e.summary.value: e for e in parsed.vevent_list}
    assert len(vevents) == 4
    starts = list(vevents["Spotkanie sieci"].getrruleset(addRDate=True))
    assert [s.astimezone(W).strftime("%m-%d %H:%M") for s in starts] == [
        "03-16 11:00", "03-23 11:00", "03-30 11:00"]
    assert vevents["Targi NGO"].dtstart.value == date(2026, 12, 18)
    assert vevents["Odwołane"].status.value == "CANCELLED"
    assert ids  # the old and the pending events are not in the feed (checked by the set above)


async def test_cancelled_events_leave_the_feed_after_30_days(ctx: AppContext,
                                                             client: httpx.AsyncClient) -> None:
    await seed(ctx)
    ctx.clock = lambda: NOW + timedelta(days=31)
    body = (await client.get("/calendar.ics")).content
    assert b"SUMMARY:Odwo" not in body and b"SUMMARY:Targi NGO" in body


async def test_conditional_get_gzip_and_invalidation(ctx: AppContext, client: httpx.AsyncClient) -> None:
    ids = await seed(ctx)
    first = await client.get("/calendar.ics")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert (await client.get("/calendar.ics", headers={"If-None-Match": etag})).status_code == 304
    several = '"other", ' + etag
    assert (await client.get("/calendar.ics", headers={"If-None-Match": several})).status_code == 304
    assert (await client.get("/calendar.ics", headers={"If-Modified-Since": modified})).status_code == 304
    old = "Mon, 01 Jan 2024 00:00:00 GMT"
    assert (await client.get("/calendar.ics", headers={"If-Modified-Since": old})).status_code == 200
    zipped = await client.get("/calendar.ics", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == first.content  # httpx unzips
    raw = await client.get("/calendar.ics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.content == first.content
    builds = (await client.get("/healthz")).json()["parts"]["calendar"]["feed_builds"]
    for _ in range(3):
        await client.get("/calendar.ics")
    assert (await client.get("/healthz")).json()["parts"]["calendar"]["feed_builds"] == builds
    # Any change invalidates at once; SEQUENCE grows.
    async with ctx.db.transaction() as s:
        await update_event(s, ctx, Actor.cli(), ids["allday"], EventInput(
            "Targi NGO (zmiana)", date(2026, 12, 19), date(2026, 12, 20), all_day=True, district="giżycki",
            category="fair"))
    second = await client.get("/calendar.ics", headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["etag"] != etag
    changed = by_summary(icalendar.Calendar.from_ical(second.content))["Targi NGO (zmiana)"]
    assert changed["SEQUENCE"] == 1 and changed.decoded("DTSTART") == date(2026, 12, 19)
    assert second.content.count(b"BEGIN:VEVENT") == first.content.count(b"BEGIN:VEVENT")


async def test_change_by_another_instance_is_seen_through_the_database_version(ctx: AppContext) -> None:
    await seed(ctx)
    ctx.clock = lambda: NOW
    cache = FeedCache(ctx, check_interval=0)
    before = await cache.get(FeedFilter())
    assert (await cache.get(FeedFilter())) is before
    async with ctx.db.sessionmaker() as s, s.begin():  # no in-process notification
        await s.execute(update(Event).where(Event.title == "Targi NGO").values(
            title="Targi NGO 2", revision=Event.revision + 1, updated_at=datetime.now(UTC)))
    after = await cache.get(FeedFilter())
    assert after.etag != before.etag and b"SUMMARY:Targi NGO 2" in after.body


async def test_feed_filters_and_area_urls(ctx: AppContext, client: httpx.AsyncClient) -> None:
    await seed(ctx)

    async def summaries(url: str) -> set[str]:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        return {str(e["SUMMARY"])[:9] for e in icalendar.Calendar.from_ical(response.content).walk("VEVENT")}

    # A powiat's feed has its own events plus the region-wide series.
    assert await summaries("/calendar/olsztynski.ics") == {"Szkolenie", "Spotkanie"}
    assert await summaries("/calendar/2805.ics") == {"Odwołane", "Spotkanie"}
    assert await summaries("/calendar.ics?area=gizycki,elcki") == {"Targi NGO", "Odwołane", "Spotkanie"}
    assert await summaries("/calendar.ics?category=fair&category=meeting") == {"Targi NGO", "Odwołane",
                                                                              "Spotkanie"}
    assert await summaries("/calendar.ics?audience=residents") == {"Targi NGO", "Odwołane"}
    assert await summaries("/calendar.ics?org=1") == {"Szkolenie"}
    missing = await client.get("/calendar/olsztynsky.ics")
    assert missing.status_code == 404 and "did you mean: olsztyński" in missing.text
    bad = await client.get("/calendar.ics?category=party")
    assert bad.status_code == 400 and "choose from training" in bad.text


async def test_api_events_and_conflicts(ctx: AppContext, client: httpx.AsyncClient) -> None:
    await seed(ctx)
    data = (await client.get("/api/events?start=2026-12-01&end=2026-12-31&area=olsztynski")).json()
    assert [e["title"][:9] for e in data["events"]] == ["Szkolenie"]
    event = data["events"][0]
    assert event["start"] == "2026-12-05T10:00:00+01:00"
    assert event["organisation"]["email"] == "cop@example.org"
    data = (await client.get("/api/events?start=2027-03-01&end=2027-03-31")).json()
    assert [e["start"] for e in data["events"]] == [
        "2027-03-16T11:00:00+01:00", "2027-03-23T11:00:00+01:00", "2027-03-30T11:00:00+02:00"]
    allday = (await client.get("/api/events?start=2026-12-20&end=2026-12-20")).json()["events"]
    assert [(e["first_day"], e["last_day"]) for e in allday] == [("2026-12-18", "2026-12-20")]

    report = (await client.get("/api/conflicts?start=2026-12-05T12:00&end=2026-12-05T13:00"
                               "&area=olsztynski&audience=ngo&category=training")).json()
    (conflict,) = report["conflicts"]
    assert conflict["severity"] == "high" and conflict["email"] == "cop@example.org"
    assert conflict["event"]["organisation"]["email"] == "cop@example.org"
    assert conflict["event"]["district"]["slug"] == "olsztynski" and conflict["event"]["uid"]
    assert len(report["suggestions"]) == 3
    assert report["suggestions"][0]["start"].startswith("2026-12-12T12:00")
    holiday = (await client.get("/api/conflicts?start=2026-12-24&end=2026-12-24&area=elcki&lang=en")).json()
    assert holiday["warnings"][0]["kind"] == "holiday"
    assert "public holiday" in holiday["warnings"][0]["message"]
    assert len(holiday["suggestions"][0]["start"]) == 10  # dates for an all-day candidate
    bad = await client.get("/api/conflicts?start=2026-12-05T12:00&end=2026-12-05T11:00&area=olsztynski")
    assert bad.status_code == 400 and "is not after the start" in bad.json()["error"]
    bad = await client.get("/api/events?start=yesterday")
    assert bad.status_code == 400 and "is not a date" in bad.json()["error"]


async def test_pending_events_visible_only_to_their_organisation(ctx: AppContext,
                                                                 client: httpx.AsyncClient) -> None:
    ids = await seed(ctx)
    async with ctx.db.transaction() as s:
        org = await add_organisation(s, ctx, Actor.cli(), OrgInput(name="Inna"))
        member = Member(telegram_id=5, organisation_id=org.id, status=MemberStatus.APPROVED)
        s.add(member)
        await s.execute(update(Event).where(Event.id == ids["pending"]).values(organisation_id=org.id))
    data = (await client.get("/api/events?start=2026-12-09&end=2026-12-09")).json()
    assert data["events"] == []  # pending: not public


async def test_incremental_rebuilds_equal_a_fresh_build(ctx: AppContext) -> None:
    """After adds, edits, a cancellation and an event leaving the filter, the feed kept up to
    date change by change is byte for byte the feed a new process would build."""
    ids = await seed(ctx)
    ctx.clock = lambda: NOW
    filters = [FeedFilter(), FeedFilter(categories=("training", "fair")), FeedFilter(areas=("gizycki",))]
    cache = FeedCache(ctx, check_interval=0)
    for flt in filters:
        await cache.get(flt)
    cli = Actor.cli()
    steps = [
        lambda s: add_event(s, ctx, cli, EventInput(
            "Nowe szkolenie", datetime(2026, 12, 10, 9, tzinfo=W), datetime(2026, 12, 10, 11, tzinfo=W),
            district="giżycki", category="training")),
        lambda s: update_event(s, ctx, cli, ids["allday"], EventInput(
            "Targi NGO", date(2026, 12, 18), date(2026, 12, 20), all_day=True, district="giżycki",
            category="meeting")),  # leaves the training/fair feed
        lambda s: cancel_event(s, ctx, cli, ids["timed"]),
        lambda s: update_event(s, ctx, cli, ids["series"], EventInput(
            "Spotkanie sieci (online)", datetime(2027, 3, 16, 12, tzinfo=W),
            datetime(2027, 3, 16, 13, tzinfo=W), district="region", category="meeting",
            rrule="FREQ=WEEKLY;COUNT=4")),
    ]
    for step in steps:
        async with ctx.db.transaction() as s:
            await step(s)
        fresh = FeedCache(ctx, check_interval=0)
        for flt in filters:
            kept, rebuilt = await cache.get(flt), await fresh.get(flt)
            assert kept.body == rebuilt.body and kept.etag == rebuilt.etag
    assert cache.full_builds == len(filters)  # every later build was incremental
    training = (await cache.get(filters[1])).body
    assert b"SUMMARY:Nowe szkolenie" in training and b"SUMMARY:Targi" not in training
