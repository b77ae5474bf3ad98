"""An organisation's e-mail and phone reach the public only when it chose to publish them
(`infranet org publish`, migration 0020): the JSON API, the ICS feeds, and the bot's /orgs
and /events answers to anyone who is not an approved member (or in a group). Approved
members and admins still see every contact there in private (they cooperate). The
newsletter shows no e-mail or phone of an organisation at all. Both engines."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import icalendar

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event
from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.network.orgs import OrgInput, add_organisation
from infranet.network.public_contacts import set_publication
from infranet.storage.actors import Actor
from infranet.storage.models import Member, MemberStatus, Organisation
from tests.bot_fixtures import ADMIN_ID, BotHarness
from tests.http_app import assembled

EMAIL = "biuro@cop-prywatny.example.org"
PHONE = "+48 89 111 22 33"
PHONE_DIGITS = "111 22 33"


async def run_cli(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


async def seed(ctx: AppContext) -> tuple[int, int]:
    """An organisation that published nothing, with one published event next week."""
    start = (ctx.now().astimezone(ctx.tz) + timedelta(days=7)).replace(
        hour=10, minute=0, second=0, microsecond=0)
    async with ctx.db.transaction() as s:
        org = await add_organisation(s, ctx, Actor.cli(), OrgInput(
            name="COP Prywatny", type="COP", contact_email=EMAIL, phone=PHONE,
            website="https://cop-prywatny.example.org"))
        event = await add_event(s, ctx, Actor.cli(), EventInput(
            "Szkolenie z RODO", start, start + timedelta(hours=3), district="olsztyński",
            category="training", audiences=["ngo"], organisation_id=org.id))
        return org.id, event.id


def organizers(feed: bytes) -> list[str]:
    return [str(e["ORGANIZER"]) for e in icalendar.Calendar.from_ical(feed).walk("VEVENT")]


async def test_api_and_feed_show_only_published_contacts(ctx: AppContext) -> None:
    # Late evening in UTC, already tomorrow in the region: the event's day as the region has
    # it is the one a conflict check asks about (a CI run at 23:xx UTC found the gap).
    evening = datetime.combine(ctx.now().date(), time(23, 30), tzinfo=UTC)
    ctx.clock = lambda: evening
    org_id, event_id = await seed(ctx)
    async with assembled(ctx) as app, app.client() as client:
        events = await client.get("/api/events")
        assert events.status_code == 200
        (item,) = [e for e in events.json()["events"] if e["id"] == event_id]
        assert item["organisation"]["name"] == "COP Prywatny"
        assert item["organisation"]["email"] is None and item["organisation"]["phone"] is None
        assert EMAIL not in events.text and PHONE_DIGITS not in events.text

        day = (ctx.now() + timedelta(days=7)).astimezone(ctx.tz).date().isoformat()
        report = await client.get(f"/api/conflicts?start={day}T10:00&end={day}T11:00"
                                  "&area=olsztynski&audience=ngo&category=training")
        assert report.status_code == 200
        (conflict,) = report.json()["conflicts"]
        assert conflict["organisation"] == "COP Prywatny" and conflict["email"] is None
        assert EMAIL not in report.text and PHONE_DIGITS not in report.text

        feed = await client.get("/calendar.ics")
        assert feed.status_code == 200
        assert EMAIL not in feed.text and PHONE_DIGITS not in feed.text
        assert not any(o.startswith("mailto:") for o in organizers(feed.content))

        # Publishing the e-mail (as the CLI does) changes the feed at once: the cache
        # rendered the VEVENT without it and must not serve that copy again.
        assert await run_cli(ctx, "org", "publish", "COP Prywatny", "--email", "yes") == 0
        feed = await client.get("/calendar.ics")
        assert f"mailto:{EMAIL}" in organizers(feed.content)
        assert PHONE_DIGITS not in feed.text  # the phone stays private
        item = next(e for e in (await client.get("/api/events")).json()["events"] if e["id"] == event_id)
        assert item["organisation"]["email"] == EMAIL and item["organisation"]["phone"] is None

        # And hiding it again (the network's function) takes it out again.
        async with ctx.db.transaction() as s:
            await set_publication(s, Actor.cli(), org_id, email=False, phone=True, ctx=ctx)
        feed = await client.get("/calendar.ics")
        assert EMAIL not in feed.text and PHONE_DIGITS in feed.text.replace("\r\n ", "")


async def test_publication_bumps_the_organisation_version(ctx: AppContext) -> None:
    """The feeds' version includes max(organisations.updated_at): a publication change must
    move it, or another instance would keep serving the old contacts."""
    org_id, _ = await seed(ctx)
    async with ctx.db.transaction() as s:
        org = await s.get(Organisation, org_id)
        assert org is not None
        before = org.updated_at
    async with ctx.db.transaction() as s:
        await set_publication(s, Actor.cli(), org_id, email=True, ctx=ctx)
    async with ctx.db.transaction() as s:
        org = await s.get(Organisation, org_id)
        assert org is not None and org.publish_email and org.updated_at > before


async def test_bot_directory_shows_all_contacts_to_members_only(bot: BotHarness) -> None:
    await seed(bot.ctx)
    await bot.member(7301, "Fundacja Inna")  # an approved member of another organisation
    async with bot.ctx.db.transaction() as s:
        s.add(Member(telegram_id=7302, display_name="Czeka", status=MemberStatus.PENDING))
    api = bot.api

    stranger = await api.ask(7300, "/orgs prywatny")
    assert "COP Prywatny" in stranger.text and "cop-prywatny.example.org" in stranger.text  # website
    assert EMAIL not in stranger.text and PHONE_DIGITS not in stranger.text
    pending = await api.ask(7302, "/orgs prywatny")
    assert "COP Prywatny" in pending.text and EMAIL not in pending.text
    assert PHONE_DIGITS not in pending.text

    member = await api.ask(7301, "/orgs prywatny")
    assert EMAIL in member.text and PHONE_DIGITS in member.text
    admin = await api.ask(ADMIN_ID, "/orgs prywatny")
    assert EMAIL in admin.text and PHONE_DIGITS in admin.text
    # A group's listing is read by whoever is in the group: published contacts only.
    group = await api.ask(7301, "/orgs prywatny", chat_id=-100731, chat_type="group")
    assert "COP Prywatny" in group.text and EMAIL not in group.text

    # The event listings anyone may ask for name the organiser with the same contacts.
    listing = await api.ask(7300, "/events month")
    assert "Szkolenie z RODO" in listing.text and EMAIL not in listing.text
    assert PHONE_DIGITS not in listing.text
    listing = await api.ask(7301, "/events month")
    assert "Szkolenie z RODO" in listing.text and EMAIL in listing.text

    assert await run_cli(bot.ctx, "org", "publish", "COP Prywatny", "--email", "yes") == 0
    stranger = await api.ask(7300, "/orgs prywatny")
    assert EMAIL in stranger.text and PHONE_DIGITS not in stranger.text
    assert api.errors == []


async def test_demo_organisations_publish_their_contacts(ctx: AppContext) -> None:
    from infranet.demo import seed as demo_seed

    await demo_seed(ctx)
    async with assembled(ctx) as app, app.client() as client:
        feed = await client.get("/calendar.ics")
        assert "mailto:cop@example.org" in organizers(feed.content)
        assert "89 000 00 01" in feed.text.replace("\r\n ", "")
        page = await client.get("/organisations")
        assert page.status_code == 200 and "cop@example.org" in page.text
