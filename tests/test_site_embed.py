"""`/calendar` (the feed picker, in the site's layout, with the `<iframe>` code) and `/embed`
(the list other sites frame) through the assembled app, on both engines: the events each
filter lists, the framing policy of the embed alone, limits and hostile parameters."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import httpx
import pytest

from infranet.calendar.event_input import EventInput
from infranet.calendar.event_links import event_url
from infranet.calendar.events import add_event, cancel_event
from infranet.context import AppContext
from infranet.network.orgs import OrgInput, add_organisation
from infranet.storage.actors import Actor
from tests.http_app import assembled

W = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8080"  # [http] public_base_url of the tests' settings


@pytest.fixture(autouse=True)
def _fixed_clock(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW


def policy(response: httpx.Response) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:]
            for part in response.headers["Content-Security-Policy"].split("; ")}


class Links(HTMLParser):
    """The embed's event links and the picker's textarea, as a browser reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.textarea: str | None = None
        self._in_link: dict[str, str | None] | None = None
        self._in_textarea = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and dict(attrs).get("class") == "title":
            self._in_link = {**dict(attrs), "text": ""}
            self.links.append(self._in_link)
        elif tag == "textarea":
            self._in_textarea, self.textarea = True, ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._in_link = None
        elif tag == "textarea":
            self._in_textarea = False

    def handle_data(self, data: str) -> None:
        if self._in_link is not None:
            self._in_link["text"] = (self._in_link["text"] or "") + data
        if self._in_textarea:
            self.textarea = (self.textarea or "") + data


def text_of(page: str) -> str:
    return re.sub(r"[ \t\n]+", " ", html.unescape(re.sub("<[^>]+>", " ", page)))


def parsed(text: str) -> Links:
    reader = Links()
    reader.feed(text)
    return reader


async def seed(ctx: AppContext) -> dict[str, int]:
    cli = Actor.cli()
    ids: dict[str, int] = {}
    async with ctx.db.transaction() as s:
        org = await add_organisation(s, ctx, cli, OrgInput(name="COP Ełk"))
        ids["org"] = org.id
        ids["elk"] = (await add_event(s, ctx, cli, EventInput(
            'Szkolenie </script><script>alert(1)</script> "RODO"', datetime(2026, 12, 5, 10, tzinfo=W),
            datetime(2026, 12, 5, 14, tzinfo=W), district="ełcki", category="training", audiences=["ngo"],
            organisation_id=org.id, location="ul. Armii Krajowej 1, Ełk"))).id
        ids["fair"] = (await add_event(s, ctx, cli, EventInput(
            "Targi NGO", date(2026, 12, 18), date(2026, 12, 20), all_day=True, district="giżycki",
            category="fair", audiences=["residents"]))).id
        ids["olsztyn"] = (await add_event(s, ctx, cli, EventInput(
            "Spotkanie w Olsztynie", datetime(2026, 12, 2, 17, tzinfo=W), datetime(2026, 12, 2, 19, tzinfo=W),
            district="olsztyński", category="meeting", audiences=["ngo"]))).id
        ids["region"] = (await add_event(s, ctx, cli, EventInput(
            "Spotkanie sieci", datetime(2026, 12, 9, 11, tzinfo=W), datetime(2026, 12, 9, 13, tzinfo=W),
            district="region", category="meeting", audiences=["ngo"]))).id
        ids["past"] = (await add_event(s, ctx, cli, EventInput(
            "Było w październiku", datetime(2026, 10, 2, 10, tzinfo=W), datetime(2026, 10, 2, 12, tzinfo=W),
            district="ełcki", category="training"))).id
        ids["cancelled"] = (await add_event(s, ctx, cli, EventInput(
            "Odwołany warsztat", datetime(2026, 12, 3, 10, tzinfo=W), datetime(2026, 12, 3, 12, tzinfo=W),
            district="ełcki", category="consultation"))).id
        await cancel_event(s, ctx, cli, ids["cancelled"])
    return ids


