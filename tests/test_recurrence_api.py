"""The JSON API with series in full, over HTTP, both engines: `/api/conflicts` checks a
recurring candidate (`rrule`, its `exdate`s) in several areas at once, and `/api/events`
pages through endless series beyond its cap with its cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from infranet.calendar.event_input import EventInput
from infranet.calendar.event_queries import list_events
from infranet.calendar.events import add_event
from infranet.calendar.http import MAX_API_ITEMS
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


async def _single(ctx: AppContext, title: str, start: datetime, district: str) -> None:
    async with ctx.db.transaction() as s:
        await add_event(s, ctx, Actor.cli(), EventInput(
            title, start, start + timedelta(hours=2), district=district, category="training",
            audiences=["ngo"]))


async def test_conflicts_of_a_series_with_exdates_in_two_areas(ctx: AppContext,
                                                               client: httpx.AsyncClient) -> None:
    # Wednesdays 10:00 from 2.12: an event in Ełk on the 2nd week, one in Olsztyn on the 3rd.
    await _single(ctx, "Szkolenie w Ełku", datetime(2026, 12, 9, 11, tzinfo=W), "ełcki")
    await _single(ctx, "Szkolenie w Olsztynie", datetime(2027, 1, 13, 9, tzinfo=W), "olsztyński")
    base = ("/api/conflicts?start=2026-12-02T10:00&end=2026-12-02T12:00&category=training&audience=ngo"
            "&title=Cykl&rrule=FREQ%3DWEEKLY%3BUNTIL%3D20270131")
    answer = (await client.get(base + "&area=elcki&area=olsztynski")).json()
    assert [(c["event"]["title"], c["area"], c["severity"]) for c in answer["conflicts"]] == [
        ("Szkolenie w Ełku", "elcki", "high"), ("Szkolenie w Olsztynie", "olsztynski", "high")]
    assert answer["warnings"]  # 23.12 and 30.12 are bridge days or holidays' neighbours
    assert all(len(s["start"]) > 10 for s in answer["suggestions"])
    # Only one area: only its conflict. Comma-separated areas work as repeated ones.
    one = (await client.get(base + "&area=elcki")).json()
    assert [c["event"]["title"] for c in one["conflicts"]] == ["Szkolenie w Ełku"]
    both = (await client.get(base + "&area=elcki,olsztynski")).json()
    assert [c["area"] for c in both["conflicts"]] == ["elcki", "olsztynski"]
    # The series without those two dates: no conflict left.
    free = (await client.get(base + "&area=elcki&area=olsztynski&exdate=2026-12-09T10:00,2027-01-13")).json()
    assert free["conflicts"] == []
    partly = (await client.get(base + "&area=elcki&area=olsztynski&exdate=2026-12-09T09:00:00Z")).json()
    assert [c["event"]["title"] for c in partly["conflicts"]] == ["Szkolenie w Olsztynie"]
    # An endless candidate: checked up to the horizon, its far dates too.
    await _single(ctx, "Za rok", datetime(2027, 12, 1, 10, tzinfo=W), "olsztyński")
    endless = (await client.get("/api/conflicts?start=2026-12-02T10:00&end=2026-12-02T12:00"
                                "&area=olsztynski&rrule=FREQ=WEEKLY")).json()
    assert {c["event"]["title"] for c in endless["conflicts"]} == {"Szkolenie w Olsztynie", "Za rok"}


@pytest.mark.parametrize(("query", "message"), [
    ("&rrule=FREQ%3DDAILY%3BBYMONTH%3D2%3BBYMONTHDAY%3D30", "never falls in BYMONTH=2"),
    ("&rrule=FREQ%3DSECONDLY", "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"),
    ("&rrule=FREQ%3DWEEKLY%0AX-HORIZON:20991231T000000Z", "one line"),
    ("&exdate=2026-12-09", "exdate needs an rrule"),
    ("&rrule=FREQ%3DWEEKLY&exdate=tomorrow", "exdate"),
    ("&rrule=" + "x" * 400, "rrule"),
    ("&area=" + ",".join(["elcki", "olsztynski", "gizycki"] * 4), "too many"),
])
async def test_bad_recurring_candidates_are_a_400(ctx: AppContext, client: httpx.AsyncClient, query: str,
                                                   message: str) -> None:
    response = await client.get("/api/conflicts?start=2026-12-02T10:00&end=2026-12-02T12:00&lang=en" + query)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"] or message in response.json()["error"].lower()


async def test_endless_series_page_beyond_the_cap(ctx: AppContext, client: httpx.AsyncClient) -> None:
    ctx.clock = lambda: NOW
    async with ctx.db.transaction() as s:
        for i in range(6):  # 6 × ~400 daily dates: more than one page of MAX_API_ITEMS
            start = datetime(2026, 12, 1, 8 + i, tzinfo=W)
            await add_event(s, ctx, Actor.cli(), EventInput(
                f"Codziennie {i}", start, start + timedelta(minutes=30), district="ełcki",
                rrule="FREQ=DAILY"))
    start, end = datetime(2026, 12, 1, tzinfo=W), datetime(2028, 1, 1, tzinfo=W)
    async with ctx.db.read() as s:
        expected = await list_events(s, ctx, start=start.astimezone(UTC), end=end.astimezone(UTC))
    wanted = [(o.start.astimezone(W).isoformat(), o.event.id) for o in expected]
    assert len(wanted) > MAX_API_ITEMS
    seen: list[tuple[str, int]] = []
    url: str | None = "/api/events?start=2026-12-01&end=2027-12-31"
    pages = 0
    while url is not None:
        answer = (await client.get(url)).json()
        seen += [(e["start"], e["id"]) for e in answer["events"]]
        assert all(e["rrule"] == "FREQ=DAILY" for e in answer["events"])
        url, pages = answer["next"], pages + 1
    assert pages == 2 and seen == wanted
