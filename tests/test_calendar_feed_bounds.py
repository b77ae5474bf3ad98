"""Feeds within a memory budget, and feeds that tell clients the truth. Over HTTP (the
Starlette app through httpx), both engines.

- Memory: whatever filter sets clients ask for, what the feed cache keeps stays within
  `[calendar] feed_cache_mb` (measured with tracemalloc, not only by the cache's own count);
  equal filter sets written differently share one cache entry; a feed too large for the
  budget is streamed, byte for byte the feed it would have been.
- Truth: Last-Modified advances when events leave a feed (moved to another area, cancelled
  past the keep window, ended past the window), so If-Modified-Since does not keep them;
  the gzip and identity bodies carry different ETags; no control character reaches a feed.
"""

from __future__ import annotations

import gc
import gzip
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from sqlalchemy import insert, update

from infranet.calendar.district_ids import district_id_map
from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event, cancel_event, update_event
from infranet.calendar.feed_filter import FeedFilter, feed_name
from infranet.calendar.feed_load import load_rows
from infranet.calendar.ics_writer import render_calendar
from infranet.calendar.service import build
from infranet.context import AppContext
from infranet.http import create_app
from infranet.region import fold
from infranet.storage.actors import Actor
from infranet.storage.models import Event
from tests.conftest import make_context

W = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DESCRIPTION = "Opis wydarzenia, z przecinkami; średnikami i polskimi znakami: zażółć gęślą jaźń. " * 8


