"""Organisations and members: the network's directory, on both engines."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from infranet.context import AppContext
from infranet.errors import PermissionDenied, ValidationFailed
from infranet.network.members import add_admin, admins, ensure_config_admins, get_member
from infranet.network.orgs import OrgInput, add_organisation, find_organisation, search_organisations
from infranet.region import UnknownDistrict
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, Member, MemberStatus, Organisation


async def test_add_and_search_organisations(ctx: AppContext) -> None:
    async with ctx.db.transaction() as session:
        await add_organisation(session, ctx, Actor.cli(), OrgInput(
            name="Centrum Organizacji Pozarządowych Ostróda", type="COP",
            districts=["ostrodzki"], services=["legal-advice", "training"],
            contact_email="Biuro@COP-Ostroda.example.org"))
        await add_organisation(session, ctx, Actor.cli(), OrgInput(
            name="OWES Ełk", type="OWES", districts=["2805"], services=["social-economy"]))
    async with ctx.db.transaction() as session:
        org = await find_organisation(session, "centrum organizacji pozarzadowych ostroda")
        assert org.contact_email == "Biuro@cop-ostroda.example.org"  # domain normalised
        assert [d.code for d in org.districts] == ["2815"]
        assert [o.name for o in await search_organisations(session, ctx, "ostródzki")] == [org.name]
        assert [o.name for o in await search_organisations(session, ctx, "social")] == ["OWES Ełk"]
        assert len(await search_organisations(session, ctx, "")) == 2
        actions = (await session.scalars(select(AuditLog.action))).all()
        assert actions.count("org.add") == 2


@pytest.mark.parametrize("data,field", [
    (OrgInput(name=""), "name"),
    (OrgInput(name="x" * 201), "name"),
    (OrgInput(name="A", type="club"), "type"),
    (OrgInput(name="A", contact_email="not-an-address"), "contact_email"),
    (OrgInput(name="A", services=["massage"]), "services"),
    (OrgInput(name="A", website="www.example.org"), "website"),
])
async def test_bad_organisation_input_is_refused_and_nothing_is_stored(
    ctx: AppContext, data: OrgInput, field: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        async with ctx.db.transaction() as session:
            await add_organisation(session, ctx, Actor.cli(), data)
    assert err.value.params["field"] == field
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count(Organisation.id))) == 0


async def test_unknown_district_and_duplicate_name(ctx: AppContext) -> None:
    with pytest.raises(UnknownDistrict, match="ostródzki"):
        async with ctx.db.transaction() as session:
            await add_organisation(session, ctx, Actor.cli(), OrgInput(name="A", districts=["ostrodski"]))
    async with ctx.db.transaction() as session:
        await add_organisation(session, ctx, Actor.cli(), OrgInput(name="LGD Warmia"))
    with pytest.raises(ValidationFailed, match="already exists"):
        async with ctx.db.transaction() as session:
            await add_organisation(session, ctx, Actor.cli(), OrgInput(name="lgd warmia"))


async def test_admins_from_config_and_cli(ctx: AppContext) -> None:
    async with ctx.db.transaction() as session:
        await ensure_config_admins(session, [111, 222])
        await ensure_config_admins(session, [111])  # idempotent
        await add_admin(session, Actor.cli(), 333)
    async with ctx.db.transaction() as session:
        assert sorted(m.telegram_id for m in await admins(session)) == [111, 222, 333]
        assert await session.scalar(select(func.count(Member.id))) == 3


async def test_actor_permissions(ctx: AppContext) -> None:
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, Actor.cli(), OrgInput(name="COP"))
        other = await add_organisation(session, ctx, Actor.cli(), OrgInput(name="OWES"))
        session.add(Member(telegram_id=5, organisation_id=org.id, status=MemberStatus.APPROVED))
        session.add(Member(telegram_id=6, organisation_id=org.id, status=MemberStatus.PENDING))
    async with ctx.db.transaction() as session:
        approved, pending = await get_member(session, 5), await get_member(session, 6)
    Actor.of(approved).require_org(org.id)
    with pytest.raises(PermissionDenied):
        Actor.of(approved).require_org(other.id)
    with pytest.raises(PermissionDenied):
        Actor.of(pending).require_org(org.id)
    with pytest.raises(PermissionDenied):
        Actor.of(approved).require_admin()
    Actor.cli().require_org(other.id)
