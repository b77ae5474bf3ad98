"""`/api/events` pages with a cursor, and the calendar routes answer hostile input with a
4xx in the asker's language. Over HTTP (the Starlette app through httpx), both engines.

The pages are checked against `list_events`, the listing the bot and the newsletter use:
followed from `next` to `next`, they are exactly its occurrences, in its order, whatever
mix of single, all-day, long and recurring events, ties on the start, and filters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from infranet.calendar.event_input import EventInput
from infranet.calendar.event_queries import list_events
from infranet.calendar.events import add_event, cancel_event
from infranet.calendar.service import build
from infranet.context import AppContext
from infranet.http import create_app
from infranet.storage.actors import Actor

W = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def client(ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    ctx.clock = lambda: NOW
    app = create_app(ctx, [build(ctx)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


async def seed(ctx: AppContext) -> None:
    """About 70 occurrences in December–February: series (weekly, monthly, all-day) whose
    occurrences interleave with single events, several events at the same minute, a
    three-day event that began before the period, a cancelled event, audiences."""
    ctx.clock = lambda: NOW
    cli = Actor.cli()
    places = ["ełcki", "giżycki", "olsztyński", "region", "podregion ełcki"]
    async with ctx.db.transaction() as s:
        await add_event(s, ctx, cli, EventInput(
            "Długie", datetime(2026, 11, 30, 9, tzinfo=W), datetime(2026, 12, 2, 17, tzinfo=W),
            district="ełcki", category="fair"))
        for i in range(40):
            day = datetime(2026, 12, 1, 8, tzinfo=W) + timedelta(days=(i * 37) % 80, hours=(i % 3) * 2)
            await add_event(s, ctx, cli, EventInput(
                f"Pojedyncze {i}", day, day + timedelta(hours=1), district=places[i % len(places)],
                category=["training", "meeting"][i % 2], audiences=[["ngo"], ["youth"], []][i % 3]))
        await add_event(s, ctx, cli, EventInput(
            "Co tydzień", datetime(2026, 12, 2, 10, tzinfo=W), datetime(2026, 12, 2, 11, tzinfo=W),
            district="gizycki", category="meeting", audiences=["ngo"], rrule="FREQ=WEEKLY;COUNT=12"))
        await add_event(s, ctx, cli, EventInput(
            "Co miesiąc", date(2026, 12, 4), date(2026, 12, 5), all_day=True, district="region",
            category="training", rrule="FREQ=MONTHLY;COUNT=4"))
        await add_event(s, ctx, cli, EventInput(  # the same minute as single events
            "Ten sam czas", datetime(2026, 12, 1, 8, tzinfo=W), datetime(2026, 12, 1, 9, tzinfo=W),
            district="elcki", category="training", audiences=["youth"], rrule="FREQ=WEEKLY;COUNT=6"))
        gone = await add_event(s, ctx, cli, EventInput(
            "Odwołane", datetime(2026, 12, 10, 10, tzinfo=W), datetime(2026, 12, 10, 11, tzinfo=W),
            district="elcki"))
        await cancel_event(s, ctx, cli, gone.id)


async def follow(http: httpx.AsyncClient, url: str) -> tuple[list[tuple[str, int]], list[dict]]:
    """Every page from `url` on: the (start, id) of each occurrence, and each page's answer."""
    seen: list[tuple[str, int]] = []
    answers = []
    next_url: str | None = url
    while next_url is not None:
        response = await http.get(next_url)
        assert response.status_code == 200, response.text
        answer = response.json()
        answers.append(answer)
        seen += [(e["start"], e["id"]) for e in answer["events"]]
        next_url = answer["next"]
        assert len(answers) < 100
    return seen, answers


@pytest.mark.parametrize("query", ["", "&area=elcki", "&audience=youth",
                                   "&category=training&area=gizycki,elcki"])