def client_for(ctx: AppContext) -> httpx.AsyncClient:
    ctx.clock = lambda: NOW
    app = create_app(ctx, [build(ctx)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def small_budget(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    """A context whose feed cache may hold 1 MiB."""
    context = await make_context(db_url, tmp_path / "budget", calendar={"feed_cache_mb": 1})
    yield context
    await context.db.dispose()


async def populate(ctx: AppContext, count: int) -> None:
    """`count` published events of about 1.2 kB of VEVENT each, spread over the powiaty."""
    powiaty = ctx.region.powiaty
    async with ctx.db.transaction() as s:
        ids = await district_id_map(s, ctx)
        rows = []
        for i in range(count):
            starts = NOW + timedelta(days=1 + i % 300, hours=i % 7)
            title = f"Wydarzenie {i}"
            rows.append({
                "uid": f"bounds-{i}@infranet", "title": title, "title_folded": fold(title),
                "starts_at": starts, "ends_at": starts + timedelta(hours=2),
                "last_ends_at": starts + timedelta(hours=2), "long_span": False, "all_day": False,
                "district_id": ids[powiaty[i % len(powiaty)].slug], "category": "training",
                "audiences": ["ngo"], "status": "scheduled", "moderation": "published", "revision": 0,
                "source": "demo", "description": DESCRIPTION, "location": f"ul. Przykładowa {i}",
                "created_at": NOW, "updated_at": NOW,
            })
        await s.execute(insert(Event), rows)


async def status(http: httpx.AsyncClient) -> dict[str, int]:
    return (await http.get("/healthz")).json()["parts"]["calendar"]


async def test_memory_kept_by_feeds_stays_within_the_budget(small_budget: AppContext) -> None:
    """Sixty different area pairs (each feed about 200 kB) on a 1 MiB budget: before, each feed
    was kept whole (up to 256 of them), so memory grew with every new filter set."""
    ctx = small_budget
    await populate(ctx, 1000)
    powiaty = [p.slug for p in ctx.region.powiaty]
    pairs = [(a, b) for i, a in enumerate(powiaty) for b in powiaty[i + 1:]][:60]
    async with client_for(ctx) as http:
        first = await http.get(f"/calendar.ics?area={pairs[0][0]}")  # warm: imports, statements
        assert first.status_code == 200
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            counted: list[int | None] = []
            for n, (a, b) in enumerate(pairs):
                headers = {"Accept-Encoding": "gzip"} if n % 2 else {}
                response = await http.get(f"/calendar.ics?area={a}&area={b}", headers=headers)
                assert response.status_code == 200 and response.content.count(b"BEGIN:VEVENT") > 50
                counted.append((await status(http)).get("feed_cache_bytes"))
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert grown < 2 * 2**20, f"the process kept {grown / 2**20:.1f} MiB more after 60 feeds"
        assert all(size is not None and size <= 2**20 for size in counted)  # its own count agrees
        assert (await status(http))["feed_cache_evictions"] > 0


async def test_equal_filter_sets_share_one_feed(ctx: AppContext) -> None:
    """Order, repeats, names instead of slugs, a powiat named beside its subregion, anything
    beside the whole region, all the powiaty of a subregion: one feed, built once."""
    await populate(ctx, 120)
    sub = ctx.region.by_slug["podregion-elcki"]
    every_child = "&".join(f"area={c.slug}" for c in reversed(sub.children))
    groups = [
        ["/calendar.ics?area=elcki,gizycki", "/calendar.ics?area=gizycki&area=elcki&area=elcki",
         "/calendar.ics?area=Giżycki&area=ełcki", "/calendar/elcki.ics?area=gizycki"],
        ["/calendar.ics?area=podregion-elcki", "/calendar.ics?area=elcki&area=podregion-elcki",
         "/calendar/podregion-elcki.ics?area=gizycki,olecki", f"/calendar.ics?{every_child}"],
        ["/calendar/warminsko-mazurskie.ics", "/calendar.ics?area=elcki&area=warminsko-mazurskie"
         "&area=podregion-olsztynski"],
        ["/calendar.ics?category=training,meeting&org=1,1", "/calendar.ics?category=meeting&"
         "category=training&category=training&org=01"],
    ]
    async with client_for(ctx) as http:
        for urls in groups:
            builds = (await status(http))["feed_builds"]
            tags = set()
            for url in urls:
                response = await http.get(url)
                assert response.status_code == 200, (url, response.text)
                tags.add(response.headers["etag"])
            assert len(tags) == 1, urls
            assert (await status(http))["feed_builds"] == builds + 1, urls
        assert (await status(http))["feed_cache_feeds"] == len(groups)
        named = icalendar.Calendar.from_ical((await http.get("/calendar.ics?area=elcki&area="
                                                             "podregion-elcki")).content)
        assert str(named["X-WR-CALNAME"]).endswith("– podregion ełcki")


async def test_feed_too_large_for_the_budget_is_streamed_and_still_right(small_budget: AppContext) -> None:
    """The whole calendar (520 events, 640 kB, more than half the budget) on a 1 MiB budget:
    not kept whole, sent in pieces, byte for byte the feed rendered without any cache; ETag,
    gzip, HEAD and 304 work."""
    ctx = small_budget
    await populate(ctx, 520)
    async with client_for(ctx) as http:
        response = await http.get("/calendar.ics", headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200
        async with ctx.db.read() as s:
            rows = await load_rows(s, ctx, FeedFilter(), NOW)
        expected = render_calendar(ctx, rows, feed_name(ctx, FeedFilter()), NOW)
        assert response.content == expected
        assert int(response.headers["content-length"]) == len(expected)
        state = await status(http)
        assert state["feed_cache_bytes"] <= 2**20
        assert state["feed_cache_bytes"] < 1.5 * len(expected)  # the VEVENTs, no whole body
        zipped = await http.get("/calendar.ics", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and zipped.content == expected
        raw = await http.send(http.build_request("GET", "/calendar.ics", headers={"Accept-Encoding": "gzip"}),
                              stream=True)
        assert gzip.decompress(b"".join([part async for part in raw.aiter_raw()])) == expected
        await raw.aclose()
        etag = response.headers["etag"]
        assert (await http.get("/calendar.ics", headers={"If-None-Match": etag,
                                                         "Accept-Encoding": "identity"})).status_code == 304
        head = await http.head("/calendar.ics", headers={"Accept-Encoding": "identity"})
        assert head.status_code == 200 and head.headers["content-length"] == str(len(expected))


async def test_gzip_and_identity_bodies_have_their_own_etags(ctx: AppContext) -> None:
    await populate(ctx, 30)
    async with client_for(ctx) as http:
        plain = await http.get("/calendar.ics", headers={"Accept-Encoding": "identity"})
        zipped = await http.get("/calendar.ics", headers={"Accept-Encoding": "gzip"})
        assert plain.headers["etag"] != zipped.headers["etag"]
        refused = await http.get("/calendar.ics", headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers and refused.headers["etag"] == plain.headers["etag"]
        # Each ETag validates its own representation only.
        for encoding, tag, status_code in (("gzip", zipped.headers["etag"], 304),
                                           ("gzip", plain.headers["etag"], 200),
                                           ("identity", plain.headers["etag"], 304),
                                           ("identity", zipped.headers["etag"], 200)):
            answer = await http.get("/calendar.ics", headers={"Accept-Encoding": encoding,
                                                              "If-None-Match": tag})
            assert answer.status_code == status_code, (encoding, tag)
            if status_code == 304:
                assert answer.headers["etag"] == tag


async def revalidate(http: httpx.AsyncClient, url: str, since: str) -> httpx.Response:
    return await http.get(url, headers={"If-Modified-Since": since})


async def test_last_modified_advances_when_an_event_moves_out_of_the_area(ctx: AppContext) -> None:
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        moving = await add_event(s, ctx, cli, EventInput(
            "Przeprowadzka", datetime(2026, 12, 7, 10, tzinfo=W), datetime(2026, 12, 7, 11, tzinfo=W),
            district="ełcki", category="meeting"))
        await add_event(s, ctx, cli, EventInput(
            "Zostaje", datetime(2026, 12, 8, 10, tzinfo=W), datetime(2026, 12, 8, 11, tzinfo=W),
            district="ełcki", category="meeting"))
    async with client_for(ctx) as http:
        first = await http.get("/calendar/elcki.ics")
        assert b"SUMMARY:Przeprowadzka" in first.content
        async with ctx.db.transaction() as s:
            await update_event(s, ctx, cli, moving.id, EventInput(
                "Przeprowadzka", datetime(2026, 12, 7, 10, tzinfo=W), datetime(2026, 12, 7, 11, tzinfo=W),
                district="olsztyński", category="meeting"))
        again = await revalidate(http, "/calendar/elcki.ics", first.headers["last-modified"])
        assert again.status_code == 200 and b"SUMMARY:Przeprowadzka" not in again.content
        assert again.headers["last-modified"] != first.headers["last-modified"]
        same = await revalidate(http, "/calendar/elcki.ics", again.headers["last-modified"])
        assert same.status_code == 304


async def test_last_modified_advances_when_a_cancelled_event_leaves_the_feed(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW  # cancelled then
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        gone = await add_event(s, ctx, cli, EventInput(
            "Odwołane", datetime(2027, 2, 7, 10, tzinfo=W), datetime(2027, 2, 7, 11, tzinfo=W),
            district="ełcki", category="meeting"))
        await add_event(s, ctx, cli, EventInput(
            "Zostaje", datetime(2027, 2, 8, 10, tzinfo=W), datetime(2027, 2, 8, 11, tzinfo=W),
            district="ełcki", category="meeting"))
        await cancel_event(s, ctx, cli, gone.id)
    async with client_for(ctx) as http:
        first = await http.get("/calendar.ics")
        assert b"SUMMARY:Odwo" in first.content
        ctx.clock = lambda: NOW + timedelta(days=31)  # past the 30 days cancellations are kept
        again = await revalidate(http, "/calendar.ics", first.headers["last-modified"])
        assert again.status_code == 200 and b"SUMMARY:Odwo" not in again.content
        assert b"SUMMARY:Zostaje" in again.content


async def test_last_modified_advances_when_an_event_ends_past_the_window(ctx: AppContext) -> None:
    """A fresh cache (another instance, or this one after a restart or an eviction) must not
    answer 304 either: it cannot know the event was in the feed, so the date it gives covers
    the moment the event left."""
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        await add_event(s, ctx, cli, EventInput(
            "Minie", datetime(2026, 12, 7, 10, tzinfo=W), datetime(2026, 12, 7, 11, tzinfo=W),
            district="ełcki", category="meeting"))
        await add_event(s, ctx, cli, EventInput(
            "Później", datetime(2027, 6, 8, 10, tzinfo=W), datetime(2027, 6, 8, 11, tzinfo=W),
            district="ełcki", category="meeting"))
    async with client_for(ctx) as http:
        first = await http.get("/calendar/elcki.ics")
        assert b"SUMMARY:Minie" in first.content
    later = NOW + timedelta(days=120)  # 7 December + 90 days of the past window, and more
    async with client_for(ctx) as http:  # a new app: a cold cache
        ctx.clock = lambda: later
        again = await revalidate(http, "/calendar/elcki.ics", first.headers["last-modified"])
        assert again.status_code == 200 and b"SUMMARY:Minie" not in again.content


async def test_control_characters_never_reach_the_feed(ctx: AppContext) -> None:
    """Rows written before validation refused them (or by hand) still make a feed a strict
    parser accepts: C0, DEL, C1 and bidi overrides are dropped; the newline is kept, escaped."""
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        row = await add_event(s, ctx, cli, EventInput(
            "Tytuł", datetime(2026, 12, 7, 10, tzinfo=W), datetime(2026, 12, 7, 11, tzinfo=W),
            district="ełcki", category="meeting"))
        await s.execute(update(Event).where(Event.id == row.id).values(
            title="Zły\x07 tytuł\x1b[31m \u202eodwrócony\u202c\x85 koniec",
            description="Linia 1\nLinia 2\x0b\x0c\x7f\x9b i\ttab \u2066izolat\u2069",
            location="Sala\x01 3", url="https://example.org/\x08x", revision=1))
    async with client_for(ctx) as http:
        body = (await http.get("/calendar.ics")).content
    text = body.decode("utf-8")
    bad = [hex(ord(ch)) for ch in text if (ord(ch) < 32 and ch not in "\r\n") or 0x7F <= ord(ch) <= 0x9F
           or 0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069]
    assert bad == []
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # only CRLF line ends
    event = next(iter(icalendar.Calendar.from_ical(body).walk("VEVENT")))
    assert str(event["SUMMARY"]) == "Zły tytuł[31m odwrócony koniec"
    assert str(event["DESCRIPTION"]).startswith("Linia 1\nLinia 2 i tab izolat")
    assert str(event["URL"]) == f"http://127.0.0.1:8080/events/{row.id}-zly-tytul-31m-odwrocony-koniec"
    assert "https://example.org/x" in str(event["DESCRIPTION"])  # the organiser's own link
