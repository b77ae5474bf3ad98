"""`infranet demo seed`: a small, realistic data set so a new user sees something at once.

Idempotent: running it twice adds nothing the second time.
"""

from __future__ import annotations

from infranet.context import AppContext
from infranet.storage.actors import Actor
from infranet.storage.orgs import OrgInput, add_organisation, list_organisations

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
                await add_organisation(session, ctx, actor, data)
                added["organisations"] += 1
    return added
