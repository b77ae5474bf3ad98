"""Change signals (infranet/changes.py): a cache may keep what it read only while no change
is on its way, and forgets at the change and again at the end of its transaction."""

from __future__ import annotations

import pytest

from infranet.context import AppContext
from infranet.network.orgs import OrgInput, add_organisation
from infranet.storage.actors import Actor


async def test_a_change_is_in_flight_until_its_transaction_commits(ctx: AppContext) -> None:
    people = ctx.changes.people
    before = people.token()
    async with ctx.db.transaction() as session:
        await add_organisation(session, ctx, Actor.cli(), OrgInput(name="COP Olsztyn"))
        assert people.token() is None  # a reader now keeps nothing it reads
        async with session.begin_nested():  # a savepoint's end is not the transaction's
            people.changing(session)
        assert people.in_flight == 1
    assert people.in_flight == 0
    assert not people.is_current(before)  # what was read before the change is void
    after = people.token()
    assert people.is_current(after)
    assert ctx.changes.events.is_current(ctx.changes.events.token())  # only people changed


async def test_a_change_that_rolls_back_settles_too(ctx: AppContext) -> None:
    people = ctx.changes.people
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as session:
            await add_organisation(session, ctx, Actor.cli(), OrgInput(name="COP Ełk"))
            raise RuntimeError("refused half-way")
    assert people.in_flight == 0 and people.token() is not None


async def test_each_application_has_its_own_signals(ctx: AppContext) -> None:
    other = AppContext.create(ctx.settings, secret_key=b"k" * 32)
    try:
        async with ctx.db.transaction() as session:
            await add_organisation(session, ctx, Actor.cli(), OrgInput(name="LGD Mazury"))
        assert other.changes.people.generation == 0
    finally:
        await other.db.dispose()