async def test_embed_lists_the_filtered_events_in_a_framable_page(ctx: AppContext) -> None:
    ids = await seed(ctx)
    async with assembled(ctx) as app, app.client() as client:
        everything = await client.get("/embed")
        elk = await client.get("/embed?area=elcki")
        trainings = await client.get("/embed?area=podregion-elcki&category=training&lang=en")
        residents = await client.get("/embed?audience=residents")
        by_org = await client.get(f"/embed?org={ids['org']}")
        other_pages = [await client.get(path) for path in ("/events", "/calendar", "/organisations",
                                                             "/trainings")]
    titles = [link["text"] for link in parsed(everything.text).links]
    assert titles == ["Spotkanie w Olsztynie", 'Szkolenie </script><script>alert(1)</script> "RODO"',
                      "Spotkanie sieci", "Targi NGO"]
    assert "Było w październiku" not in everything.text and "Odwołany warsztat" not in everything.text
    # the area's own events and the region's (as its feed has them), not the neighbours'
    assert [link["text"] for link in parsed(elk.text).links] == [
        'Szkolenie </script><script>alert(1)</script> "RODO"', "Spotkanie sieci"]
    assert [link["text"] for link in parsed(trainings.text).links] == [
        'Szkolenie </script><script>alert(1)</script> "RODO"']
    assert [link["text"] for link in parsed(residents.text).links] == ["Targi NGO"]
    assert [link["text"] for link in parsed(by_org.text).links] == [
        'Szkolenie </script><script>alert(1)</script> "RODO"']

    (link,) = parsed(trainings.text).links
    assert link["href"] == f"{BASE}/events/{ids['elk']}-szkolenie-script-script-alert-1-script-rodo?lang=en"
    assert link["href"] == event_url(BASE, ids["elk"], link["text"] or "") + "?lang=en"
    assert link["target"] == "_blank" and link["rel"] == "noopener"
    assert "<script>alert(1)" not in trainings.text
    assert "Saturday, 5 December 2026, 10:00–14:00 · ul. Armii Krajowej 1, Ełk, ełcki" in \
        text_of(trainings.text)
    assert "piątek, 18 grudnia 2026 – niedziela, 20 grudnia 2026 · giżycki" in text_of(residents.text)
    # standalone: no layout, no navigation, the page's language
    assert "<nav" not in elk.text and 'lang="en"' in trainings.text and 'lang="pl"' in elk.text

    for answer in (everything, elk, trainings):
        assert answer.status_code == 200
        directives = policy(answer)
        assert directives["frame-ancestors"] == ["*"]
        assert directives["script-src"] == ["'none'"] and directives["default-src"] == ["'self'"]
        assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"]
        assert "X-Frame-Options" not in answer.headers
        assert answer.headers["Cache-Control"] == "public, max-age=300"
    for page in other_pages:
        assert page.status_code == 200, page.url
        assert page.headers["content-type"].startswith("text/html")
        assert policy(page)["frame-ancestors"] == ["'none'"], page.url
        assert page.headers["X-Frame-Options"] == "DENY", page.url


async def test_embed_limit_is_bounded(ctx: AppContext) -> None:
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        for day in range(60):
            start = datetime(2026, 12, 1, 10, tzinfo=W) + timedelta(days=day)
            await add_event(s, ctx, cli, EventInput(f"Dyżur {day + 1}", start, start + timedelta(hours=1),
                                                    district="ełcki", category="meeting"))
    async with assembled(ctx) as app, app.client() as client:
        default = await client.get("/embed")
        one = await client.get("/embed?limit=1")
        most = await client.get("/embed?limit=50")
        refused = {value: await client.get(f"/embed?limit={value}")
                   for value in ("0", "51", "-1", "abc", "²", "1e3", "9" * 40, " ")}
        english = await client.get("/embed?limit=51&lang=en")
    assert [link["text"] for link in parsed(default.text).links] == [f"Dyżur {n}" for n in range(1, 11)]
    assert [link["text"] for link in parsed(one.text).links] == ["Dyżur 1"]
    assert len(parsed(most.text).links) == 50
    for value, answer in refused.items():
        if value == " ":
            assert answer.status_code == 200 and len(parsed(answer.text).links) == 10
            continue
        assert answer.status_code == 400, value
        assert "limit: podaj liczbę od 1 do 50." in answer.text, value
        assert policy(answer)["frame-ancestors"] == ["*"]  # the framing site shows the message
        assert answer.headers["Cache-Control"] == "no-store"
    assert english.status_code == 400 and "limit: give a number from 1 to 50." in english.text


