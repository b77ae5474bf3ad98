"""The base of experts and trainers (network.experts) and `infranet experts ...`, both engines:
per-field messages in the reader's language, consent required and recorded with its text's
version, members only (pending, blocked and strangers refused), Polish-aware topic search and
districts matched through their subregion and region, forget deleting everything with an
audit line free of personal data, edits by the adder or an admin, counts only for insight."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.errors import NotFound, PermissionDenied, ValidationFailed
from infranet.network.expert_fields import parse_contact
from infranet.network.expert_search import search_experts
from infranet.network.experts import (
    CONSENT_MESSAGE,
    CONSENT_VERSION,
    ExpertChanges,
    ExpertInput,
    add_expert,
    expert_counts,
    forget_expert,
    update_expert,
)
from infranet.network.members import ensure_secretariat
from infranet.network.orgs import OrgInput, add_organisation
from infranet.region import UnknownDistrict
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, Expert, Member, MemberStatus, Role

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW


async def _people(ctx: AppContext) -> dict[str, Member]:
    """Two approved members of two organisations, an admin, a pending and a blocked member."""
    async with ctx.db.transaction() as session:
        await ensure_secretariat(session, "Sekretariat sieci")
        cop = await add_organisation(session, ctx, Actor.cli(), OrgInput(name="COP Olsztyn"))
        owes = await add_organisation(session, ctx, Actor.cli(), OrgInput(name="OWES Elbląg"))
        people = {
            "ala": Member(telegram_id=11, display_name="Ala", organisation_id=cop.id,
                          status=MemberStatus.APPROVED),
            "bob": Member(telegram_id=12, display_name="Bob", organisation_id=owes.id,
                          status=MemberStatus.APPROVED),
            "admin": Member(telegram_id=13, display_name="Adam", role=Role.ADMIN,
                            status=MemberStatus.APPROVED),
            "pending": Member(telegram_id=14, display_name="Piotr", organisation_id=cop.id,
                              status=MemberStatus.PENDING),
            "blocked": Member(telegram_id=15, display_name="Bea", organisation_id=cop.id,
                              status=MemberStatus.BLOCKED),
        }
        session.add_all(people.values())
        await session.flush()
        return people


def _input(**changes: object) -> ExpertInput:
    values: dict[str, object] = dict(
        name="Anna Nowak", topics="Ekonomia społeczna, RODO; fundraising",
        districts=["Ostródzki", "pow. ełcki"], languages=["pl", "ukraiński"],
        email="anna@example.org", phone="600 100 200", note="Woli e-mail.", consent=True,
        consent_version=CONSENT_VERSION)
    values.update(changes)
    return ExpertInput(**values)  # type: ignore[arg-type]


async def _add(ctx: AppContext, actor: Actor, **changes: object) -> Expert:
    async with ctx.db.transaction() as session:
        return await add_expert(session, ctx, actor, _input(**changes))


async def _count(ctx: AppContext) -> int:
    async with ctx.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Expert)) or 0)


async def test_added_with_consent_recorded_and_fields_normalised(ctx: AppContext) -> None:
    people = await _people(ctx)
    row = await _add(ctx, Actor.of(people["ala"]), topics=["Ekonomia  społeczna", "rodo", "RODO", ""])
    assert row.topics == ["Ekonomia społeczna", "rodo"]  # told apart by their fold
    assert row.districts == ["ostrodzki", "elcki"] and row.languages == ["pl", "uk"]
    assert (row.email, row.phone) == ("anna@example.org", "600 100 200")
    assert row.consent_at == NOW and row.consent_by == people["ala"].id
    assert row.consent_text_version == CONSENT_VERSION == "2026-12"
    assert row.added_by_member_id == people["ala"].id
    assert row.organisation_id == people["ala"].organisation_id
    # The consent text members show is a catalog message, in both languages, naming its version.
    from infranet.i18n import t

    assert "wersja 2026-12" in t("pl", CONSENT_MESSAGE, version=CONSENT_VERSION)
    assert "version 2026-12" in t("en", CONSENT_MESSAGE, version=CONSENT_VERSION)


async def test_consent_is_required_and_must_be_to_the_current_text(ctx: AppContext) -> None:
    people = await _people(ctx)
    with pytest.raises(ValidationFailed) as refused:
        await _add(ctx, Actor.of(people["ala"]), consent=False)
    assert refused.value.localized("pl") == "Bez zgody tej osoby nie zapiszę jej w bazie ekspertów."
    with pytest.raises(ValidationFailed) as outdated:
        await _add(ctx, Actor.of(people["ala"]), consent_version="2025-01")
    assert "obecna wersja 2026-12" in outdated.value.localized("pl")
    assert await _count(ctx) == 0


@pytest.mark.parametrize(("changes", "pl", "en"), [
    ({"name": "  "}, "Imię i nazwisko: to pole jest wymagane.", "Name:"),
    ({"topics": ", ;"}, "Tematy: to pole jest wymagane.", "Topics:"),
    ({"topics": [f"temat {i}" for i in range(11)]}, "Tematy: za dużo pozycji (11); najwyżej 10.",
     "Topics: too many items (11); at most 10."),
    ({"topics": ["x" * 61]}, "Tematy:", "Topics:"),
    ({"languages": ["pl", "elficki"]}, "Języki: nie znam języka „elficki”", "Languages:"),
    ({"languages": []}, "Języki: to pole jest wymagane.", "Languages:"),
    ({"email": "anna(at)example", "phone": None}, "E-mail: anna(at)example nie wygląda na adres",
     "anna(at)example"),
    ({"email": None, "phone": "12"}, "Telefon: 12 nie wygląda na numer telefonu", "12"),
    ({"email": None, "phone": None}, "Kontakt: podaj adres e-mail lub numer telefonu",
     "Contact: give an e-mail address or a phone number"),
    ({"districts": []}, "Obszar: to pole jest wymagane.", "Area:"),
])
async def test_each_bad_field_is_named_in_the_readers_language(
        ctx: AppContext, changes: dict[str, object], pl: str, en: str) -> None:
    people = await _people(ctx)
    with pytest.raises(ValidationFailed) as refused:
        await _add(ctx, Actor.of(people["ala"]), **changes)
    assert pl in refused.value.localized("pl")
    assert en in refused.value.localized("en")
    assert await _count(ctx) == 0


async def test_unknown_district_offers_close_matches(ctx: AppContext) -> None:
    people = await _people(ctx)
    with pytest.raises(UnknownDistrict) as unknown:
        await _add(ctx, Actor.of(people["ala"]), districts=["ostrodzk"])
    assert [d.slug for d in unknown.value.suggestions][:1] == ["ostrodzki"]
    with pytest.raises(UnknownDistrict) as outside:
        await _add(ctx, Actor.of(people["ala"]), districts=["Kraków"])
    assert outside.value.outside
    assert await _count(ctx) == 0


async def test_same_email_twice_is_refused(ctx: AppContext) -> None:
    people = await _people(ctx)
    first = await _add(ctx, Actor.of(people["ala"]))
    with pytest.raises(ValidationFailed) as refused:
        await _add(ctx, Actor.of(people["bob"]), email="ANNA@example.org", name="Inna")
    assert f"jest już w bazie (#{first.id})" in refused.value.localized("pl")


def test_contact_in_one_answer() -> None:
    assert parse_contact("anna@example.org, +48 600 100 200") == ("anna@example.org", "+48 600 100 200")
    assert parse_contact("600-100-200") == (None, "600-100-200")
    assert parse_contact("tel. 600 100 200; e-mail: jan@example.org") == ("jan@example.org", "600 100 200")
    assert parse_contact("Telefon: +48 89 123 45 67") == (None, "+48 89 123 45 67")
    assert parse_contact("  Anna@Example.ORG ") == ("Anna@example.org", None)
    with pytest.raises(ValidationFailed, match="one e-mail"):
        parse_contact("a@example.org b@example.org")
    with pytest.raises(ValidationFailed):
        parse_contact("zadzwoń wieczorem")


async def test_members_only(ctx: AppContext) -> None:
    people = await _people(ctx)
    await _add(ctx, Actor.of(people["ala"]))
    for who in (Actor.of(people["pending"]), Actor.of(people["blocked"]), Actor("web"),
                Actor("member")):
        async with ctx.db.read() as session:
            with pytest.raises(PermissionDenied):
                await search_experts(session, ctx, who, topic="rodo")
        with pytest.raises(PermissionDenied):
            await _add(ctx, who, email="other@example.org")
    async with ctx.db.read() as session:
        found = await search_experts(session, ctx, Actor.of(people["bob"]), topic="rodo")
    assert [e.name for e in found.experts] == ["Anna Nowak"]


async def _names(ctx: AppContext, actor: Actor, *, topic: str | None = None,
                 district: str | None = None, language: str | None = None) -> list[str]:
    async with ctx.db.read() as session:
        found = await search_experts(session, ctx, actor, topic=topic, district=district,
                                     language=language)
    return [e.name for e in found.experts]


async def test_polish_aware_topic_search_and_districts_through_their_parents(ctx: AppContext) -> None:
    people = await _people(ctx)
    ala = Actor.of(people["ala"])
    await _add(ctx, ala)  # Anna: ostródzki, ełcki; ekonomia społeczna, rodo, fundraising
    await _add(ctx, ala, name="Jan Wiśniewski", topics=["Księgowość", "szkolenia dla zarządów"],
               districts=["podregion elbląski"], languages=["en"], email="jan@example.org")
    await _add(ctx, ala, name="Ewa Zielińska", topics=["Wolontariat"], districts=["cały region"],
               languages=["de", "pl"], email="ewa@example.org")
    assert await _names(ctx, ala, topic="ekonomii społecznej") == ["Anna Nowak"]
    assert await _names(ctx, ala, topic="EKONOMIA SPOLECZNA") == ["Anna Nowak"]
    assert await _names(ctx, ala, topic="ksiegowosc") == ["Jan Wiśniewski"]
    assert await _names(ctx, ala, topic="szkoleń") == ["Jan Wiśniewski"]
    assert await _names(ctx, ala, topic="wolontariatu") == ["Ewa Zielińska"]
    assert await _names(ctx, ala, topic="rachunkowość") == []
    # A powiat finds those serving it, its subregion and the region.
    assert await _names(ctx, ala, district="ostródzki") == ["Anna Nowak", "Jan Wiśniewski",
                                                           "Ewa Zielińska"]
    assert await _names(ctx, ala, district="Ełk") == ["Anna Nowak", "Ewa Zielińska"]
    # A subregion finds those serving it, the region, or a powiat inside it.
    assert await _names(ctx, ala, district="PL623") == ["Anna Nowak", "Ewa Zielińska"]
    assert await _names(ctx, ala, district="podregion elbląski") == ["Anna Nowak", "Jan Wiśniewski",
                                                                    "Ewa Zielińska"]
    assert await _names(ctx, ala, district="olsztyński", topic="wolontariat") == ["Ewa Zielińska"]
    assert await _names(ctx, ala, language="ukraiński") == ["Anna Nowak"]
    assert await _names(ctx, ala, language="DE") == ["Ewa Zielińska"]
    assert await _names(ctx, ala) == ["Anna Nowak", "Jan Wiśniewski", "Ewa Zielińska"]
    async with ctx.db.read() as session:
        with pytest.raises(ValidationFailed, match="Topics"):
            await search_experts(session, ctx, ala, topic="x" * 101)
        with pytest.raises(UnknownDistrict):
            await search_experts(session, ctx, ala, district="Kraków")
        bounded = await search_experts(session, ctx, ala, limit=2)
        assert len(bounded.experts) == 2 and bounded.more
        capped = await search_experts(session, ctx, ala, limit=10**9)
        assert len(capped.experts) == 3 and not capped.more


async def test_forget_deletes_everything_and_the_audit_keeps_no_personal_data(ctx: AppContext) -> None:
    people = await _people(ctx)
    row = await _add(ctx, Actor.of(people["ala"]))
    async with ctx.db.transaction() as session:
        await update_expert(session, ctx, Actor.of(people["ala"]), row.id,
                            ExpertChanges(phone="+48 601 000 000", topics="RODO"))
    # Someone else's entry: another member may not forget it, nor edit it.
    async with ctx.db.transaction() as session:
        with pytest.raises(PermissionDenied) as refused:
            await forget_expert(session, ctx, Actor.of(people["bob"]), row.id)
        assert "członek, który go dodał" in refused.value.localized("pl")
        with pytest.raises(PermissionDenied):
            await update_expert(session, ctx, Actor.of(people["bob"]), row.id, ExpertChanges(note="x"))
    async with ctx.db.transaction() as session:
        assert await forget_expert(session, ctx, Actor.of(people["ala"]), "ANNA@example.org") == [row.id]
    assert await _count(ctx) == 0
    async with ctx.db.read() as session:
        lines = list((await session.scalars(select(AuditLog).where(AuditLog.entity == "expert")
                                            .order_by(AuditLog.id))).all())
    assert [line.action for line in lines] == ["expert.add", "expert.edit", "expert.forget"]
    assert all(line.entity_id == str(row.id) for line in lines)
    stored = json.dumps([[line.actor, line.action, line.entity_id, line.details] for line in lines],
                        ensure_ascii=False)
    for personal in ("Anna", "Nowak", "anna@example.org", "600 100 200", "601", "RODO", "rodo",
                     "ostrodzki", "Woli"):
        assert personal not in stored
    async with ctx.db.transaction() as session:
        with pytest.raises(NotFound):
            await forget_expert(session, ctx, Actor.cli(), row.id)


async def test_admin_forgets_and_edits_anyones_entry(ctx: AppContext) -> None:
    people = await _people(ctx)
    row = await _add(ctx, Actor.of(people["ala"]))
    async with ctx.db.transaction() as session:
        edited = await update_expert(session, ctx, Actor.of(people["admin"]), row.id,
                                     ExpertChanges(email="", districts="region"))
        assert edited.email is None and edited.phone == "600 100 200" and edited.districts == [
            "warminsko-mazurskie"]
        with pytest.raises(ValidationFailed, match="Contact"):
            await update_expert(session, ctx, Actor.of(people["admin"]), row.id, ExpertChanges(phone=""))
    async with ctx.db.transaction() as session:
        assert await forget_expert(session, ctx, Actor.of(people["admin"]), f"#{row.id}") == [row.id]
    assert await _count(ctx) == 0


async def test_counts_per_powiat_and_topic_without_anyone(ctx: AppContext) -> None:
    people = await _people(ctx)
    ala = Actor.of(people["ala"])
    await _add(ctx, ala)
    await _add(ctx, ala, name="Jan", topics=["rodo"], districts=["podregion elbląski"],
               email="jan@example.org")
    async with ctx.db.read() as session:
        counts = await expert_counts(session, ctx)
    assert counts.per_powiat["ostrodzki"] == 2 and counts.per_powiat["elcki"] == 1
    assert counts.per_powiat["olsztynski"] == 0 and len(counts.per_powiat) == len(ctx.region.powiaty)
    assert counts.per_topic == {"rodo": 2, "ekonomia społeczna": 1, "fundraising": 1}


# --- the command line ---------------------------------------------------------------------


async def run(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


async def test_cli_add_list_export_forget(ctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    people = await _people(ctx)
    assert await run(ctx, "experts", "consent-text") == 0
    assert "(wersja 2026-12)" in capsys.readouterr().out
    assert await run(ctx, "experts", "consent-text", "--lang", "en") == 0
    assert "shown only to the network's approved members" in capsys.readouterr().out
    assert await run(ctx, "experts", "add", "Jan Kowalski", "--topic", "RODO", "--topic",
                     "ekonomia społeczna", "--district", "ostródzki", "--language", "pl",
                     "--language", "en", "--email", "jan@example.org", "--consent-by", "11") == 0
    out = capsys.readouterr().out
    assert "added expert #1: Jan Kowalski (consent recorded by Ala, text version 2026-12)" in out
    async with ctx.db.read() as session:
        row = await session.get(Expert, 1)
        assert row is not None and row.consent_by == people["ala"].id
        assert row.added_by_member_id is None  # the secretariat added it
    assert await run(ctx, "experts", "list", "--topic", "ekonomii", "--district", "PL621") == 0
    out = capsys.readouterr().out
    assert "#1    Jan Kowalski  [RODO, ekonomia społeczna]  ostródzki  (pl, en)  jan@example.org" in out
    assert await run(ctx, "experts", "list", "--language", "uk") == 0
    assert "no experts match" in capsys.readouterr().out
    assert await run(ctx, "experts", "edit", "1", "--phone", "600 100 200") == 0
    assert "600 100 200" in capsys.readouterr().out
    assert await run(ctx, "experts", "export", "JAN@example.org") == 0
    [held] = json.loads(capsys.readouterr().out)
    assert held["name"] == "Jan Kowalski" and held["consent_by"] == "Ala"
    assert held["consent_text_version"] == "2026-12" and held["organisation"] == "Sekretariat sieci"
    assert [h["action"] for h in held["history"]] == ["expert.add", "expert.edit"]
    assert await run(ctx, "experts", "forget", "jan@example.org") == 0
    assert "deleted #1" in capsys.readouterr().out
    assert await _count(ctx) == 0


async def test_cli_refusals_name_the_field_and_store_nothing(ctx: AppContext) -> None:
    """What `infranet` prints for a refusal is the error's English text (cli._dispatch)."""
    from infranet.errors import InfranetError

    await _people(ctx)

    async def refused(*argv: str) -> str:
        with pytest.raises((InfranetError, ValueError)) as error:
            await run(ctx, *argv)
        return str(error.value)

    base = ("experts", "add", "Jan", "--topic", "rodo", "--district", "ełcki")
    err = await refused(*base, "--consent-by", "11")
    assert "Contact: give an e-mail address or a phone number" in err
    err = await refused(*base, "--email", "jan@example.org", "--consent-by", "14")
    assert "Consent recorded by: 14 is not an approved member" in err
    err = await refused(*base, "--email", "jan@example.org", "--consent-by", "11", "--language", "xx")
    assert "Languages: unknown language" in err
    err = await refused(*base[:-1], "Kraków", "--email", "jan@example.org", "--consent-by", "11")
    assert "Kraków" in err
    err = await refused("experts", "forget", "nobody@example.org")
    assert "Not in the base of experts: nobody@example.org" in err
    err = await refused("experts", "forget", "Jan")
    assert "Give an entry's number" in err
    assert await _count(ctx) == 0
