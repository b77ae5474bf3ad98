"""`/events/new`, the form to propose an event without Telegram, through the assembled app on
both engines: the form in Polish and English, the date check (conflicts, free dates) before
sending, the pending event it stores, per-field errors, the form token (too fast, expired,
forged, replayed), the per-client budget, escaping, and the outcome e-mail read from the
Maildir outbox (no SMTP host configured)."""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event, cancel_event
from infranet.calendar.moderation import decide_event
from infranet.context import AppContext
from infranet.newsletter.outbound import outbox_dir
from infranet.site import proposal_outcomes
from infranet.site.pages import Site
from infranet.storage.actors import Actor
from infranet.storage.models import Event, EventProposal, Moderation
from tests.conftest import make_context
from tests.http_app import BASE, assembled

WARSAW = ZoneInfo("Europe/Warsaw")
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAY = date(2027, 3, 10)  # a Wednesday, no holiday near
HOSTILE = "Spotkanie </script><script>alert(1)</script> & <b>"


class Clock:
    """The context's clock, moved by the test (the form token counts seconds on it)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def site_ctx(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    context = await make_context(db_url, tmp_path / "data", http={"public_base_url": BASE})
    context.clock = Clock(START)
    yield context
    await context.db.dispose()


def clock(ctx: AppContext) -> Clock:
    assert isinstance(ctx.clock, Clock)
    return ctx.clock


def form(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": "Warsztaty z pisania wniosków", "start_date": DAY.isoformat(),
        "start_time": "10:00", "end_time": "13:00", "district": "olsztynski",
        "category": "training", "audiences": ["ngo"], "location": "Olsztyn, ul. Prosta 1",
        "description": "Dla małych organizacji.", "organiser_name": "Grupa Sąsiedzka Jaroty",
        "registration_url": "https://example.org/zapisy", "cost": "0",
        "email": "Ala@Example.org", "name": "Ala Kowalska", "step": "send"}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def token_in(page: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match, "no form token on the page"
    return unescape(match.group(1))


async def shown(client: httpx.AsyncClient, ctx: AppContext, path: str = "/events/new") -> str:
    """Open the form as a person would, and take the few seconds a person takes."""
    page = await client.get(path)
    assert page.status_code == 200
    clock(ctx).advance(20)
    return token_in(page.text)


async def stored(ctx: AppContext) -> tuple[int, int]:
    async with ctx.db.read() as session:
        events = await session.scalar(select(func.count()).select_from(Event))
        proposals = await session.scalar(select(func.count()).select_from(EventProposal))
    return int(events or 0), int(proposals or 0)


async def existing_event(ctx: AppContext, title: str, district: str = "olsztynski") -> Event:
    start = datetime(DAY.year, DAY.month, DAY.day, 11, 0, tzinfo=WARSAW)
    async with ctx.db.transaction() as session:
        return await add_event(session, ctx, Actor.cli(), EventInput(
            title=title, start=start, end=start + timedelta(hours=2), district=district,
            category="training", audiences=["ngo"]), source="cli")


async def test_form_in_polish_and_english(site_ctx: AppContext) -> None:
    async with assembled(site_ctx) as app, app.client() as client:
        page = await client.get("/events/new")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        text = page.text
        assert '<html lang="pl">' in text and "<h1>Zaproponuj wydarzenie</h1>" in text
        for field in ("title", "start_date", "start_time", "end_time", "end_date", "district",
                      "location", "category", "description", "organiser_name",
                      "registration_url", "cost", "email", "name"):
            assert f'<label for="{field}">' in text and f'id="{field}"' in text, field
        assert text.count("<fieldset") >= 5 and "<legend>Termin</legend>" in text
        assert ">ełcki</option>" in text and ">Sprawdź termin</button>" in text
        assert "/newsletter/privacy" in text and "30 dni" in text
        assert 'action="/events/new?lang=pl#check"' in text
        english = await client.get("/events/new?lang=en")
        assert '<html lang="en">' in english.text and "<h1>Propose an event</h1>" in english.text
        assert ">Check the date</button>" in english.text
        assert 'action="/events/new?lang=en#check"' in english.text
        assert "We do not publish it" in english.text
        # Polish chosen over an English browser stays Polish when the form is sent.
        chosen = await client.get("/events/new?lang=pl", headers={"accept-language": "en"})
        found = re.search(r'<form method="post" action="([^"]+)"', chosen.text)
        assert found
        action = unescape(found.group(1))
        checked = await client.post(action.split("#")[0], data=form(step="check", token="x"),
                                    headers={"accept-language": "en"})
        assert '<html lang="pl">' in checked.text and "Sprawdzenie terminu" in checked.text


async def test_check_shows_conflicts_and_free_dates_with_the_form_kept(site_ctx: AppContext) -> None:
    await existing_event(site_ctx, "Forum Organizacji Pozarządowych")
    await existing_event(site_ctx, "Targi w Ełku", district="elcki")  # another powiat
    async with assembled(site_ctx) as app, app.client() as client:
        token = await shown(client, site_ctx)
        answer = await client.post("/events/new", data=form(step="check", token=token,
                                                            title="Nasze <spotkanie>"))
        assert answer.status_code == 200
        text = answer.text
        assert "Sprawdzenie terminu" in text and "W tym samym czasie w okolicy" in text
        assert "Forum Organizacji Pozarządowych" in text and "Targi w Ełku" not in text
        assert "Najbliższe wolne terminy" in text
        suggestions = re.search(r'<ul class="suggestions">(.*?)</ul>', text, re.S)
        assert suggestions and suggestions.group(1).count("<li>") == 3
        assert "10 marca 2027" not in suggestions.group(1)  # the taken day is not offered
        picks = re.findall(r'name="pick" value="([^"]+)" class="secondary">Wybierz: ([^<]+)<',
                           suggestions.group(1))
        assert len(picks) == 3 and picks[0][0] == "2027-03-17/2027-03-17"  # the same weekday first
        assert picks[0][1].startswith("środa, 17 marca 2027, 10:00")
        # Choosing one checks the form moved to that date: free, the hours kept.
        moved = await client.post("/events/new", data=form(step="check", token=token, pick=picks[0][0]))
        assert moved.status_code == 200 and "nie ma innych wydarzeń" in moved.text
        assert 'name="start_date" value="2027-03-17"' in moved.text
        assert 'name="start_time" value="10:00"' in moved.text
        # The form comes back filled in, with the same token, escaped.
        assert 'value="Nasze &lt;spotkanie&gt;"' in text and token_in(text) == token
        assert '<option value="olsztynski" selected>' in text
        assert 'value="ngo" checked' in text and 'value="Ala@Example.org"' in text
        assert await stored(site_ctx) == (2, 0)
        # A day without anything nearby says so.
        clear = await client.post("/events/new", data=form(step="check", token=token,
                                                           start_date="2027-03-17"))
        assert clear.status_code == 200 and "nie ma innych wydarzeń" in clear.text
        # Checking a date needs no e-mail or organiser yet; a wrong date is named.
        anonymous = await client.post("/events/new", data=form(step="check", token=token, email="",
                                                               organiser_name="", cost="?"))
        assert anonymous.status_code == 200 and "Forum Organizacji" in anonymous.text
        wrong = await client.post("/events/new", data=form(step="check", token=token,
                                                           start_date="31.02.2027"))
        assert wrong.status_code == 400 and 'id="err-start_date"' in wrong.text
        assert "Data: podaj datę, np. 2027-05-14" in unescape(wrong.text)
        english = await client.post("/events/new?lang=en", data=form(step="check", token=token))
        assert "At the same time nearby" in english.text and "The nearest free dates" in english.text
    assert await stored(site_ctx) == (2, 0)


async def test_send_stores_a_pending_event_hidden_until_published(site_ctx: AppContext) -> None:
    async with assembled(site_ctx) as app, app.client() as client:
        token = await shown(client, site_ctx)
        sent = await client.post("/events/new", data=form(token=token, cost="12,50"))
        assert sent.status_code == 200
        assert "czeka teraz na akceptację sekretariatu" in sent.text
        assert "ala@example.org" in sent.text.lower()
        async with site_ctx.db.read() as session:
            event = (await session.scalars(select(Event))).one()
            kept = (await session.scalars(select(EventProposal))).one()
        assert event.moderation == Moderation.PENDING and event.source == "web"
        assert event.member_id is None and event.organisation_id is None
        assert event.organiser_name == "Grupa Sąsiedzka Jaroty" and event.cost_pln == Decimal("12.50")
        assert event.starts_at == datetime(2027, 3, 10, 9, 0, tzinfo=UTC)  # 10:00 in Warsaw
        assert event.audiences == ["ngo"] and event.registration_url == "https://example.org/zapisy"
        assert kept.event_id == event.id and kept.email == "Ala@example.org"
        assert kept.name == "Ala Kowalska" and kept.language == "pl" and kept.told_at is None
        feed = await client.get("/calendar.ics")
        assert feed.status_code == 200 and "Warsztaty z pisania" not in feed.text
        async with site_ctx.db.transaction() as session:
            verdict = await decide_event(session, site_ctx, Actor.cli(), event.id, True)
        assert verdict.state == "decided"
        feed = await client.get("/calendar.ics")
        assert "Warsztaty z pisania" in feed.text


async def test_a_multi_day_all_day_proposal(site_ctx: AppContext) -> None:
    await existing_event(site_ctx, "Forum Organizacji Pozarządowych")  # on its first day
    async with assembled(site_ctx) as app, app.client() as client:
        token = await shown(client, site_ctx)
        days = form(token=token, all_day="1", start_time="", end_time="", end_date="2027-03-12")
        checked = await client.post("/events/new", data={**days, "step": "check"})
        assert checked.status_code == 200 and "Forum Organizacji" in checked.text
        picks = re.findall(r'name="pick" value="([^"]+)"', checked.text)
        spans = [[date.fromisoformat(d) for d in p.split("/")] for p in picks]
        assert spans and all((last - first).days == 2 for first, last in spans)  # three days each
        assert (await client.post("/events/new", data=days)).status_code == 200
    async with site_ctx.db.read() as session:
        event = (await session.scalars(select(Event).where(Event.source == "web"))).one()
    assert event.all_day and event.moderation == Moderation.PENDING
    assert event.starts_at == datetime(2027, 3, 9, 23, 0, tzinfo=UTC)  # 10 March, Warsaw
    assert event.ends_at == datetime(2027, 3, 12, 23, 0, tzinfo=UTC)  # after 12 March


async def test_moderation_off_still_keeps_web_proposals_waiting(site_ctx: AppContext) -> None:
    site_ctx.settings.calendar.moderation = "none"
    async with assembled(site_ctx) as app, app.client() as client:
        token = await shown(client, site_ctx)
        assert (await client.post("/events/new", data=form(token=token, cost=""))).status_code == 200
    async with site_ctx.db.read() as session:
        event = (await session.scalars(select(Event))).one()
    assert event.moderation == Moderation.PENDING and event.cost_pln is None


async def test_each_wrong_field_says_why_and_nothing_is_stored(site_ctx: AppContext) -> None:
    async with assembled(site_ctx) as app, app.client() as client:
        token = await shown(client, site_ctx)
        bad = form(token=token, title="  ", email="ala(at)example", cost="dużo",
                   registration_url="example.org", district="", end_date="2027-03-09",
                   organiser_name="")
        answer = await client.post("/events/new", data=bad)
        assert answer.status_code == 400
        text = unescape(answer.text)
        assert "Popraw zaznaczone pola" in text
        errors = dict(re.findall(r'<span class="field-error" id="err-([a-z_]+)">([^<]*)</span>', text))
        assert errors["title"] == "Tytuł: to pole jest wymagane."
        assert errors["email"].startswith("E-mail: ala(at)example nie wygląda na adres e-mail")
        assert errors["cost"].startswith("Koszt udziału: podaj kwotę w złotych")
        assert "nie jest adresem strony" in errors["registration_url"] or \
            "http://" in errors["registration_url"]
        assert errors["district"] == "Powiat: to pole jest wymagane." or "wymagane" in errors["district"]
        assert "koniec" in errors["end_date"] and errors["organiser_name"].startswith("Organizator")
        assert 'aria-invalid="true" aria-describedby="hint-email err-email"' in answer.text
        assert 'aria-invalid="true" aria-describedby="err-title"' in answer.text
        # The form keeps what was typed, so that only the wrong fields need retyping.
        assert 'value="Grupa' not in answer.text and 'value="ala(at)example"' in answer.text
        english = await client.post("/events/new?lang=en", data={**bad, "title": "x",
                                                                 "start_time": "25:00"})
        assert english.status_code == 400
        text = unescape(english.text)
        assert "Cost of taking part: give an amount in złoty" in text
        assert "give a time, e.g. 10:00" in text and "Correct the marked fields" in text
        past = await client.post("/events/new", data=form(token=token, start_date="2026-11-30"))
        assert past.status_code == 400 and "ten termin już minął" in past.text
    assert await stored(site_ctx) == (0, 0)


async def test_form_token_too_fast_expired_forged_or_replayed(site_ctx: AppContext) -> None:
    async with assembled(site_ctx) as app, app.client() as client:
        page = await client.get("/events/new")
        token = token_in(page.text)
        clock(site_ctx).advance(1)
        fast = await client.post("/events/new", data=form(token=token))
        assert fast.status_code == 400 and "za szybko" in fast.text
        assert 'value="Warsztaty z pisania wniosków"' in fast.text  # kept, with a fresh token
        assert token_in(fast.text) != token
        clock(site_ctx).advance(2 * 3600)
        expired = await client.post("/events/new?lang=en", data=form(token=token))
        assert expired.status_code == 400 and "has expired" in expired.text
        mac_changed = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        for forged in (mac_changed, "", "1.2.3", "x" * 5000, token.replace(".", "", 1)):
            refused = await client.post("/events/new", data=form(token=forged))
            assert refused.status_code == 400 and "formularz jest nieważny" in refused.text, forged[:20]
        assert await stored(site_ctx) == (0, 0)
        fresh = await shown(client, site_ctx)
        assert (await client.post("/events/new", data=form(token=fresh))).status_code == 200
        again = await client.post("/events/new", data=form(token=fresh, title="Inny tytuł"))
        assert again.status_code == 409 and "została już wysłana" in again.text
    assert await stored(site_ctx) == (1, 1)


async def test_budget_per_client_answers_429(db_url: str, tmp_path: Path) -> None:
    ctx = await make_context(db_url, tmp_path / "data", http={"public_base_url": BASE},
                             newsletter={"form_burst": 2, "form_per_minute": 1})
    ctx.clock = Clock(START)
    try:
        async with assembled(ctx) as app, app.client() as client:
            token = await shown(client, ctx)
            for _ in range(2):
                assert (await client.post("/events/new", data=form(step="check", token=token))
                        ).status_code == 200
            refused = await client.post("/events/new", data=form(token=token))
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert "Zbyt wiele prób" in refused.text
            assert 'value="Warsztaty z pisania wniosków"' in refused.text  # nothing typed is lost
            async with app.client(ip="203.0.113.9") as other:  # another client has its own budget
                assert (await other.get("/events/new")).status_code == 200
                assert (await other.post("/events/new", data=form(token=token))).status_code == 200
        assert await stored(ctx) == (1, 1)
    finally:
        await ctx.db.dispose()


async def test_hostile_input_is_escaped_on_the_confirmation(site_ctx: AppContext) -> None:
    async with assembled(site_ctx) as app, app.client() as client:
        token = await shown(client, site_ctx)
        sent = await client.post("/events/new", data=form(token=token, title=HOSTILE,
                                                          email="x+test@example.org"))
        assert sent.status_code == 200, sent.text[:400]
        assert "<script>" not in sent.text and "<b>" not in sent.text
        assert "Spotkanie &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in sent.text
        junk = await client.post("/events/new", data={"title": "\x00" * 10, "audiences": ["x"] * 50,
                                                      "district": "ż" * 3000, "step": "check"})
        assert junk.status_code == 400


def outbox(ctx: AppContext) -> list[email.message.Message]:
    path = outbox_dir(ctx)
    if not path.exists():
        return []
    return [email.message_from_bytes(bytes(m), policy=email.policy.default)
            for m in mailbox.Maildir(str(path)).values()]


def body(message: email.message.Message) -> str:
    assert isinstance(message, email.message.EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_outcome_mail_once_then_the_address_is_purged(site_ctx: AppContext) -> None:
    site = Site(site_ctx)
    async with assembled(site_ctx) as app, app.client() as client:
        for title, lang, name in (("Piknik rodzinny", "pl", None), ("Family picnic", "en", "Bob <B>")):
            path = "/events/new" + ("?lang=en" if lang == "en" else "")
            token = await shown(client, site_ctx, path)
            sent = await client.post(path, data=form(token=token, title=title, name=name,
                                                     email=f"{lang}@example.org"))
            assert sent.status_code == 200
    assert await proposal_outcomes.tell_outcomes(site) == 0  # nothing decided yet: nothing sent
    async with site_ctx.db.transaction() as session:
        ids = {e.title: e.id for e in (await session.scalars(select(Event))).all()}
        await decide_event(session, site_ctx, Actor.cli(), ids["Piknik rodzinny"], True)
        await decide_event(session, site_ctx, Actor.cli(), ids["Family picnic"], False)
    assert await proposal_outcomes.tell_outcomes(site) == 2
    assert await proposal_outcomes.tell_outcomes(site) == 0  # told once, not on every run
    mails = {m["To"]: m for m in outbox(site_ctx)}
    assert set(mails) == {"pl@example.org", "en@example.org"}
    published = mails["pl@example.org"]
    assert published["Subject"] == "Opublikowano: Piknik rodzinny"
    text = body(published)
    assert text.startswith("Dzień dobry,")
    assert f"{BASE}/events/{ids['Piknik rodzinny']}-piknik-rodzinny" in text
    rejected = mails["en@example.org"]
    assert rejected["Subject"] == "Not published: Family picnic"
    assert body(rejected).startswith("Hello Bob <B>,")  # plain text: as typed
    assert "has not been published" in body(rejected) and "/events/" not in body(rejected)
    # Kept RETENTION_DAYS after they were told, then deleted by the daily purge.
    clock(site_ctx).advance(29 * 86400)
    assert await proposal_outcomes.purge(site) == 0
    clock(site_ctx).advance(2 * 86400)
    assert await proposal_outcomes.purge(site) == 2
    assert await stored(site_ctx) == (2, 0)


async def test_a_proposal_cancelled_or_never_decided_is_reported_not_published(
        site_ctx: AppContext) -> None:
    site = Site(site_ctx)
    async with assembled(site_ctx) as app, app.client() as client:
        for title in ("Nikt nie zdecydował", "Odwołane przez sekretariat"):
            token = await shown(client, site_ctx)
            assert (await client.post("/events/new", data=form(token=token, title=title))
                    ).status_code == 200
    async with site_ctx.db.transaction() as session:
        cancelled = await session.scalar(select(Event.id).where(Event.title.startswith("Odwołane")))
        assert cancelled is not None
        await cancel_event(session, site_ctx, Actor.cli(), cancelled)
    assert await proposal_outcomes.tell_outcomes(site) == 1
    clock(site_ctx).now = datetime(2027, 3, 11, tzinfo=UTC)  # the other one has ended, waiting
    assert await proposal_outcomes.tell_outcomes(site) == 1
    subjects = sorted(str(m["Subject"]) for m in outbox(site_ctx))
    assert subjects == ["Nie opublikowano: Nikt nie zdecydował",
                        "Nie opublikowano: Odwołane przez sekretariat"]


async def test_hostile_requests_are_refused_never_a_500(site_ctx: AppContext) -> None:
    async with assembled(site_ctx) as app, app.client() as client:
        token = await shown(client, site_ctx)
        for query in ("?lang=" + "x" * 10_000, "?lang=en&lang=pl&lang=%00", "?" + "a=1&" * 2000):
            assert (await client.get("/events/new" + query)).status_code == 200
        huge = await client.post("/events/new", data=form(token=token, description="x" * 70_000))
        assert huge.status_code == 413
        for pick in ("", "2027-03-17", "2027-03-17/2027-03-10", "²⁰²⁷-03-17/2027-03-17", "x" * 500):
            moved = await client.post("/events/new", data=form(step="check", token=token, pick=pick))
            assert moved.status_code == 200, pick  # not a date: the form is checked as it was
            assert 'name="start_date" value="2027-03-10"' in moved.text
        odd = await client.post("/events/new", data=form(
            token=token, start_date="١٠.٠٣.٢٠٢٧", start_time="²:00", cost="１２", email="a@b@c",
            district="../../etc", category="x" * 100, audiences=["ngo"] * 40, all_day="on"))
        assert odd.status_code == 400
        put = await client.put("/events/new", data=form(token=token))
        assert put.status_code == 405
        long_title = await client.post("/events/new", data=form(token=token, title="T" * 201))
        assert long_title.status_code == 400 and "201" in long_title.text
    assert await stored(site_ctx) == (0, 0)
