"""One rule for e-mail addresses and one for phone numbers, wherever they are typed: an
organisation's contact, how to apply for a training, a newsletter subscription."""

from __future__ import annotations

import pytest

from infranet.calendar.training_input import parse_apply
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.network.orgs import OrgInput, add_organisation
from infranet.newsletter.subscribers import normalise_address
from infranet.storage.actors import Actor

ENGLISH_FROM_THE_VALIDATOR = ("The email address", "must have", "is not valid", "@-sign")


@pytest.mark.parametrize("typed", ["jan@@example.org", "jan@example", "jan@exa mple.org", "żółw@example.org"])
def test_a_bad_address_is_refused_in_polish_alone_the_same_way_everywhere(typed: str) -> None:
    refusals = []
    for check in (normalise_address, lambda v: parse_apply(v)):
        with pytest.raises(ValidationFailed) as info:
            check(typed)
        refusals.append(info.value)
    assert {e.key for e in refusals} == {"error.email"}
    for error in refusals:
        polish = error.localized("pl")
        assert "nie wygląda na adres e-mail" in polish
        assert not any(english in polish for english in ENGLISH_FROM_THE_VALIDATOR), polish


async def test_an_organisation_contact_is_kept_as_the_mailer_can_send_to_it(ctx: AppContext) -> None:
    # A non-ASCII local part needs SMTPUTF8, which the newsletter's mailer does not use:
    # notices to this organisation could never be sent, so it is refused when typed.
    with pytest.raises(ValidationFailed) as info:
        async with ctx.db.transaction() as session:
            await add_organisation(session, ctx, Actor.cli(),
                                   OrgInput(name="Fundacja Żółw", contact_email="żółw@example.org"))
    assert info.value.params["field"] == "contact_email"
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, Actor.cli(), OrgInput(
            name="Fundacja Łoś", contact_email="  Biuro@Łoś.example.org ", phone=" +48 89 123-45-67 "))
    assert org.contact_email is not None and org.contact_email.isascii()
    assert org.contact_email.startswith("Biuro@xn--") and org.contact_email.endswith(".example.org")
    assert org.phone == "+48 89 123-45-67"


@pytest.mark.parametrize("typed", ["12-34-56", "123", "+48 89 123 45 67 89 01 23 45", "89 123 45 6x"])
async def test_a_phone_number_follows_one_rule_for_organisations_and_trainings(
    ctx: AppContext, typed: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        async with ctx.db.transaction() as session:
            await add_organisation(session, ctx, Actor.cli(), OrgInput(name="Koło", phone=typed))
    assert info.value.key == "error.phone"
    with pytest.raises(ValidationFailed):
        parse_apply(typed)
    for fine in ("+48 89 123 45 67", "(89) 123 45 67", "89/123 45 67", "601 234 567"):
        assert parse_apply(fine).kind == "phone"
