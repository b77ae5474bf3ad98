"""/support, `/support list` and /org_edit end to end through the Bot API emulator, on
both engines: the form from the client's number to the preview; the duplicate warning
when another organisation gave the same service, before anything is stored; Save and
Cancel acting on exactly the draft shown (an old button after « Wstecz, or after the
form ended, says so and changes nothing); a private person refused; the register shown
to members only; services and districts edited by the organisation's members, with the
server refusing another organisation's."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from infranet.network.support import local_today
from infranet.storage.models import Organisation, SupportDecision, SupportRecord
from tests.bot_fixtures import ADMIN_ID, BotHarness
from tests.botapi import Sent

A, B, OUTSIDER = 4101, 4201, 4999
COP, OWES = "Centrum Organizacji Pozarządowych Olsztyn", "Ośrodek Wsparcia Ekonomii Społecznej Elbląg"


async def _setup(bot: BotHarness) -> None:
    await bot.org(COP, type="COP", services=["information", "training"],
                  districts=["m. Olsztyn", "olsztyński"], contact_email="cop@example.org")
    await bot.org(OWES, type="OWES", services=["training"], districts=["elbląski"])
    await bot.member(A, COP, name="Alicja")
    await bot.member(B, OWES, name="Bartek")


async def _count(bot: BotHarness, model: type) -> int:
    async with bot.ctx.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _up_to_day(bot: BotHarness, who: int, ident: str, name: str | None) -> Sent:
    """/support up to the day question (service: training, powiat: the first button)."""
    api = bot.api
    asked = await api.ask(who, "/support")
    assert "KRS lub NIP" in asked.text and "osób prywatnych" in asked.text
    services = await api.ask(who, ident)
    if name is not None:
        assert "Jak nazywa się" in services.text
        services = await api.ask(who, name)
    assert "Jaką usługą" in services.text
    powiat = await api.answer(who, services, services.button("szkolenia"))
    assert "W którym powiecie" in powiat.text
    return powiat


async def test_support_form_saves_exactly_the_draft_shown(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    powiat = await _up_to_day(bot, A, "KRS 0000123456", "Fundacja Klient")
    # The organisation's own powiaty are offered as buttons.
    labels = [label for label, _ in powiat.buttons]
    assert "powiat olsztyński" in labels and any("Olsztyn — miasto" in label for label in labels)
    day = await api.answer(A, powiat, powiat.button("powiat olsztyński"))
    assert "Kiedy udzielono" in day.text
    preview = await api.answer(A, day, day.button("Dziś"))
    assert "Wsparcie do zapisania" in preview.text and "Fundacja Klient, KRS 0000123456" in preview.text
    assert "Powiat: olsztyński" in preview.text and "⚠️" not in preview.text
    assert await _count(bot, SupportRecord) == 0  # nothing before Save
    saved = await api.click(A, preview, preview.button("Zapisz"))
    assert "Zapisano wsparcie #1: Fundacja Klient, szkolenia" in saved.text
    assert await _count(bot, SupportRecord) == 1
    # The same Save again (a double tap, an old message): said so, nothing saved twice.
    api.press(A, preview, preview.button("Zapisz"))
    assert "już zapisano, anulowano albo zmieniono" in await api.next_answer()
    assert await _count(bot, SupportRecord) == 1
    assert api.errors == []


async def test_duplicate_warning_and_a_stale_save_button(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    powiat = await _up_to_day(bot, A, "0000123456", "Fundacja Klient")
    day = await api.answer(A, powiat, powiat.button("powiat olsztyński"))
    preview = await api.answer(A, day, day.button("Wczoraj"))
    await api.click(A, preview, preview.button("Zapisz"))
    # Another organisation, the same client by KRS, the same service: warned before storing.
    powiat = await _up_to_day(bot, B, "KRS 0000123456", "FUNDACJA  KLIENT")
    outside = await api.ask(B, "Kraków")  # typed, outside the region: the subregions offered
    assert "poza regionem" in outside.text
    which = await api.click(B, outside, outside.button("podregion elbląski"))
    assert "Który powiat" in which.text
    day = await api.answer(B, which, which.button("powiat elbląski"))
    first = await api.ask(B, "dziś")
    assert "⚠️" in first.text and "Centrum Organizacji Pozarządowych Olsztyn" in first.text
    assert "Nic jeszcze nie zapisałem" in first.text
    assert [label for label, _ in first.buttons][:2] == ["Zapisz mimo to", "Nie zapisuj"]
    old_save = first.button("Zapisz mimo to")
    # « Wstecz to the day, another day: a new preview; the first one's Save is out of date.
    back = await api.click(B, first, first.button("Wstecz"))
    assert "Kiedy udzielono" in back.text
    second = await api.answer(B, back, back.button("Wczoraj"))
    assert "⚠️" in second.text and second.button("Zapisz mimo to") != old_save
    api.press(B, first, old_save)
    assert "Nic nie zmieniłem" in await api.next_answer()
    assert await _count(bot, SupportRecord) == 1
    # Dropped: no record, only the decision (no client data) for the avoided-duplicates figure.
    dropped = await api.click(B, second, second.button("Nie zapisuj"))
    assert "Nie zapisano" in dropped.text
    assert await _count(bot, SupportRecord) == 1 and await _count(bot, SupportDecision) == 1
    async with bot.ctx.db.read() as session:
        decision = await session.scalar(select(SupportDecision))
        assert decision is not None and decision.outcome == "dropped"
    del day


async def test_persons_bad_numbers_and_future_days_are_refused(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    await api.ask(A, "/support")
    refused = await api.ask(A, "PESEL 44051401359")
    assert "nigdy osoby prywatne" in refused.text
    refused = await api.ask(A, "NIP 1234567890")
    assert "cyfra kontrolna się nie zgadza" in refused.text
    services = await api.ask(A, "Koło Gospodyń Wiejskich w Gietrzwałdzie")  # an informal group
    powiat = await api.answer(A, services, services.button("animacja"))
    day = await api.answer(A, powiat, powiat.button("powiat olsztyński"))
    future = await api.ask(A, "1.1.2099")
    assert "jest w przyszłości" in future.text
    # A day written without a year is the last one, not the next one.
    last_week = local_today(bot.ctx) - timedelta(days=7)
    preview = await api.ask(A, f"{last_week.day}.{last_week.month}")
    assert f"{last_week.day}.{last_week.month:02d}.{last_week.year}" in preview.text or \
        f"{last_week.day} " in preview.text
    saved = await api.click(A, preview, preview.button("Zapisz"))
    assert "Zapisano wsparcie" in saved.text
    async with bot.ctx.db.read() as session:
        row = await session.scalar(select(SupportRecord))
        assert row is not None and row.client_kind == "group" and row.given_on == last_week
    del day


async def test_the_register_is_for_members_only(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    empty = await api.ask(A, "/support list")
    assert "Rejestr wsparcia jest pusty" in empty.text
    powiat = await _up_to_day(bot, A, "KRS 0000123456", "Fundacja <Klient>")
    day = await api.answer(A, powiat, powiat.button("powiat olsztyński"))
    preview = await api.answer(A, day, day.button("Dziś"))
    await api.click(A, preview, preview.button("Zapisz"))
    listing = await api.ask(B, "/support list")
    assert "Rejestr wsparcia" in listing.text and "tylko dla członków" in listing.text
    assert "Centrum Organizacji Pozarządowych Olsztyn → Fundacja <Klient> (KRS 0000123456)" in listing.text
    assert "szkolenia · olsztyński" in listing.text
    # One client: by KRS, or by words of its name; nothing for another.
    found = await api.ask(B, "/support list 0000123456")
    assert "(wpisów: 1) — widoczny tylko dla członków sieci · 0000123456" in found.text
    found = await api.ask(B, "/support list KLIENT")
    assert "Fundacja <Klient>" in found.text
    none = await api.ask(B, "/support list Stowarzyszenie Inne")
    assert "nie ma nic dla „Stowarzyszenie Inne”" in none.text
    stranger = await api.ask(OUTSIDER, "/support list")
    assert "Fundacja" not in stranger.text and "/join" in stranger.text
    assert api.errors == []


async def test_org_edit_by_members_of_the_organisation(bot: BotHarness) -> None:
    await _setup(bot)
    api = bot.api
    screen = await api.ask(A, "/org_edit")
    assert "jakie usługi oferujecie" in screen.text
    labels = [label for label, _ in screen.buttons]
    assert "✓ szkolenia" in labels and "✓ informacja" in labels and "granty" in labels
    screen = await api.click(A, screen, screen.button("granty"))
    assert "✓ granty" in [label for label, _ in screen.buttons]
    screen = await api.click(A, screen, screen.button("✓ informacja"))
    assert "informacja" in [label for label, _ in screen.buttons]
    ask = await api.answer(A, screen, screen.button("Dalej"))
    assert "Obszar działania teraz: olsztyński, m. Olsztyn" in ask.text
    unknown = await api.ask(A, "olsztyński, Krakow")
    assert "Krakow" in unknown.text
    saved = await api.ask(A, "olsztyński, podregion ełcki")
    assert "Usługi: szkolenia, granty" in saved.text
    assert "podregion ełcki" in saved.text and "olsztyński" in saved.text
    async with bot.ctx.db.read() as session:
        org = await session.scalar(select(Organisation).where(Organisation.name == COP))
        assert org is not None and org.services == ["training", "grants"]
        assert {d.slug for d in org.districts} == {"olsztynski", "podregion-elcki"}
        owes = await session.scalar(select(Organisation).where(Organisation.name == OWES))
        assert owes is not None
    orgs = await api.ask(B, "/orgs Olsztyn")
    assert "granty" in orgs.text and "podregion ełcki" in orgs.text
    # A member cannot pick another organisation with a forged button (the server refuses
    # it too: test_support_register), nor tick for it.
    own = await api.ask(B, "/org_edit")
    assert OWES in own.text
    api.press(B, own, f"oe:o:{org.id}")
    assert "nieaktualny" in await api.next_answer()
    await api.silence(B, 0.3)
    # An admin edits any organisation, by name.
    await bot.member(ADMIN_ID, None, admin=True, name="Admin")
    pick = await api.ask(ADMIN_ID, "/org_edit Elbląg")
    screen = await api.click(ADMIN_ID, pick, pick.button("Elbląg"))
    ask = await api.answer(ADMIN_ID, screen, screen.button("Dalej"))
    saved = await api.click(ADMIN_ID, ask, ask.button("Całe województwo"))
    assert "Obszar: Całe województwo" in saved.text
    async with bot.ctx.db.read() as session:
        owes = await session.get(Organisation, owes.id)
        assert owes is not None and owes.districts == [] and owes.services == ["training"]


async def test_support_after_an_accepted_referral_stands_for_it(bot: BotHarness) -> None:
    from infranet.network.members import get_member
    from infranet.network.referrals import ReferralInput, create_referral, decide_referral
    from infranet.storage.actors import Actor

    await _setup(bot)
    api = bot.api
    async with bot.ctx.db.transaction() as session:
        a, b = await get_member(session, A), await get_member(session, B)
        assert a is not None and b is not None and b.organisation_id is not None
        ref = await create_referral(session, bot.ctx, Actor.of(a), ReferralInput(
            to_org_id=b.organisation_id, client_kind="ngo", client_name="Stowarzyszenie Razem",
            krs="0000654321", client_contact="tel. 600 100 200", need="Doradztwo", consent=True))
        person = await create_referral(session, bot.ctx, Actor.of(a), ReferralInput(
            to_org_id=b.organisation_id, client_kind="person", client_name="Jan Kowalski",
            client_contact="tel. 600 100 201", need="Porada", consent=True))
    await api.ask(B, "/support")
    not_yet = await api.ask(B, f"#{ref.id}")
    assert f"Skierowanie #{ref.id} nie zostało przyjęte" in not_yet.text
    async with bot.ctx.db.transaction() as session:
        b = await get_member(session, B)
        assert b is not None
        await decide_referral(session, bot.ctx, Actor.of(b), ref.id, True)
        await decide_referral(session, bot.ctx, Actor.of(b), person.id, True)
    listing = await api.ask(A, "/support list")
    # Accepted: support by the receiving organisation, service and powiat not stated; the
    # referred person is not in the register.
    assert (f"Ośrodek Wsparcia Ekonomii Społecznej Elbląg → Stowarzyszenie Razem (KRS 0000654321)"
            f" · nie podano · nie podano · ze skierowania #{ref.id}") in listing.text
    assert "Kowalski" not in listing.text
    refused = await api.ask(B, f"#{person.id}")
    assert "nigdy osoby prywatne" in refused.text
    # The receiving organisation records it with service and powiat: the record stands for it.
    services = await api.ask(B, f"skierowanie {ref.id}")
    assert "Stowarzyszenie Razem" in services.text
    powiat = await api.answer(B, services, services.button("szkolenia"))
    day = await api.answer(B, powiat, powiat.button("powiat elbląski"))
    preview = await api.answer(B, day, day.button("Dziś"))
    assert "Stowarzyszenie Razem, KRS 0000654321" in preview.text
    await api.click(B, preview, preview.button("Zapisz"))
    listing = await api.ask(A, "/support list")
    assert "ze skierowania" not in listing.text and "szkolenia · elbląski" in listing.text
    assert "(wpisów: 1)" in listing.text
    # Another organisation cannot claim the referral.
    await api.ask(A, "/support")
    other = await api.ask(A, f"#{ref.id}")
    assert "Nie znaleziono" in other.text


async def test_a_search_keeps_its_query_from_page_to_page(bot: BotHarness) -> None:
    from infranet.network.members import get_member
    from infranet.network.support import SupportInput, add_support
    from infranet.storage.actors import Actor

    await _setup(bot)
    api = bot.api
    day = local_today(bot.ctx)
    async with bot.ctx.db.transaction() as session:
        a = await get_member(session, A)
        assert a is not None
        for index in range(11):
            await add_support(session, bot.ctx, Actor.of(a), SupportInput(
                client_name=f"Grupa Sąsiedzka {index:02d}", service="animation",
                district="olsztyński", given_on=day - timedelta(days=index)))
        await add_support(session, bot.ctx, Actor.of(a), SupportInput(
            client_name="Fundacja Inna", krs="0000111111", service="training", district="olsztyński",
            given_on=day))
    first = await api.ask(B, "/support list grupa sasiedzka")
    assert "(wpisów: 11)" in first.text and "Strona 1 z 2" in first.text
    assert "Fundacja Inna" not in first.text and "Grupa Sąsiedzka 00" in first.text
    second = await api.click(B, first, first.button("Dalej"))
    assert second.kind == "edit" and "Strona 2 z 2" in second.text
    assert "Grupa Sąsiedzka 10" in second.text and "Fundacja Inna" not in second.text
    assert api.errors == []


async def test_a_replayed_save_is_not_saved_twice(bot: BotHarness) -> None:
    """Telegram offers the Save press again (the bot did not confirm it before a crash):
    the answer is "already saved" with what was saved, and nothing is stored twice."""
    await _setup(bot)
    api = bot.api
    powiat = await _up_to_day(bot, A, "KRS 0000123456", "Fundacja Klient")
    day = await api.answer(A, powiat, powiat.button("powiat olsztyński"))
    preview = await api.answer(A, day, day.button("Dziś"))
    press = api.press(A, preview, preview.button("Zapisz"))
    assert "Zapisano wsparcie #1" in (await api.next_reply(A)).text
    await bot.restart()
    api.redeliver(press)
    again = await api.next_reply(A)
    assert "już zapisany" in again.text and "Zapisano wsparcie #1" in again.text
    assert await _count(bot, SupportRecord) == 1


async def test_the_form_in_english(bot: BotHarness) -> None:
    await _setup(bot)
    await bot.member(A + 1, COP, language="en", name="Anna")
    api = bot.api
    await _up_to_day(bot, A, "KRS 0000123456", "Fundacja Klient")  # Polish, left open
    await api.ask(A, "/cancel")
    asked = await api.ask(A + 1, "/support")
    assert "Whom did you support?" in asked.text and "no private persons" in asked.text
    refused = await api.ask(A + 1, "44051401359")
    assert "never private persons" in refused.text
    services = await api.ask(A + 1, "Sąsiedzi z Gietrzwałdu")
    assert "Which service" in services.text and "legal advice" in " ".join(
        label for label, _ in services.buttons).lower()
    powiat = await api.answer(A + 1, services, services.button("training"))
    day = await api.answer(A + 1, powiat, powiat.button("olsztyński"))
    preview = await api.answer(A + 1, day, day.button("Yesterday"))
    assert "Support to record" in preview.text and "Powiat: olsztyński" in preview.text
    saved = await api.click(A + 1, preview, preview.button("Save"))
    assert "Support #1 recorded: Sąsiedzi z Gietrzwałdu, training" in saved.text