async def test_pages_followed_by_next_are_the_whole_listing(ctx: AppContext, client: httpx.AsyncClient,
                                                            query: str) -> None:
    await seed(ctx)
    start, end = datetime(2026, 12, 1, tzinfo=W), datetime(2027, 3, 1, tzinfo=W)
    params = parse_qs(query.lstrip("&"))
    async with ctx.db.read() as s:
        expected = await list_events(s, ctx, start=start.astimezone(UTC), end=end.astimezone(UTC),
                                     area=[a for v in params.get("area", []) for a in v.split(",")] or None,
                                     category=params.get("category"), audience=params.get("audience"))
    assert len(expected) > 12
    wanted = [(o.start.astimezone(W).isoformat(), o.event.id) for o in expected]
    seen, answers = await follow(client, f"/api/events?start=2026-12-01&end=2027-02-28&limit=5{query}")
    assert seen == wanted
    assert len(answers) == -(-len(wanted) // 5)
    assert all(a["count"] == len(wanted) for a in answers)
    assert [a["truncated"] for a in answers] == [True] * (len(answers) - 1) + [False]
    assert answers[-1]["next"] is None
    # One page holds them all when the limit allows; the fields users rely on are there.
    whole = (await client.get(f"/api/events?start=2026-12-01&end=2027-02-28{query}")).json()
    assert [(e["start"], e["id"]) for e in whole["events"]] == wanted and whole["next"] is None
    assert set(whole) >= {"start", "end", "count", "truncated", "events", "next"}


async def test_next_keeps_the_period_and_filters(ctx: AppContext, client: httpx.AsyncClient) -> None:
    await seed(ctx)
    answer = (await client.get("/api/events?start=2026-12-01&end=2026-12-31&area=gizycki&limit=2"
                               "&lang=pl")).json()
    link = urlsplit(answer["next"])
    params = parse_qs(link.query)
    assert link.path == "/api/events" and params["area"] == ["gizycki"] and params["limit"] == ["2"]
    assert params["start"] == [answer["start"]] and params["end"] == [answer["end"]]
    assert params["lang"] == ["pl"] and params["cursor"]


async def test_forged_or_borrowed_cursors_are_a_400(ctx: AppContext, client: httpx.AsyncClient) -> None:
    await seed(ctx)
    answer = (await client.get("/api/events?start=2026-12-01&end=2027-02-28&limit=3")).json()
    cursor = parse_qs(urlsplit(answer["next"]).query)["cursor"][0]
    micros, event_id, signature = cursor.split(".")
    base = "/api/events?start=2026-12-01&end=2027-02-28&limit=3"
    assert (await client.get(answer["next"])).status_code == 200
    forged = [f"{micros}.{int(event_id) + 1}.{signature}", f"{int(micros) - 1}.{event_id}.{signature}",
              f"{micros}.{event_id}.{signature[:-2]}AA", "abc", "", ".", "1.2.3.4", "²." + cursor,
              f"{micros}.99999999999999999999999.{signature}", "9" * 5000, "-1.-1.x",
              f"{'9' * 18}.{event_id}.{signature}"]
    for value in forged:
        response = await client.get(base, params={"cursor": value})
        if value == "":
            assert response.status_code == 200  # no cursor: the first page
            continue
        assert response.status_code == 400, value
        assert response.json()["error"].startswith("cursor: invalid"), value
    # A cursor of one query is refused by another (other filters, or another period).
    for other in ("/api/events?start=2026-12-01&end=2027-02-28&limit=3&area=elcki",
                  "/api/events?start=2026-12-02&end=2027-02-28&limit=3"):
        assert (await client.get(other, params={"cursor": cursor})).status_code == 400
    polish = await client.get(base, params={"cursor": "abc", "lang": "pl"})
    assert polish.status_code == 400 and "zacznij od pierwszej strony" in polish.json()["error"]


HOSTILE_EVENTS = [
    "org=²", "org=99999999999999999999999", "org=-1", "org=1e3", "org=" + "1," * 500,
    "start=0001-01-01", "start=9999-12-31", "end=9999-12-31", "start=2026-12-01&end=0001-01-01",
    "start=9999-12-31T23:59:59", "start=2026-13-45", "start=" + "2" * 5000,
    "area=" + "&area=".join(["elcki"] * 1000), "area=" + ",".join(["x"] * 5000), "area=" + "ą" * 10000,
    "category=" + "x" * 10000, "audience=" + ",".join(["ngo"] * 1000), "limit=0", "limit=abc",
    "limit=99999999999999999999", "limit=2001", "limit=²", "start=2026-12-01&end=2028-12-01",
    "start=2026-12-05&end=2026-12-01", "lang=" + "x" * 10000 + "&org=²",
]
HOSTILE_CONFLICTS = [
    "start=0001-01-01&end=0001-01-02", "start=9999-12-30&end=9999-12-31",
    "start=9999-12-31T10:00&end=9999-12-31T12:00", "start=2026-12-05&end=9999-12-31",
    "start=2026-12-05T10:00&end=2026-12-05T12:00&org=²",
    "start=2026-12-05T10:00&end=2026-12-05T12:00&org=99999999999999999999999",
    "start=2026-12-05T10:00&end=2026-12-05T12:00&title=" + "x" * 10000,
    "start=2026-12-05T10:00&end=2026-12-05T12:00&area=" + "&area=".join(["x"] * 1000),
    "start=2026-12-05T10:00&end=2026-12-05T12:00&audience=" + ",".join(["bad"] * 1000),
    "start=2026-12-05T10:00&end=2026-12-05T12:00&category=" + "x" * 10000,
    "start=2026-12-05&end=2026-12-05T12:00", "start=2026-12-05T10:00",
]


async def test_hostile_parameters_get_a_localized_400(ctx: AppContext, client: httpx.AsyncClient) -> None:
    await seed(ctx)
    for path, queries in (("/api/events", HOSTILE_EVENTS), ("/api/conflicts", HOSTILE_CONFLICTS)):
        for query in queries:
            for lang in ("en", "pl"):
                response = await client.get(f"{path}?{query}&lang={lang}")
                assert response.status_code == 400, (path, query[:80], response.text[:200])
                message = response.json()["error"]
                assert message and "Traceback" not in message and len(message) < 400, (query[:80], message)
    english = (await client.get("/api/events?org=²&lang=en")).json()["error"]
    polish = (await client.get("/api/events?org=²&lang=pl")).json()["error"]
    assert "is not a number" in english and "to nie jest numer" in polish
    for value in ("0", "abc", "2001", "²", "99999999999999999999"):
        limit = (await client.get(f"/api/events?limit={value}&lang=en")).json()["error"]
        assert limit == "limit: give a number from 1 to 2000.", value
    year = (await client.get("/api/conflicts?start=0001-01-01&end=0001-01-02&lang=pl")).json()["error"]
    assert "rok 1 jest poza zakresem" in year


@pytest.mark.parametrize("url", ["/calendar.ics?org=²", "/calendar.ics?org=99999999999999999999999",
                                 "/calendar.ics?area=" + "&area=".join(["elcki"] * 1000),
                                 "/calendar.ics?area=" + "x" * 10000, "/calendar/elcki.ics?org=²",
                                 "/calendar.ics?category=" + ",".join(["training"] * 1000)])
async def test_hostile_feed_parameters_get_a_4xx(ctx: AppContext, client: httpx.AsyncClient,
                                                 url: str) -> None:
    response = await client.get(url + "&lang=pl")
    assert 400 <= response.status_code < 500 and "Traceback" not in response.text
    assert len(response.text) < 400
