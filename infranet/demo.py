"""`infranet demo seed`: a small, realistic data set so a new user sees something at once.

Idempotent: running it twice adds nothing the second time.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.network.orgs import OrgInput, add_organisation, list_organisations
from infranet.network.public_contacts import set_publication
from infranet.storage.actors import Actor

DEMO_ORGS = [
    OrgInput(name="Centrum Organizacji Pozarządowych w Olsztynie (demo)", short_name="COP Olsztyn",
             type="COP", districts=["m. Olsztyn", "olsztyński"],
             services=["information", "legal-advice", "training", "technical"],
             contact_email="cop@example.org", phone="+48 89 000 00 01",
             website="https://cop.example.org"),
    OrgInput(name="Ośrodek Wsparcia Ekonomii Społecznej Elbląg (demo)", short_name="OWES Elbląg",
             type="OWES", districts=["m. Elbląg", "elbląski", "braniewski"],
             services=["social-economy", "financial-advice", "training", "grants"],
             contact_email="owes@example.org", phone="+48 55 000 00 02"),
    OrgInput(name="Lokalna Grupa Działania Mazurskie Jeziora (demo)", short_name="LGD Mazury",
             type="LGD", districts=["giżycki", "węgorzewski", "piski"],
             services=["animation", "grants", "eu-funds"], contact_email="lgd@example.org"),
    OrgInput(name="Regionalne Centrum Wolontariatu (demo)", short_name="Wolontariat WiM",
             type="volunteer-centre", districts=[], services=["volunteering", "training"],
             contact_email="wolontariat@example.org"),
]


async def seed(ctx: AppContext) -> dict[str, int]:
    actor = Actor.cli()
    added = {"organisations": 0}
    async with ctx.db.transaction() as session:
        existing = {o.name for o in await list_organisations(session, include_pending=True)}
        for data in DEMO_ORGS:
            if data.name not in existing:
                org = await add_organisation(session, ctx, actor, data)
                # Fictional contacts, published so that a demo site and feed show them
                # (a real organisation chooses with `infranet org publish`).
                await set_publication(session, actor, org.id, email=True, phone=True, ctx=ctx)
                added["organisations"] += 1
        added["events"] = await seed_events(session, ctx, actor)
    return added


async def seed_events(session: AsyncSession, ctx: AppContext, actor: Actor) -> int:
    """About ten events over the coming weeks, by UID so a second run adds nothing:
    a conflicting pair, a multi-day all-day fair and a monthly network meeting."""
    from infranet.calendar.event_input import EventInput
    from infranet.calendar.events import add_event
    from infranet.storage.models import Event

    orgs = {o.short_name: o.id for o in await list_organisations(session, include_pending=True)}
    tz = ctx.tz
    today = ctx.now().astimezone(tz).date()
    monday = today + timedelta(days=7 - today.weekday())  # next week's Monday

    def at(week: int, weekday: int, hour: int, minute: int = 0) -> datetime:
        day = monday + timedelta(weeks=week, days=weekday)
        return datetime.combine(day, time(hour, minute), tz)

    def day(week: int, weekday: int) -> date:
        return monday + timedelta(weeks=week, days=weekday)

    specs = [
        ("demo-rodo", EventInput(
            "Szkolenie: RODO w organizacji pozarządowej", at(0, 2, 10), at(0, 2, 14),
            district="m. Olsztyn", category="training", audiences=["ngo"],
            organisation_id=orgs.get("COP Olsztyn"), location="COP, ul. Partyzantów 1, Olsztyn",
            registration_url="https://cop.example.org/rodo")),
        # Same day, same powiat, same audience: the demo's high-severity conflict.
        ("demo-granty", EventInput(
            "Warsztaty: jak napisać wniosek grantowy", at(0, 2, 12), at(0, 2, 16),
            district="m. Olsztyn", category="training", audiences=["ngo", "residents"],
            organisation_id=orgs.get("Wolontariat WiM"), location="Biblioteka Miejska, Olsztyn")),
        ("demo-ekonomia", EventInput(
            "Konferencja: ekonomia społeczna w regionie", at(1, 3, 9, 30), at(1, 3, 15),
            district="m. Elbląg", category="conference", audiences=["ngo", "local-government"],
            organisation_id=orgs.get("OWES Elbląg"), url="https://owes.example.org/konferencja")),
        ("demo-targi", EventInput(
            "Mazurskie Targi Organizacji Pozarządowych", day(2, 4), day(2, 6), all_day=True,
            district="giżycki", category="fair", audiences=["ngo", "residents"],
            organisation_id=orgs.get("LGD Mazury"), location="Giżycko, Twierdza Boyen")),
        ("demo-siec", EventInput(
            "Spotkanie sieci organizacji infrastrukturalnych", at(0, 1, 11), at(0, 1, 13),
            district="region", category="meeting", audiences=["ngo"],
            organisation_id=orgs.get("COP Olsztyn"), location="online",
            rrule="FREQ=MONTHLY;COUNT=6")),
        ("demo-konsultacje", EventInput(
            "Konsultacje programu współpracy z NGO", at(1, 1, 16), at(1, 1, 18),
            district="ełcki", category="consultation", audiences=["ngo", "local-government"],
            organisation_id=orgs.get("LGD Mazury"), location="Starostwo Powiatowe w Ełku")),
        ("demo-wolontariat", EventInput(
            "Szkolenie dla koordynatorów wolontariatu", at(3, 5, 10), at(3, 5, 15),
            district="podregion olsztyński", category="training", audiences=["youth", "ngo"],
            organisation_id=orgs.get("Wolontariat WiM"))),
        ("demo-seniorzy", EventInput(
            "Dzień aktywnego seniora", at(2, 2, 10), at(2, 2, 13),
            district="braniewski", category="other", audiences=["seniors", "residents"],
            organisation_id=orgs.get("OWES Elbląg"), location="Dom Kultury, Braniewo")),
        ("demo-ksiegowosc", EventInput(
            "Doradztwo księgowe dla NGO (dyżur)", at(1, 0, 9), at(1, 0, 12),
            district="olsztyński", category="consultation", audiences=["ngo"],
            organisation_id=orgs.get("COP Olsztyn"), rrule="FREQ=WEEKLY;COUNT=4")),
        ("demo-mlodziez", EventInput(
            "Forum młodzieżowe powiatu piskiego", at(3, 3, 10), at(3, 3, 14),
            district="piski", category="conference", audiences=["youth"],
            organisation_id=orgs.get("LGD Mazury"))),
    ]
    existing = set((await session.scalars(select(Event.uid).where(
        Event.uid.in_([f"{key}@infranet.demo" for key, _ in specs])))).all())
    added = 0
    for key, data in specs:
        uid = f"{key}@infranet.demo"
        if uid in existing:
            continue
        data.uid = uid
        await add_event(session, ctx, actor, data, source="demo")
        added += 1
    return added