HOSTILE = ["area=%3Cscript%3Ealert(1)%3C/script%3E", "category=party", "audience=<b>x</b>",
           "org=%C2%B2", "org=99999999999999999999999", "area=" + "&area=".join(["elcki"] * 1000),
           "area=" + "x" * 10000, "category=" + ",".join(["training"] * 1000), "area=%00%ff%fe"]


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_parameters_are_400_never_500(ctx: AppContext, query: str) -> None:
    async with assembled(ctx) as app, app.client() as client:
        embed = await client.get("/embed?" + query)
        picker = await client.get("/calendar?" + query)
    for answer in (embed, picker):
        assert answer.status_code == 400, (answer.url, answer.status_code)
        assert "<script>" not in answer.text and "<b>x" not in answer.text
        assert "Traceback" not in answer.text and 'role="alert"' in answer.text
        assert len(answer.text) < 30_000
    # the picker shows its form again, empty, under the message
    assert 'name="area" value="elcki">' in picker.text and " checked" not in picker.text


async def test_picker_in_the_layout_with_feed_and_iframe_code(ctx: AppContext) -> None:
    async with assembled(ctx) as app, app.client() as client:
        plain = await client.get("/calendar")
        chosen = await client.get("/calendar?area=elcki&area=podregion-olsztynski&category=training"
                                  "&audience=ngo&lang=en")
        typo = await client.get("/calendar?area=<script>")
    assert plain.status_code == 200
    # the site's layout: navigation with this page marked, the language switch
    assert '<nav class="main"' in plain.text
    assert '<a href="/calendar" aria-current="page">Kalendarz ICS</a>' in plain.text
    assert 'name="area" value="olsztynski"' in plain.text and 'name="category" value="training"' in plain.text
    assert f"webcal://{BASE.split('://')[1]}/calendar.ics" in plain.text
    assert "Google Calendar" in plain.text and "Thunderbird" in plain.text and "Outlook" in plain.text
    code = parsed(plain.text).textarea
    assert code == (f'<iframe src="{BASE}/embed?limit=10" title="Najbliższe wydarzenia – '
                    f'województwo warmińsko-mazurskie" width="100%" height="480" loading="lazy"></iframe>')

    assert chosen.status_code == 200 and 'lang="en"' in chosen.text
    query = "area=elcki&amp;area=podregion-olsztynski&amp;category=training&amp;audience=ngo"
    assert f'<code id="feed">{BASE}/calendar.ics?{query}</code>' in chosen.text
    assert 'value="elcki" checked' in chosen.text and 'value="podregion-olsztynski" checked' in chosen.text
    assert 'value="olsztynski">' in chosen.text  # a powiat of a chosen subregion is not ticked
    assert "Subscribe (webcal)" in chosen.text
    code = parsed(chosen.text).textarea
    assert code is not None and code.startswith("<iframe ") and "<script" not in code
    # pasted into a page, the code frames the embed with the same filters and language
    frame = re.search(r'src="([^"]+)"', code)
    assert frame is not None and html.unescape(frame[1]) == (
        f"{BASE}/embed?area=elcki&area=podregion-olsztynski&category=training&audience=ngo"
        "&limit=10&lang=en")
    assert 'title="Upcoming events – województwo warmińsko-mazurskie"' in code
    assert "&lt;iframe src=" in chosen.text  # escaped where the page shows it

    assert typo.status_code == 400 and "<script>" not in typo.text
    assert "nieznany powiat/obszar &#39;&lt;script&gt;&#39;" in typo.text


async def test_picker_and_embed_agree_with_the_feed(ctx: AppContext) -> None:
    """The iframe the picker gives lists the events of the feed the picker gives."""
    import icalendar

    await seed(ctx)
    async with assembled(ctx) as app, app.client() as client:
        picker = await client.get("/calendar?area=elcki&audience=ngo")
        feed_url = html.unescape(re.search(r'<code id="feed">([^<]+)</code>', picker.text)[1])  # type: ignore[index]
        code = parsed(picker.text).textarea or ""
        embed_url = html.unescape(re.search(r'src="([^"]+)"', code)[1])  # type: ignore[index]
        feed = await client.get(feed_url.removeprefix(BASE))
        embed = await client.get(embed_url.removeprefix(BASE))
    def upcoming(start: date) -> bool:
        return start >= NOW if isinstance(start, datetime) else start >= NOW.date()

    summaries = {str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(feed.content).walk("VEVENT")
                 if e.get("STATUS") != "CANCELLED" and upcoming(e.decoded("DTSTART"))}
    assert summaries  # the comparison below means something
    listed = {link["text"] for link in parsed(embed.text).links}
    assert listed == summaries
