"""Menus that fit the user, and Polish throughout: command menus by role and language,
/start's next steps, organisation types and refusals in words people read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from infranet.calendar import events as calendar
from infranet.calendar.event_input import EventInput
from infranet.errors import NotFound, PermissionDenied, ValidationFailed
from infranet.network.orgs import OrgInput, add_organisation
from infranet.newsletter.subscribers import normalise_districts
from infranet.storage.actors import Actor
from tests.bot_fixtures import ADMIN_ID, BotHarness
from tests.botapi import BotApi, User

USER = 7101


async def _menu(api: BotApi, key: str, wait: float = 5.0) -> set[str] | None:
    """The commands of menu `key` ("" / "en" default, "chat:<id>:<lang>") once the bot has
    set it (menus change after the reply, once committed); None if there is none."""
    for _ in range(int(wait / 0.02)):
        if key in api.commands:
            return {c["command"] for c in api.commands[key]}
        await asyncio.sleep(0.02)
    return None


async def _menu_becomes(api: BotApi, key: str, check, wait: float = 5.0) -> set[str] | None:
    for _ in range(int(wait / 0.02)):
        found = {c["command"] for c in api.commands.get(key, [])} if key in api.commands else None
        if check(found):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"menu {key!r} is {api.commands.get(key)}")


async def test_default_menus_show_what_anyone_may_use_with_cancel(bot: BotHarness) -> None:
    polish = await _menu(bot.api, "")
    english = await _menu(bot.api, "en")
    assert polish == english and polish is not None
    assert {"start", "help", "lang", "join", "events", "check", "cancel"} <= polish
    assert not {"event", "my", "refer", "members"} & polish  # members' and admins' commands
    descriptions = {c["command"]: c["description"] for c in bot.api.commands[""]}
    assert descriptions["cancel"] == "przerwij bieżącą rozmowę"


async def test_the_menu_follows_lang_for_a_stranger_and_a_member(bot: BotHarness) -> None:
    api = bot.api
    choose = await api.ask(USER, "/lang")
    await api.click(USER, choose, choose.button("English"))
    menu = await _menu_becomes(api, f"chat:{USER}:", lambda m: m is not None)
    descriptions = {c["command"]: c["description"] for c in api.commands[f"chat:{USER}:"]}
    assert descriptions["help"] == "list of commands" and "event" not in (menu or set())
    # A member who switches to English gets their member menu in English.
    await bot.member(7102, "Fundacja Testowa")
    await api.ask(7102, "/lang en")
    menu = await _menu_becomes(api, "chat:7102:", lambda m: m is not None and "event" in m)
    descriptions = {c["command"]: c["description"] for c in api.commands["chat:7102:"]}
    assert descriptions["event"] == "add an event to the calendar"
    assert "members" not in menu
    # ... and back to Polish.
    await api.ask(7102, "/lang pl")
    await _menu_becomes(api, "chat:7102:", lambda m: m is not None and any(
        c["description"] == "dodaj wydarzenie do kalendarza" for c in api.commands["chat:7102:"]))
    assert "chat:7102:en" not in api.commands  # no per-language menu would override it


async def test_member_commands_appear_on_approval_and_go_on_block(bot: BotHarness) -> None:
    await bot.org("Stowarzyszenie Wspólnota Warmii", type="COP")
    api = bot.api
    await api.ask(USER, "/join")
    pick = await api.ask(USER, "wspolnota")
    await api.click(USER, pick, pick.button("Wspólnota Warmii"))
    assert not any(c["command"] == "event" for c in api.commands.get(f"chat:{USER}:", []))
    request = await api.next_reply(ADMIN_ID)
    await api.click(ADMIN_ID, request, request.button("Zatwierdź"))
    menu = await _menu_becomes(api, f"chat:{USER}:", lambda m: m is not None and "event" in m)
    assert {"event", "my", "refer", "cancel"} <= menu and "members" not in menu
    # Blocked: the member's commands leave the menu.
    async with bot.ctx.db.read() as session:
        from infranet.network.members import get_member

        member = await get_member(session, USER)
        assert member is not None
    confirm = await api.ask(ADMIN_ID, f"/block #{member.id}")
    await api.click(ADMIN_ID, confirm, confirm.buttons[0][1])
    await _menu_becomes(api, f"chat:{USER}:", lambda m: m is None or "event" not in m)


async def test_start_offers_next_steps_and_the_calendar(bot: BotHarness) -> None:
    bot.ctx.clock = lambda: datetime(2026, 11, 23, 9, tzinfo=UTC)
    api = bot.api
    steps = await api.ask(USER, "/start")  # one message: the greeting, the calendar, buttons
    assert steps.text.startswith("Cześć")
    base = bot.ctx.settings.http.public_base_url.rstrip("/")
    assert f"{base}/calendar\n" in steps.text and f"{base}/calendar.ics" in steps.text
    labels = [label for label, _ in steps.buttons]
    assert labels == ["Dołącz do sieci", "Najbliższe wydarzenia", "Sprawdź termin", "Newsletter e-mailem"]
    assert steps.button("Dołącz").endswith("?start=join")  # opens the /join form in the chat
    events = await api.click(USER, steps, steps.button("wydarzenia"))
    assert "Brak wydarzeń" in events.text or "Wydarzenia" in events.text
    check = await api.click(USER, steps, steps.button("Sprawdź termin"))
    assert "/check 5.12 10-14" in check.text
    subscribe = await api.click(USER, steps, steps.button("Newsletter"))
    assert "/subscribe" in subscribe.text and f"{base}/newsletter/subscribe" in subscribe.text
    # A member's next step is an event, not joining; in English for an English app.
    await bot.member(7103, "Fundacja Testowa")
    steps = await api.ask(User(7103, language_code="en"), "/start")
    assert steps.text.startswith("Welcome")
    assert steps.buttons[0][0] == "Add an event" and "What next?" in steps.text
    assert api.errors == []


async def test_organisation_types_have_names(bot: BotHarness) -> None:
    await bot.org("Fundusz Lokalny Mazur", type="local-fund")
    listing = await bot.api.ask(USER, "/orgs Mazur")
    assert "fundusz lokalny" in listing.text and "local-fund" not in listing.text
    english = await bot.api.ask(User(7104, language_code="en"), "/orgs Mazur")
    assert "local fund" in english.text and "local-fund" not in english.text


async def test_refusals_are_in_polish_and_english(bot: BotHarness) -> None:
    """Permission, not-found and validation refusals of the business rules name the
    problem in the reader's language: no English in Polish messages."""
    ctx = bot.ctx
    stranger = Actor("member", None)
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, Actor.cli(), OrgInput(name="Fundacja Alfa"))
    refusals: list[Exception] = []
    for call in (
        lambda s: calendar.get_event(s, 424242),
        lambda s: calendar.add_event(s, ctx, Actor.cli(), EventInput(
            title="X", start=datetime(2027, 1, 5, 9, tzinfo=UTC), end=datetime(2027, 1, 5, 10, tzinfo=UTC),
            district="olsztyński", category="party")),
        lambda s: calendar.add_event(s, ctx, Actor.cli(), EventInput(
            title="X", start=datetime(2027, 1, 5, 9, tzinfo=UTC), end=datetime(2027, 1, 5, 10, tzinfo=UTC),
            district="olsztyński", organisation_id=999999)),
        lambda s: add_organisation(s, ctx, Actor.cli(), OrgInput(name="Fundacja Alfa")),
        lambda s: add_organisation(s, ctx, Actor.cli(), OrgInput(name="Fundacja Beta", type="club")),
        lambda s: add_organisation(s, ctx, Actor.cli(), OrgInput(name="Fundacja Gamma", phone="abc")),
    ):
        try:
            async with ctx.db.transaction() as session:
                await call(session)
        except (ValidationFailed, NotFound) as exc:
            refusals.append(exc)
    try:
        stranger.require_approved()
    except PermissionDenied as exc:
        refusals.append(exc)
    try:
        Actor.of(await bot.member(7105, "Fundacja Testowa")).require_org(org.id)
    except PermissionDenied as exc:
        refusals.append(exc)
    for typed in ("olsztynsky", "Kraków"):  # the newsletter's districts (web form, CLI)
        try:
            normalise_districts(ctx, [typed])
        except ValidationFailed as exc:
            refusals.append(exc)
    assert len(refusals) == 10
    polish = [exc.localized("pl") for exc in refusals]  # type: ignore[attr-defined]
    english = [exc.localized("en") for exc in refusals]  # type: ignore[attr-defined]
    for text in polish:
        for word in ("not ", "only", "there is", "unknown", "exists", "must", "choose"):
            assert word not in text.lower(), text
    assert polish[0].startswith("Nie znaleziono wydarzenia nr 424242")
    assert "Rodzaj: „party” nie jest na liście" in polish[1]
    assert polish[2].startswith("Nie znaleziono organizacji nr 999999")
    assert "już jest w sieci" in polish[3]
    assert "Rodzaj organizacji" in polish[4] and "Telefon: abc" in polish[5]
    # The network's refusal names no bot command (the web and the CLI raise it too).
    assert "zatwierdzeni członkowie" in polish[6] and "/join" not in polish[6]
    assert "tylko jej członkowie" in polish[7]
    assert english[0].startswith("There is no event #424242") and "only members" in english[7]
    assert "czy chodzi o: olsztyński" in polish[8] and "poza regionem" in polish[9]
    assert "did you mean: olsztyński" in english[8]
