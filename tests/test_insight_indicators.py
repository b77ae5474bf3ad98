"""The network's indicators per powiat, checked against a small network counted by hand,
on both engines; and the white spots they show."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import update

from infranet.calendar.dateparse_when import parse_sessions
from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event, cancel_event
from infranet.calendar.training_input import TrainingInput
from infranet.calendar.trainings import add_training
from infranet.context import AppContext
from infranet.insight.indicators import Insight, Period, gather
from infranet.insight.white_spots import indicator_spots, service_spots
from infranet.network.orgs import OrgInput, add_organisation
from infranet.network.referrals import ReferralInput, create_referral
from infranet.network.support import SupportInput, add_support
from infranet.storage.actors import Actor
from infranet.storage.models import Member, MemberStatus, Organisation, OrgStatus, Subscriber

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _at(day: date, hour: int, ctx: AppContext) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ctx.tz)


async def _network(ctx: AppContext) -> None:
    """Alfa serves powiat olsztyński (legal advice, training), Beta the subregion of Ełk
    (training), Gamma the whole region (information); Delta is not approved yet."""
    ctx.clock = lambda: NOW
    cli = Actor.cli()
    async with ctx.db.transaction() as session:
        alfa = await add_organisation(session, ctx, cli, OrgInput(
            name="Fundacja Alfa", districts=["olsztyński"], services=["legal-advice", "training"]))
        beta = await add_organisation(session, ctx, cli, OrgInput(
            name="Stowarzyszenie Beta", districts=["podregion ełcki"], services=["training"]))
        gamma = await add_organisation(session, ctx, cli, OrgInput(
            name="Centrum Gamma", districts=["region"], services=["information"]))
        delta = await add_organisation(session, ctx, cli, OrgInput(
            name="Delta", districts=["ełcki"], services=["legal-advice"]))
        await session.execute(update(Organisation).where(Organisation.id == delta.id)
                              .values(status=OrgStatus.PENDING))
        alice = Member(telegram_id=101, display_name="Alice", organisation_id=alfa.id,
                       status=MemberStatus.APPROVED, language="pl")
        session.add(alice)
        await session.flush()
        ids = {"alfa": alfa.id, "beta": beta.id, "gamma": gamma.id}

    async with ctx.db.transaction() as session:
        def event(title: str, day: date, district: str, org: str, category: str,
                  audiences: list[str], rrule: str | None = None) -> EventInput:
            return EventInput(title, _at(day, 10, ctx), _at(day, 12, ctx), district=district,
                              category=category, audiences=audiences,
                              organisation_id=ids[org], rrule=rrule)

        for data in (
            event("Porady prawne", date(2026, 3, 10), "olsztyński", "alfa", "consultation", ["ngo"]),
            event("Spotkanie sieci", date(2026, 5, 12), "olsztyński", "alfa", "meeting",
                  ["ngo", "youth"]),
            event("Targi NGO", date(2026, 6, 6), "ełcki", "beta", "fair", ["residents"]),
            event("Forum podregionu", date(2026, 9, 9), "podregion ełcki", "beta", "conference",
                  ["ngo"]),
            event("Ubiegły rok", date(2025, 10, 1), "olsztyński", "alfa", "meeting", ["ngo"]),
            # a weekly series from 20 December into 2027: held in 2026, counted once
            event("Klub wolontariusza", date(2026, 12, 20), "ełcki", "beta", "meeting",
                  ["youth"], rrule="FREQ=WEEKLY;COUNT=6"),
        ):
            await add_event(session, ctx, cli, data)
        cancelled = await add_event(session, ctx, cli, event(
            "Odwołane", date(2026, 4, 4), "olsztyński", "alfa", "meeting", ["ngo"]))
        await cancel_event(session, ctx, cli, cancelled.id)
        member = Actor.of(await session.get_one(Member, alice.id))
        # three sessions in December, in powiat olsztyński: events of category training
        await add_training(session, ctx, member, TrainingInput(
            title="Księgowość dla NGO", deadline=date(2026, 12, 1), target_group="skarbnicy",
            how_to_apply="https://alfa.example.org/zapisy", district="olsztyński", places=20,
            cost=None, description=None,
            sessions=parse_sessions("5.12, 12.12, 19.12 10:00-14:00", NOW.date(), ctx.tz)))
        await create_referral(session, ctx, member, ReferralInput(
            to_org_id=ids["beta"], client_kind="ngo", client_name="Klub Sportowy Orzeł",
            client_contact="orzel@example.org", need="księgowość", consent=True))
        for client, day in ((dict(krs="0000123456", client_name="Klub Orzeł"), date(2026, 2, 3)),
                            (dict(krs="0000123456", client_name="Klub Orzeł"), date(2026, 8, 3)),
                            (dict(client_name="Koło Gospodyń w Regielnicy"), date(2026, 4, 1)),
                            (dict(client_name="Grupa z zeszłego roku"), date(2025, 4, 1))):
            await add_support(session, ctx, cli, SupportInput(
                **client, service="accounting", district="ełcki", given_on=day,  # type: ignore[arg-type]
                organisation_id=ids["alfa"], source="cli"))
        for areas, status in (([], "confirmed"), (["elcki"], "confirmed"),
                              (["podregion-elcki"], "confirmed"), (["olsztynski", "elcki"], "confirmed"),
                              (["elcki"], "pending")):
            session.add(Subscriber(email=f"r{len(areas)}{status}{areas}@example.org".replace(" ", ""),
                                   districts=areas, status=status, language="pl"))


@pytest.fixture
async def insight(ctx: AppContext) -> Insight:
    await _network(ctx)
    async with ctx.db.read() as session:
        return await gather(session, ctx, Period.year(2026))


async def test_organisations_and_services_count_where_they_serve(insight: Insight) -> None:
    olsztynski, elcki, goldapski, bartoszycki = (insight.figures(s) for s in (
        "olsztynski", "elcki", "goldapski", "bartoszycki"))
    assert olsztynski.values["organisations"] == 2  # Alfa, Gamma (whole region)
    assert elcki.values["organisations"] == 2  # Beta (subregion), Gamma; Delta not approved
    assert goldapski.values["organisations"] == 2 and bartoszycki.values["organisations"] == 1
    assert olsztynski.services == {"legal-advice": 1, "training": 1, "information": 1}
    assert elcki.services == {"training": 1, "information": 1}
    assert insight.totals["organisations"] == 3


async def test_events_and_trainings_count_in_their_powiat_once_per_period(insight: Insight) -> None:
    olsztynski, elcki = insight.figures("olsztynski"), insight.figures("elcki")
    # two events and the training's three sessions; not last year's, not the cancelled one
    assert olsztynski.values["events"] == 5
    assert olsztynski.categories == {"consultation": 1, "meeting": 1, "training": 3}
    assert elcki.values["events"] == 2  # the fair and the series (once)
    assert elcki.audiences == {"residents": 1, "youth": 1}
    assert insight.wider["events"] == 1  # the subregion's forum
    assert insight.totals["events"] == 8
    assert olsztynski.values["trainings"] == 1 and olsztynski.values["training_places"] == 20
    assert insight.figures("bartoszycki").values["events"] == 0
    assert sum(insight.events_by_organisation.values()) == 8


async def test_referrals_and_subscribers(insight: Insight) -> None:
    olsztynski, elcki, goldapski = (insight.figures(s) for s in ("olsztynski", "elcki", "goldapski"))
    assert olsztynski.values["referrals_made"] == 1 and olsztynski.values["referrals_received"] == 0
    # Beta serves the six powiaty of the subregion of Ełk: received there, in each
    assert elcki.values["referrals_received"] == 1 and goldapski.values["referrals_received"] == 1
    assert insight.totals["referrals_made"] == 1
    assert elcki.values["subscribers"] == 3  # chose ełcki, its subregion, or ełcki and another
    assert olsztynski.values["subscribers"] == 1 and goldapski.values["subscribers"] == 1
    assert insight.wider["subscribers"] == 1  # the whole region
    assert insight.totals["subscribers"] == 4  # the pending one is not a reader yet


async def test_organisations_supported_count_each_client_once(insight: Insight) -> None:
    assert insight.figures("elcki").values["supported"] == 2  # the club (twice) and the KGW
    assert insight.figures("olsztynski").values["supported"] == 0
    assert insight.totals["supported"] == 2


async def test_figures_per_10000_residents(insight: Insight) -> None:
    elcki = insight.figures("elcki")
    assert elcki.population == 84_500
    assert elcki.per_residents("events") == pytest.approx(2 * 10_000 / 84_500)


async def test_white_spots_name_the_nearest_organisations(insight: Insight, ctx: AppContext) -> None:
    spots = service_spots(insight, ctx.region, ("legal-advice",), share=0.5)
    assert {s.powiat.slug for s in spots} == {p.slug for p in ctx.region.powiaty} - {"olsztynski"}
    assert all(s.kind == "missing" for s in spots)
    elk = next(s for s in spots if s.powiat.slug == "elcki")
    assert [(n.organisation, n.powiat.slug) for n in elk.nearest] == [("Fundacja Alfa", "olsztynski")]
    events = indicator_spots(insight, ctx.region, "events", share=0.5)
    assert {s.powiat.slug for s in events if s.kind == "missing"} == \
        {p.slug for p in ctx.region.powiaty} - {"olsztynski", "elcki"}
    # the present organisations are the nearest: Beta and Gamma serve ełcki itself
    goldap = next(s for s in events if s.powiat.slug == "goldapski")
    assert {n.organisation for n in goldap.nearest[:2]} == {"Stowarzyszenie Beta", "Centrum Gamma"}
