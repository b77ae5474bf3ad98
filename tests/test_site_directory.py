"""`/trainings` and `/organisations` through the assembled app, on both engines: open
recruitments by deadline with places, cost and how to apply; the directory with only the
contacts each organisation chose to publish (chosen with `infranet org publish`), filters,
escaping of hostile names, and bad filters answered with a 400 page in the page's language."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from markupsafe import escape
from sqlalchemy import select

from infranet.calendar.dateparse_when import parse_sessions
from infranet.calendar.event_links import event_path
from infranet.calendar.training_input import TrainingInput
from infranet.calendar.trainings import add_training, cancel_training
from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.errors import PermissionDenied
from infranet.network.orgs import OrgInput, add_organisation
from infranet.network.public_contacts import set_publication
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, Member, MemberStatus, Organisation, OrgStatus
from tests.http_app import assembled

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)
W = ZoneInfo("Europe/Warsaw")
HOSTILE = '<script>alert("x")</script> & "Fundacja"'


@pytest.fixture(autouse=True)
def _fixed_clock(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW


def cards(page: str, kind: str) -> dict[str, str]:
    """Each card's HTML by the text of its heading, in the page's order."""
    found = re.findall(rf'<li class="card" id="{kind}-\d+">(.*?)</li>\n(?=  <li class="card"|</ul>)',
                       page, re.S)
    headings = [re.search(r"<h2>(.*?)</h2>", card, re.S) for card in found]
    return {html.unescape(re.sub("<[^>]+>", "", h[1])).strip(): card
            for h, card in zip(headings, found, strict=True) if h}


def text_of(fragment: str) -> str:
    return re.sub(r"[ \t\n]+", " ", html.unescape(re.sub("<[^>]+>", " ", fragment))).strip()


async def run_cli(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


# --- trainings -------------------------------------------------------------------------


def notice(**overrides: object) -> TrainingInput:
    values: dict[str, object] = dict(
        title="Księgowość dla NGO", deadline=date(2026, 12, 10), target_group="skarbnicy organizacji",
        how_to_apply="https://alfa.example.org/zapisy", district="olsztyński", places=20, cost=None,
        sessions=parse_sessions("15.12, 17.12 10:00-14:00", TODAY, W))
    values.update(overrides)
    return TrainingInput(**values)  # type: ignore[arg-type]


async def seed_trainings(ctx: AppContext) -> dict[str, Any]:
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        alfa = await add_organisation(s, ctx, cli, OrgInput(name="Fundacja Alfa"))
        beta_id = 0
        beta = await add_organisation(s, ctx, cli, OrgInput(name=HOSTILE))
        late = await add_training(s, ctx, cli, notice(organisation_id=alfa.id))
        soon = await add_training(s, ctx, cli, notice(
            organisation_id=beta.id, title="RODO <b>w praktyce</b>", deadline=date(2026, 12, 1),
            district="ełcki", places=None, cost=Decimal("1250.50"), how_to_apply="zapisy@beta.example.org",
            target_group="zarządy stowarzyszeń",
            sessions=parse_sessions("5.12 9:00-15:00", TODAY, W)))
        gone = await add_training(s, ctx, cli, notice(organisation_id=alfa.id, title="Odwołane szkolenie",
                                                      deadline=date(2026, 11, 30)))
        await cancel_training(s, ctx, cli, gone.training.id)
        beta_id = beta.id
    return {"late": late.training.id, "soon": soon.training.id, "beta": beta_id,
            "late_sessions": [e.id for e in late.sessions], "soon_session": soon.sessions[0].id}


async def test_trainings_by_deadline_with_places_cost_and_how_to_apply(ctx: AppContext) -> None:
    ids = await seed_trainings(ctx)
    async with assembled(ctx) as app, app.client() as client:
        page = await client.get("/trainings")
        english = await client.get("/trainings?lang=en")
        elk = await client.get("/trainings?area=elcki")
        by_org = await client.get(f"/trainings?org={ids['beta']}&lang=en")
    assert page.status_code == 200
    assert page.text.index("RODO &lt;b&gt;w praktyce") < page.text.index("Księgowość dla NGO")
    assert "Odwołane szkolenie" not in page.text  # a cancelled notice is not recruiting
    shown = cards(page.text, "training")
    assert list(shown) == ["RODO <b>w praktyce</b>", "Księgowość dla NGO"]

    soon = text_of(shown["RODO <b>w praktyce</b>"])
    assert "Zgłoszenia do wtorek, 1 grudnia 2026" in soon
    assert "Koszt 1\u00a0250,50 zł" in soon and "Liczba miejsc bez limitu" in soon
    assert "Powiat / obszar ełcki" in soon and "Dla kogo zarządy stowarzyszeń" in soon
    assert 'href="mailto:zapisy@beta.example.org"' in shown["RODO <b>w praktyce</b>"]
    assert "formularz zgłoszeniowy" not in soon and "tel:" not in shown["RODO <b>w praktyce</b>"]
    assert f'href="{event_path(ids["soon_session"], "RODO <b>w praktyce</b>")}"' in \
        shown["RODO <b>w praktyce</b>"]
    assert "sobota, 5 grudnia 2026, 09:00–15:00" in soon
    # the organisation's hostile name is text, not markup
    assert "<script>" not in page.text and str(escape(HOSTILE)) in page.text

    late = shown["Księgowość dla NGO"]
    assert "Koszt bezpłatne" in text_of(late) and "Liczba miejsc 20" in text_of(late)
    assert ('<a href="https://alfa.example.org/zapisy" rel="nofollow noopener">'
            'formularz zgłoszeniowy</a>') in late
    assert "mailto:" not in late
    for session_id in ids["late_sessions"]:
        assert f'href="/events/{session_id}-ksiegowosc-dla-ngo"' in late
    assert "wtorek, 15 grudnia 2026, 10:00–14:00" in text_of(late)

    assert english.status_code == 200 and 'lang="en"' in english.text
    assert "PLN 1,250.50" in english.text and ">free<" in english.text
    assert "Apply by" in english.text and "Tuesday, 1 December 2026" in english.text
    assert f'href="/events/{ids["late_sessions"][0]}-ksiegowosc-dla-ngo?lang=en"' in english.text

    assert list(cards(elk.text, "training")) == ["RODO <b>w praktyce</b>"]
    assert '<option value="elcki" selected>' in elk.text
    assert list(cards(by_org.text, "training")) == ["RODO <b>w praktyce</b>"]
    assert f'<input type="hidden" name="org" value="{ids["beta"]}">' in by_org.text  # kept by the form


async def test_no_trainings_and_bad_area(ctx: AppContext) -> None:
    async with assembled(ctx) as app, app.client() as client:
        empty = await client.get("/trainings")
        typo = await client.get("/trainings?area=elckii")
        hostile = await client.get("/trainings?area=" + "<x>" * 500)
        english = await client.get("/trainings?area=%3Cscript%3E&lang=en")
        bad_org = await client.get("/trainings?org=%C2%B2")
    assert empty.status_code == 200 and "Teraz nie ma szkoleń z otwartym naborem." in empty.text
    assert typo.status_code == 400 and "ełcki" in typo.text and 'role="alert"' in typo.text
    assert hostile.status_code == 400 and "<x>" not in hostile.text
    assert english.status_code == 400 and "&lt;script&gt;" in english.text
    assert "<script>" not in english.text and 'lang="en"' in english.text
    assert bad_org.status_code == 400 and "org: '²' to nie jest numer" in html.unescape(bad_org.text)


# --- organisations ---------------------------------------------------------------------


async def seed_directory(ctx: AppContext) -> dict[str, int]:
    cli = Actor.cli()
    async with ctx.db.transaction() as s:
        cop = await add_organisation(s, ctx, cli, OrgInput(
            name="COP Ełk", type="COP", districts=["ełcki"], services=["legal-advice", "training"],
            contact_email="biuro@cop-elk.example.org", phone="+48 87 000 00 01",
            website="https://cop-elk.example.org", description="Pierwsza linia\nDruga linia"))
        lgd = await add_organisation(s, ctx, cli, OrgInput(
            name=HOSTILE, short_name="<b>LGD</b>", type="LGD", districts=["olsztyński"],
            services=["grants"], contact_email="lgd@example.org", phone="+48 89 000 00 02"))
        region = await add_organisation(s, ctx, cli, OrgInput(
            name="Federacja Regionu", type="federation", services=["advocacy"],
            contact_email="federacja@example.org", phone="+48 89 000 00 03"))
        await add_organisation(s, ctx, cli, OrgInput(
            name="Czeka na zatwierdzenie", contact_email="pending@example.org"), status=OrgStatus.PENDING)
        s.add(Member(telegram_id=4242, display_name="Jan Kowalski-Prywatny", username="jankowalski",
                     organisation_id=cop.id, status=MemberStatus.APPROVED))
    assert await run_cli(ctx, "org", "publish", "COP Ełk", "--email", "yes") == 0
    assert await run_cli(ctx, "org", "publish", str(region.id), "--email", "yes", "--phone", "yes") == 0
    assert await run_cli(ctx, "org", "publish", str(region.id), "--phone", "no") == 0
    return {"cop": cop.id, "lgd": lgd.id, "region": region.id}


async def test_directory_shows_only_published_contacts(ctx: AppContext,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ids = await seed_directory(ctx)
    assert "the site shows e-mail (and the website, if any)" in capsys.readouterr().out
    async with assembled(ctx) as app, app.client() as client:
        page = await client.get("/organisations")
    assert page.status_code == 200
    shown = cards(page.text, "org")
    assert sorted(shown) == sorted(["COP Ełk", "Federacja Regionu", f"{HOSTILE} (<b>LGD</b>)"])
    assert "Czeka na zatwierdzenie" not in page.text  # not (yet) part of the network
    assert f'<a href="/events?org={ids["cop"]}">Wydarzenia tej organizacji</a>' in shown["COP Ełk"]
    assert f'<a href="/trainings?org={ids["cop"]}">' in shown["COP Ełk"]
    assert "3 organizacje" in page.text

    cop = shown["COP Ełk"]
    assert 'href="mailto:biuro@cop-elk.example.org"' in cop
    assert "87 000 00 01" not in cop and "tel:" not in cop  # its phone was not published
    assert '<a href="https://cop-elk.example.org" rel="noopener">' in cop
    assert "Rodzaj COP (centrum organizacji pozarządowych)" in text_of(cop)
    assert "Usługi doradztwo prawne, " in text_of(cop)
    assert "Obszar działania ełcki" in text_of(cop)
    assert "Pierwsza linia\nDruga linia" in cop

    lgd = shown[f"{HOSTILE} (<b>LGD</b>)"]
    assert "lgd@example.org" not in page.text and "89 000 00 02" not in page.text  # nothing published
    assert "<script>" not in page.text and "<b>LGD</b>" not in page.text
    assert "&lt;script&gt;" in lgd and "&lt;b&gt;LGD&lt;/b&gt;" in lgd

    region = text_of(shown["Federacja Regionu"])
    assert "federacja@example.org" in region and "89 000 00 03" not in region  # phone taken back
    assert "Obszar działania Cały region" in region
    # the people speaking for an organisation never appear
    assert "Kowalski" not in page.text and "jankowalski" not in page.text


async def test_directory_filters(ctx: AppContext) -> None:
    await seed_directory(ctx)
    async with assembled(ctx) as app, app.client() as client:
        elk = await client.get("/organisations?area=elcki")
        # a subregion holds its powiaty: who serves one of them serves part of it
        subregion = await client.get("/organisations?area=podregion-olsztynski")
        service = await client.get("/organisations?service=grants")
        kind = await client.get("/organisations?type=COP&lang=en")
        none = await client.get("/organisations?type=OWES")
    assert sorted(cards(elk.text, "org")) == ["COP Ełk", "Federacja Regionu"]
    assert '<option value="elcki" selected>' in elk.text
    assert sorted(cards(subregion.text, "org")) == sorted(["Federacja Regionu", f"{HOSTILE} (<b>LGD</b>)"])
    assert list(cards(service.text, "org")) == [f"{HOSTILE} (<b>LGD</b>)"]
    assert list(cards(kind.text, "org")) == ["COP Ełk"] and 'lang="en"' in kind.text
    assert '<option value="COP" selected>' in kind.text
    assert none.status_code == 200 and "Żadna organizacja nie pasuje do wybranych filtrów." in none.text


@pytest.mark.parametrize("query", ["type=bank", "service=<script>", "area=nowhere-at-all",
                                   "area=" + "x" * 5000, "type=" + "²" * 300])
async def test_directory_bad_filters_are_400_pages(ctx: AppContext, query: str) -> None:
    async with assembled(ctx) as app, app.client() as client:
        polish = await client.get("/organisations?" + query)
        english = await client.get("/organisations?lang=en&" + query)
    for answer in (polish, english):
        assert answer.status_code == 400 and 'role="alert"' in answer.text
        assert "<script>" not in answer.text and "Traceback" not in answer.text
        assert len(answer.text) < 20_000
    if query.startswith("type=bank"):
        assert "Rodzaj organizacji: „bank” nie jest na liście" in html.unescape(polish.text)
        assert "'bank' is not one of LGD, LGR, COP" in html.unescape(english.text)


async def test_publication_is_the_organisations_choice(ctx: AppContext) -> None:
    ids = await seed_directory(ctx)
    async with ctx.db.transaction() as s:
        other = await add_organisation(s, ctx, Actor.cli(), OrgInput(name="Inna"))
        outsider = Member(telegram_id=77, organisation_id=other.id, status=MemberStatus.APPROVED)
        insider = Member(telegram_id=78, organisation_id=ids["lgd"], status=MemberStatus.APPROVED)
        s.add_all([outsider, insider])
    async with ctx.db.transaction() as s:
        outside = await s.get(Member, outsider.id)
        assert outside is not None
        with pytest.raises(PermissionDenied):
            await set_publication(s, Actor.of(outside), ids["lgd"], phone=True)
    async with ctx.db.transaction() as s:
        inside = await s.get(Member, insider.id)
        assert inside is not None
        await set_publication(s, Actor.of(inside), ids["lgd"], phone=True)
    async with ctx.db.transaction() as s:
        lgd = await s.get(Organisation, ids["lgd"])
        assert lgd is not None and lgd.publish_phone and not lgd.publish_email
        logged = (await s.scalars(select(AuditLog).where(AuditLog.action == "org.publish_contacts"))).all()
        assert len(logged) == 4
    async with assembled(ctx) as app, app.client() as client:
        page = await client.get("/organisations?type=LGD")
    assert 'href="tel:+48890000002"' in page.text and "lgd@example.org" not in page.text


async def test_cli_publishes_at_creation_and_refuses_an_unknown_organisation(
        ctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_cli(ctx, "org", "add", "Nowa", "--email", "nowa@example.org",
                         "--phone", "+48 89 123 45 67", "--publish-phone") == 0
    assert await run_cli(ctx, "org", "add", "Cicha", "--email", "cicha@example.org") == 0
    assert await run_cli(ctx, "org", "publish", "Nie ma takiej", "--email", "yes") == 1
    assert "error:" in capsys.readouterr().err
    async with assembled(ctx) as app, app.client() as client:
        page = await client.get("/organisations")
    assert "+48 89 123 45 67" in page.text and "nowa@example.org" not in page.text
    assert "cicha@example.org" not in page.text
