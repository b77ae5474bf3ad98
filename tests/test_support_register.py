"""The register of support given (network/support.py), on both engines: the messages a
member gets for a bad KRS, NIP, a private person, an unknown powiat or a future date;
the duplicate preview across member organisations within and outside
`[referrals] duplicate_window_days`; accepted referrals counted in the register (and the
referral warning seeing the register); the public counts against a hand-computed
fixture; what an organisation offers where (org_profile: own members and admins only);
and `infranet support add|import|list` / `org edit` through the real parser, with
Excel's cp1250 and UTF-8-BOM files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.errors import PermissionDenied, ValidationFailed
from infranet.network.org_profile import split_districts, update_profile
from infranet.network.orgs import OrgInput, add_organisation
from infranet.network.referrals import ReferralInput, create_referral, decide_referral, preview_referral
from infranet.network.support import (
    SupportInput,
    add_support,
    drop_support,
    preview_support,
)
from infranet.network.support_figures import (
    DecisionCount,
    SupportCount,
    SupportTotals,
    duplicates_avoided,
    support_counts,
    support_totals,
    supported_per_district,
)
from infranet.network.support_list import list_support
from infranet.region import UnknownDistrict
from infranet.storage.actors import Actor
from infranet.storage.models import Member, MemberStatus, Role, SupportDecision, SupportRecord

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
KRS1, KRS2, NIP1 = "0000123456", "0000654321", "1234563218"


@pytest.fixture(autouse=True)
def _fixed_clock(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW


async def _org(ctx: AppContext, name: str) -> int:
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, Actor.cli(), OrgInput(name=name, type="COP",
                                                                          services=["training"]))
        return org.id


async def _member(ctx: AppContext, telegram_id: int, org_id: int | None, *, admin: bool = False) -> Actor:
    async with ctx.db.transaction() as session:
        member = Member(telegram_id=telegram_id, display_name=f"m{telegram_id}", organisation_id=org_id,
                        status=MemberStatus.APPROVED, role=Role.ADMIN if admin else Role.MEMBER,
                        approved_at=NOW)
        session.add(member)
        await session.flush()
        await session.refresh(member, ["organisation"])
        return Actor.of(member)


async def _network(ctx: AppContext) -> tuple[Actor, Actor, Actor, int, int, int]:
    a, b, c = (await _org(ctx, "COP Olsztyn"), await _org(ctx, "OWES Elbląg"),
               await _org(ctx, "Fundusz Lokalny Mazury"))
    return (await _member(ctx, 101, a), await _member(ctx, 201, b), await _member(ctx, 301, c),
            a, b, c)


async def _add(ctx: AppContext, actor: Actor, **fields: object) -> SupportRecord:
    values: dict[str, object] = {"client_name": "Fundacja Klient", "service": "training",
                                 "district": "olsztyński", "given_on": date(2026, 11, 2)}
    values.update(fields)
    warned = bool(values.pop("warned", False))
    async with ctx.db.transaction() as session:
        return await add_support(session, ctx, actor, SupportInput(**values), warned=warned)  # type: ignore[arg-type]


async def _refused(ctx: AppContext, actor: Actor, **fields: object) -> str:
    values: dict[str, object] = {"client_name": "Fundacja Klient", "service": "training",
                                 "district": "olsztyński", "given_on": date(2026, 11, 2)}
    values.update(fields)
    with pytest.raises(ValidationFailed) as caught:
        async with ctx.db.transaction() as session:
            await preview_support(session, ctx, actor, SupportInput(**values))  # type: ignore[arg-type]
    return caught.value.localized("pl")


async def test_bad_input_is_named_and_nothing_is_stored(ctx: AppContext) -> None:
    a, *_ = await _network(ctx)
    assert "KRS „12345” jest niepoprawny" in await _refused(ctx, a, krs="12345")
    assert "cyfra kontrolna się nie zgadza" in await _refused(ctx, a, nip="1234567890")
    assert "nigdy osoby prywatne" in await _refused(ctx, a, client_kind="person", client_name="Jan Kowalski")
    assert "nigdy osoby prywatne" in await _refused(ctx, a, nip="44051401359")  # a PESEL
    assert "nigdy osoby prywatne" in await _refused(ctx, a, krs="PESEL 44051401359")
    assert "jest w przyszłości" in await _refused(ctx, a, given_on=date(2026, 12, 4))
    assert "zbyt odległa" in await _refused(ctx, a, given_on=date(2006, 1, 1))
    assert "podregion ełcki to nie powiat" in await _refused(ctx, a, district="podregion ełcki")
    assert "KRS lub NIP" in await _refused(ctx, a, client_kind="ngo")
    assert "Usługa" in await _refused(ctx, a, service="massage")
    assert "Nazwa klienta: to pole jest wymagane" in await _refused(ctx, a, client_name="  ")
    with pytest.raises(UnknownDistrict) as outside:
        async with ctx.db.transaction() as session:
            await preview_support(session, ctx, a, SupportInput(
                client_name="Grupa", service="training", district="Kraków"))
    assert outside.value.outside
    async with ctx.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(SupportRecord)) == 0
    # Today is fine, and the default; an informal group by its name and powiat.
    row = await _add(ctx, a, client_name="Koło Gospodyń", given_on=None)
    assert row.given_on == date(2026, 12, 3) and row.client_kind == "group"


async def test_members_record_only_for_their_own_organisation(ctx: AppContext) -> None:
    a, _b, _c, _ida, idb, _idc = await _network(ctx)
    with pytest.raises(PermissionDenied):
        await _add(ctx, a, organisation_id=idb)
    orphan = await _member(ctx, 401, None)
    with pytest.raises(PermissionDenied):
        await _add(ctx, orphan)
    admin = await _member(ctx, 501, None, admin=True)
    row = await _add(ctx, admin, organisation_id=idb, krs=KRS1)
    assert row.organisation_id == idb and row.client_kind == "ngo"


async def test_duplicate_preview_across_organisations_within_the_window(ctx: AppContext) -> None:
    a, b, c, *_ = await _network(ctx)
    await _add(ctx, a, krs=KRS1, given_on=date(2026, 11, 1))
    await _add(ctx, c, krs=KRS1, given_on=date(2026, 5, 1))  # 214 days before: outside 183

    async def seen(actor: Actor, **fields: object) -> list[str]:
        values: dict[str, object] = {"client_name": "FUNDACJA  KLIENT!", "service": "training",
                                     "district": "elbląski", "given_on": date(2026, 12, 1)}
        values.update(fields)
        async with ctx.db.read() as session:
            preview = await preview_support(session, ctx, actor, SupportInput(**values))  # type: ignore[arg-type]
        return [d.organisation for d in preview.duplicates]

    assert await seen(b, krs=KRS1) == ["COP Olsztyn"]
    assert await seen(b, client_name="Zupełnie inna nazwa", krs=KRS1) == ["COP Olsztyn"]  # by KRS
    assert await seen(b) == ["COP Olsztyn"]  # by the folded name
    assert await seen(b, krs=KRS1, service="grants") == []  # another service
    assert await seen(a, krs=KRS1) == []  # its own earlier support is no duplicate
    # An informal group is its name in its powiat.
    await _add(ctx, a, client_name="Koło Gospodyń Wiejskich", given_on=date(2026, 11, 1))
    assert await seen(b, client_name="Koło Gospodyń Wiejskich") == []  # in elbląski: another
    assert await seen(b, client_name="koło gospodyń wiejskich", district="olsztyński") == ["COP Olsztyn"]
    ctx.settings.referrals.duplicate_window_days = 20
    assert await seen(b, krs=KRS1) == []  # 30 days: outside a 20-day window
    ctx.settings.referrals.duplicate_window_days = 250
    assert await seen(b, krs=KRS1) == ["Fundusz Lokalny Mazury", "COP Olsztyn"]


async def test_accepted_referrals_are_support_and_the_referral_warning_sees_records(
        ctx: AppContext) -> None:
    a, b, c, _ida, idb, idc = await _network(ctx)
    async with ctx.db.transaction() as session:
        ref = await create_referral(session, ctx, a, ReferralInput(
            to_org_id=idb, client_kind="ngo", client_name="Stowarzyszenie Razem", krs=KRS2,
            client_contact="tel. 600 100 200", need="Doradztwo", consent=True))
        person = await create_referral(session, ctx, a, ReferralInput(
            to_org_id=idb, client_kind="person", client_name="Jan Kowalski",
            client_contact="tel. 600 100 201", need="Porada", consent=True))
    async with ctx.db.read() as session:
        page = await list_support(session, ctx, c)
    assert page.total == 0  # sent, not accepted: no support yet
    async with ctx.db.transaction() as session:
        await decide_referral(session, ctx, b, ref.id, True)
        await decide_referral(session, ctx, b, person.id, True)
    async with ctx.db.read() as session:
        page = await list_support(session, ctx, c)
    [entry] = page.entries  # the person is never in the register
    assert (entry.organisation, entry.client_name, entry.referral_id) == (
        "OWES Elbląg", "Stowarzyszenie Razem", ref.id)
    assert entry.service is None and entry.given_on == date(2026, 12, 3)
    # Another organisation recording support for the same client is told of it.
    async with ctx.db.read() as session:
        preview = await preview_support(session, ctx, c, SupportInput(
            client_name="Razem", krs=KRS2, service="grants", district="ełcki"))
    assert [d.organisation for d in preview.duplicates] == ["OWES Elbląg"]
    # The receiving organisation records it with service and powiat: it then counts once.
    await _add(ctx, b, client_name="Stowarzyszenie Razem", krs=KRS2, referral_id=ref.id,
               given_on=date(2026, 12, 3))
    async with ctx.db.read() as session:
        page = await list_support(session, ctx, c)
        counts = await support_counts(session, ctx, date(2026, 12, 1), date(2026, 12, 31))
    assert page.total == 1 and page.entries[0].service == "training"
    assert counts == [SupportCount("olsztynski", "training", 1, 1)]
    # Someone else's referral of the same client now hears of the recorded support.
    async with ctx.db.read() as session:
        found = await preview_referral(session, ctx, c, ReferralInput(
            to_org_id=(await _org_id(ctx, "COP Olsztyn")), client_kind="ngo", client_name="X",
            krs=KRS2, client_contact="x", need="y", consent=True))
    assert "OWES Elbląg" in [d.organisation for d in found]
    _ = idc


async def _org_id(ctx: AppContext, name: str) -> int:
    from infranet.network.orgs import find_organisation

    async with ctx.db.read() as session:
        return (await find_organisation(session, name)).id


async def test_counts_against_a_hand_computed_fixture(ctx: AppContext) -> None:
    a, b, _c, _ida, idb, _idc = await _network(ctx)
    await _add(ctx, a, krs=KRS1, given_on=date(2026, 11, 2))
    await _add(ctx, a, krs=KRS1, service="grants", given_on=date(2026, 11, 3))
    await _add(ctx, b, krs=KRS1, given_on=date(2026, 11, 20), warned=True)
    await _add(ctx, b, client_name="Koło Gospodyń Wiejskich w Gietrzwałdzie", given_on=date(2026, 11, 5))
    await _add(ctx, b, client_name="Spółdzielnia", nip=NIP1, service="animation", district="elbląski",
               given_on=date(2026, 10, 10))
    await _add(ctx, a, client_name="Grupa X", district="elbląski", given_on=date(2025, 12, 1))  # before
    # Two informal groups of one name in two powiaty are two groups.
    await _add(ctx, a, client_name="Koło Gospodyń Wiejskich", given_on=date(2026, 11, 6))
    await _add(ctx, b, client_name="KOŁO GOSPODYŃ WIEJSKICH", district="elbląski", given_on=date(2026, 11, 7))
    async with ctx.db.transaction() as session:
        await drop_support(session, ctx, a, SupportInput(client_name="Fundacja Klient", krs=KRS1,
                                                         service="training", district="olsztyński",
                                                         given_on=date(2026, 11, 25)))
    # An accepted referral, decided on 10.11.2026 (local), about another NGO.
    async with ctx.db.transaction() as session:
        ref = await create_referral(session, ctx, a, ReferralInput(
            to_org_id=idb, client_kind="ngo", client_name="Stowarzyszenie Razem", krs=KRS2,
            client_contact="tel.", need="x", consent=True))
    ctx.clock = lambda: datetime(2026, 11, 10, 9, tzinfo=UTC)
    async with ctx.db.transaction() as session:
        await decide_referral(session, ctx, b, ref.id, True)
    ctx.clock = lambda: NOW
    start, end = date(2026, 10, 1), date(2026, 11, 30)
    async with ctx.db.read() as session:
        counts = await support_counts(session, ctx, start, end)
        per_district = await supported_per_district(session, ctx, start, end)
        totals = await support_totals(session, ctx, start, end)
        decisions = await duplicates_avoided(session, ctx, start, end)
        before = await support_counts(session, ctx, date(2025, 1, 1), date(2025, 12, 31))
    assert counts == [SupportCount("elblaski", "animation", 1, 1),
                      SupportCount("elblaski", "training", 1, 1),
                      SupportCount("olsztynski", "grants", 1, 1),
                      SupportCount("olsztynski", "training", 3, 4),
                      SupportCount(None, None, 1, 1)]
    assert per_district == [SupportCount("elblaski", None, 2, 2),
                            SupportCount("olsztynski", None, 3, 5),
                            SupportCount(None, None, 1, 1)]
    # KRS1, the Gietrzwałd group, NIP1, the two Koła, and KRS2 by referral.
    assert totals == SupportTotals(6, 8)
    # Decisions are dated when they were made (today), not by the support's day.
    assert decisions == []
    async with ctx.db.read() as session:
        today = await duplicates_avoided(session, ctx, date(2026, 12, 3), date(2026, 12, 3))
        assert await session.scalar(select(func.count()).select_from(SupportDecision)) == 2
    assert today == [DecisionCount("olsztynski", "training", 1, 1)]
    assert before == [SupportCount("elblaski", "training", 1, 1)]


async def test_organisation_profile_by_its_members_and_admins(ctx: AppContext) -> None:
    a, _b, _c, ida, idb, _idc = await _network(ctx)
    async with ctx.db.transaction() as session:
        profile = await update_profile(session, ctx, a, ida, services=["grants", "training", "grants"],
                                       districts=split_districts("olsztyński; m. Olsztyn, podregion ełcki"))
    assert profile.services == ["training", "grants"]
    assert profile.districts == ["podregion ełcki", "olsztyński", "m. Olsztyn"] or set(profile.districts) == {
        "podregion ełcki", "olsztyński", "m. Olsztyn"}
    with pytest.raises(PermissionDenied):
        async with ctx.db.transaction() as session:
            await update_profile(session, ctx, a, idb, services=["loans"])
    with pytest.raises(ValidationFailed) as bad:
        async with ctx.db.transaction() as session:
            await update_profile(session, ctx, a, ida, services=["massage"])
    assert "massage" in bad.value.localized("pl")
    admin = await _member(ctx, 501, None, admin=True)
    async with ctx.db.transaction() as session:
        profile = await update_profile(session, ctx, admin, idb, districts=[])
    assert profile.districts == [] and profile.services == ["training"]


# --- the command line -------------------------------------------------------------


async def run(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


HEADER = "Nazwa organizacji;KRS;NIP;Powiat;Usługa;Data\r\n"


async def test_cli_add_list_and_org_edit(ctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    await _network(ctx)
    assert await run(ctx, "support", "add", "--org", "COP Olsztyn", "--krs", KRS1, "--name",
                     "Fundacja Klient", "--district", "olsztyński", "--service", "szkolenia",
                     "--date", "2.11.2026") == 0
    assert "support #1: COP Olsztyn -> Fundacja Klient (training, olsztyński, 02.11.2026)" in \
        capsys.readouterr().out
    # The same client, same service, another organisation: warned and not saved without --anyway.
    argv = ("support", "add", "--org", "OWES Elbląg", "--krs", KRS1, "--name", "Fundacja Klient",
            "--district", "elbląski", "--service", "training", "--date", "2026-11-20")
    assert await run(ctx, *argv) == 3
    err = capsys.readouterr().err
    assert "COP Olsztyn supported Fundacja Klient" in err and "--anyway" in err
    assert await run(ctx, *argv, "--anyway") == 0
    assert await run(ctx, "support", "add", "--org", "OWES Elbląg", "--nip", "1234567890", "--name",
                     "X", "--district", "elbląski", "--service", "training") == 1
    assert "check digit" in capsys.readouterr().err
    assert await run(ctx, "support", "list") == 0
    out = capsys.readouterr().out
    assert "2026-11-20  OWES Elbląg -> Fundacja Klient [KRS 0000123456]  training, elbląski" in out
    assert "1-2 of 2 entries" in out
    # One client's support, by number or by words of its name (any case, no diacritics).
    assert await run(ctx, "support", "list", "--client", "KRS 0000-123-456") == 0
    assert "1-2 of 2 entries" in capsys.readouterr().out
    assert await run(ctx, "support", "list", "--client", "klient fundacja") == 0
    assert "1-2 of 2 entries" in capsys.readouterr().out
    assert await run(ctx, "support", "list", "--client", "Kółko%_") == 0
    assert "0 of 0 entries" in capsys.readouterr().out
    assert await run(ctx, "org", "edit", "OWES Elbląg", "--services", "training,social-economy",
                     "--districts", "elbląski, m. Elbląg") == 0
    assert "services training, social-economy; districts elbląski, m. Elbląg" in capsys.readouterr().out
    assert await run(ctx, "org", "edit", "OWES Elbląg", "--districts", "Kraków") == 1


async def test_cli_import_of_excel_files(ctx: AppContext, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    await _network(ctx)
    assert await run(ctx, "support", "add", "--org", "COP Olsztyn", "--krs", KRS1, "--name",
                     "Fundacja Klient", "--district", "olsztyński", "--service", "training",
                     "--date", "2.11.2026") == 0
    capsys.readouterr()
    rows = [
        f"Stowarzyszenie Łączy Nas;{KRS2};;ostródzki;doradztwo prawne;05.11.2026",
        f"Fundacja Klient;{KRS1};;iławski;Szkolenia;2026-11-20",  # COP Olsztyn gave it too
        "Koło Gospodyń Wiejskich w Żabim Rogu;;;Ostróda;animacja;6.11.2026",
        "Fundacja Błędna;;1234567890;ełcki;szkolenia;07.11.2026",
        "Jan Kowalski;;44051401359;ełcki;szkolenia;07.11.2026",
        "Grupa Z Krakowa;;;Kraków;szkolenia;07.11.2026",
        "Grupa Z Jutra;;;ełcki;szkolenia;24.12.2026",
        ";;;;;",
    ]
    cp1250 = tmp_path / "wsparcie.csv"
    cp1250.write_bytes((HEADER + "\r\n".join(rows) + "\r\n").encode("cp1250"))
    assert await run(ctx, "support", "import", str(cp1250), "--org", "OWES Elbląg") == 0
    out = capsys.readouterr()
    assert "read as Windows-1250" in out.out
    assert "duplicate warned: line 3: Fundacja Klient (training): also supported by COP Olsztyn" in out.out
    assert "refused: line 5: NIP \"1234567890\" is invalid" in out.out
    assert "refused: line 6: The support register holds organisations" in out.out
    assert "refused: line 7: unknown district 'Kraków'" in out.out
    assert "refused: line 8: The date 24.12.2026 is in the future" in out.out
    assert "3 added, 1 with a duplicate warning (saved), 4 refused, of 7 rows" in out.out
    assert "7/7 rows read" in out.err  # the trailing ";;;;;" row is no row
    async with ctx.db.read() as session:
        imported = select(SupportRecord).where(SupportRecord.source == "import")
        stored = {(r.client_name, r.service, r.given_on, r.source)
                  for r in (await session.scalars(imported)).all()}
    assert stored == {("Stowarzyszenie Łączy Nas", "legal-advice", date(2026, 11, 5), "import"),
                      ("Fundacja Klient", "training", date(2026, 11, 20), "import"),
                      ("Koło Gospodyń Wiejskich w Żabim Rogu", "animation", date(2026, 11, 6), "import")}
    # UTF-8 with a BOM, other header spellings and a per-row supporting organisation.
    utf8 = tmp_path / "wsparcie-utf8.csv"
    utf8.write_bytes(b"\xef\xbb\xbf" + (
        "Organizacja;nr KRS;NIP;powiat;Rodzaj wsparcia;data wsparcia;Organizacja wspierająca\n"
        "Fundacja Ążźć;0000111111;;giżycki;fundusze UE;1.12.2026;Fundusz Lokalny Mazury\n").encode())
    assert await run(ctx, "support", "import", str(utf8)) == 0
    out = capsys.readouterr()
    assert "Windows-1250" not in out.out and "1 added, 0 with a duplicate warning" in out.out
    assert await run(ctx, "support", "list", "--org", "Fundusz Lokalny Mazury", "--json") == 0
    assert '"client": "Fundacja Ążźć"' in capsys.readouterr().out
    # A file that is no register at all is refused whole.
    wrong = tmp_path / "inne.csv"
    wrong.write_bytes("email;imię\nx@example.org;X\n".encode())
    assert await run(ctx, "support", "import", str(wrong), "--org", "OWES Elbląg") == 1
    assert "missing columns: Nazwa organizacji, Powiat, Usługa, Data" in capsys.readouterr().err
