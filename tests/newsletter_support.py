"""Data and contexts shared by the newsletter tests (real storage, real calendar API)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event
from infranet.context import AppContext
from infranet.network.orgs import OrgInput, add_organisation
from infranet.newsletter.issues import add_note, build_issue
from infranet.newsletter.subscribers import subscribe
from infranet.storage.actors import Actor
from infranet.storage.districts import district_ids
from infranet.storage.models import Delivery, Training
from tests.conftest import make_context

ROOT = Path(__file__).resolve().parents[1]


async def newsletter_context(db_url: str, tmp_path: Path, smtp: dict[str, Any] | None = None,
                             **sections: dict[str, Any]) -> AppContext:
    newsletter = {"title": "Newsletter sieci", **sections.pop("newsletter", {})}
    http = {"public_base_url": "https://newsletter.example.org", **sections.pop("http", {})}
    return await make_context(db_url, tmp_path / "data", smtp=smtp or {}, newsletter=newsletter,
                              http=http, **sections)


def local(ctx: AppContext, days: int, hour: int) -> datetime:
    day = (ctx.now().astimezone(ctx.tz) + timedelta(days=days)).date()
    return datetime.combine(day, time(hour), tzinfo=ctx.tz)


async def seed_content(ctx: AppContext) -> dict[str, Any]:
    """An organisation approved now, three events (Olsztyn, Ełk, region-wide), a training
    in Elbląg: a typical issue whose parts differ per district."""
    actor = Actor.cli()
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, actor, OrgInput(
            name="Fundacja Łąki i Źródła", type="COP", districts=["m. Olsztyn"],
            contact_email="fundacja@example.org", website="https://laki.example.org"))
        olsztyn = await add_event(session, ctx, actor, EventInput(
            title="Warsztaty grantowe w Olsztynie", start=local(ctx, 2, 10), end=local(ctx, 2, 14),
            district="m. Olsztyn", category="training", organisation_id=org.id,
            location="ul. Kopernika 1", url="https://laki.example.org/warsztaty"))
        elk = await add_event(session, ctx, actor, EventInput(
            title="Spotkanie sieci w Ełku", start=local(ctx, 3, 17), end=local(ctx, 3, 19),
            district="ełcki", category="meeting"))
        region = await add_event(session, ctx, actor, EventInput(
            title="Konferencja regionalna", start=local(ctx, 5, 9), end=local(ctx, 5, 16),
            district="region", category="conference"))
        ids = await district_ids(session)
        training = Training(title="Szkolenie z księgowości", organisation_id=org.id,
                            district_id=ids["elblag"], deadline=ctx.now().date() + timedelta(days=6),
                            target_group="księgowi NGO", places=12, apply_url="https://example.org/zapisy")
        session.add(training)
        await session.flush()
    return {"org": org.id, "events": {"olsztyn": olsztyn.id, "elk": elk.id, "region": region.id},
            "training": training.id}


async def add_subscribers(ctx: AppContext, people: dict[str, dict[str, Any]]) -> None:
    """Confirmed subscribers: address -> subscribe() keyword arguments."""
    async with ctx.db.transaction() as session:
        for email, prefs in people.items():
            await subscribe(session, ctx, email, source="import", consented=True, **prefs)


def today(ctx: AppContext) -> date:
    return ctx.now().astimezone(ctx.tz).date()


# A sender in a process of its own, to be killed in the middle of sending (crash tests);
# it prints its report as JSON.
SEND_CHILD = """
import asyncio, json, sys
from infranet.context import AppContext
from infranet.newsletter.issues import send_pending
from tests.conftest import TEST_SECRET, make_settings

args = json.loads(sys.argv[1])
settings = make_settings(args["db_url"], args["data_dir"], **args["sections"])

async def main():
    ctx = AppContext.create(settings, secret_key=TEST_SECRET)
    try:
        report = await send_pending(ctx)
        print(json.dumps({"sent": report.sent, "unknown": report.unknown}))
    finally:
        await ctx.db.dispose()

asyncio.run(main())
"""


def spawn_sender(db_url: str, data_dir: Path, sections: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start `send_pending` in a process of its own (SEND_CHILD), to be killed by a test."""
    payload = json.dumps({"db_url": db_url, "data_dir": str(data_dir), "sections": sections})
    return subprocess.Popen([sys.executable, "-c", SEND_CHILD, payload], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def issue_with(ctx: AppContext, emails: list[str], key: str = "k") -> int:
    """Readers subscribed and an issue built for them (a note is its content); its id."""
    await add_subscribers(ctx, {e: {} for e in emails})
    async with ctx.db.transaction() as session:
        await add_note(session, ctx, Actor.cli(), f"Notka {key}")
        built = await build_issue(session, ctx, Actor.cli(), period_key=key)
    assert built.recipients == len(emails) and built.issue is not None
    return built.issue.id


async def deliveries(ctx: AppContext, issue_id: int | None = None) -> dict[str, Delivery]:
    """The delivery rows by address (of one issue, or of all)."""
    async with ctx.db.transaction() as session:
        query = select(Delivery)
        if issue_id is not None:
            query = query.where(Delivery.issue_id == issue_id)
        return {d.email: d for d in (await session.scalars(query)).all()}
