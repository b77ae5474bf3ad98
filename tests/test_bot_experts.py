"""Experts and trainers in the chat, end to end through the Bot API emulator, both engines:

- /expert_add asks step by step, shows the consent text (with its version) before anything is
  stored, and saves with the consent recorded only on "The person agreed";
- a consent button of an earlier summary (after « Wstecz and a changed answer) says so and
  saves nothing, and a press replayed after the save changes nothing either;
- /experts finds by topic (Polish-aware) and district, shows stored text escaped, in the
  member's language, and Delete only under the member's own entries; Delete erases the row;
- pending members and strangers are refused.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from infranet.bot.handlers.experts import EPOCH
from infranet.storage.models import BotState, Expert, Member, MemberStatus
from tests.bot_fixtures import BotHarness
from tests.botapi import Sent

A, B, PENDING, STRANGER = 4101, 4201, 4301, 4401


async def _count(bot: BotHarness) -> int:
    async with bot.ctx.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Expert)) or 0)


async def _summary(bot: BotHarness, who: int, name: str = "Anna <Nowak> & syn",
                   contact: str = "anna@example.org, 600 100 200") -> Sent:
    """The /expert_add form up to its summary with the consent text."""
    api = bot.api
    asked = await api.ask(who, "/expert_add")
    assert "Imię i nazwisko" in asked.text
    topics = await api.ask(who, name)
    assert "Tematy po przecinku" in topics.text
    districts = await api.ask(who, "Ekonomia społeczna, RODO")
    assert "Cały region" in [label for label, _ in districts.buttons]
    languages = await api.ask(who, "ostródzki, Ełk")
    contact_question = await api.click(who, languages, languages.button("polski, ukraiński"))
    assert "✓ polski, ukraiński" in contact_question.text and "e-mail" in contact_question.text
    # A contact that is neither an address nor a number: named, and asked again.
    refused = await api.ask(who, "zadzwoń wieczorem")
    assert "Telefon: zadzwoń wieczorem nie wygląda na numer telefonu" in refused.text
    summary = await api.ask(who, contact)
    assert "Ekonomia społeczna, RODO" in summary.text and "ostródzki, ełcki" in summary.text
    assert "wersja 2026-12" in summary.text and "wyłącznie zatwierdzonym członkom" in summary.text
    return summary


async def test_add_with_consent_search_and_forget(bot: BotHarness) -> None:
    api = bot.api
    alicja = await bot.member(A, "Centrum Organizacji Pozarządowych Olsztyn", name="Alicja")
    await bot.member(B, "OWES Elbląg", name="Bob", language="en")
    summary = await _summary(bot, A)
    assert "Anna <Nowak> & syn" in summary.text  # stored text shown as typed, escaped in HTML
    assert await _count(bot) == 0  # nothing before the consent
    saved = await api.click(A, summary, summary.button("Osoba wyraziła zgodę"))
    assert saved.kind == "edit" and "Zapisano w bazie ekspertów jako #1" in saved.text
    assert "Anna" not in saved.text  # the form's receipt keeps what was said: no name in it
    async with bot.ctx.db.read() as session:
        row = await session.scalar(select(Expert))
        assert row is not None and row.name == "Anna <Nowak> & syn"
        assert row.consent_by == alicja.id and row.consent_text_version == "2026-12"
        assert row.districts == ["ostrodzki", "elcki"] and row.languages == ["pl", "uk"]
        assert (row.email, row.phone) == ("anna@example.org", "600 100 200")
    # Another member, in English, searches: a prompt, then topic and district.
    prompt = await api.ask(B, "/experts")
    assert "Write a topic" in prompt.text
    found = await api.ask(B, "ekonomii społecznej, Ostróda")
    assert "Experts and trainers" in found.text and "Anna <Nowak> & syn (#1)" in found.text
    assert "Languages: Polish, Ukrainian" in found.text and "anna@example.org · 600 100 200" in found.text
    assert not [label for label, _ in found.buttons if "Delete" in label]  # not Bob's entry
    # Bob cannot delete it with a forged button either (its right stamp, even).
    stamp = (row.created_at - EPOCH) // timedelta(microseconds=1)
    forged = await api.click(B, found, f"xp:1:rmy:{stamp}")
    assert "Not allowed: an entry can be changed or deleted by the member who added it" in forged.text
    assert await _count(bot) == 1
    none = await api.ask(B, "/experts rachunkowość")
    assert "Nobody found for: rachunkowość" in none.text
    # Alicja finds her entry with a Delete button; deleting asks first.
    mine = await api.ask(A, "/experts rodo, podregion elbląski")
    ask = await api.click(A, mine, mine.button("Usuń #1"))
    assert "Usunąć z bazy wszystkie dane osoby Anna <Nowak> & syn (#1)?" in ask.text
    done = await api.click(A, ask, ask.button("Tak, usuń"))
    assert "Usunięto wpis #1" in done.text
    assert await _count(bot) == 0
    again = await api.click(A, mine, mine.button("Usuń #1"))
    assert "Wpisu #1 już nie ma" in again.text
    # Nothing of the person is left in the bot's own state either (forms, receipts).
    async with bot.ctx.db.read() as session:
        state = json.dumps([[k, d] for k, d in (await session.execute(
            select(BotState.key, BotState.data)))], ensure_ascii=False)
    assert "Nowak" not in state and "anna@example.org" not in state and "600 100 200" not in state
    assert api.errors == []


async def test_a_consent_button_of_an_earlier_summary_saves_nothing(bot: BotHarness) -> None:
    api = bot.api
    await bot.member(A, "Centrum Organizacji Pozarządowych Olsztyn", name="Alicja")
    first = await _summary(bot, A, contact="stary@example.org")
    # « Wstecz to the contact question, and another answer: a new summary, a new draft.
    back = await api.click(A, first, first.button("Wstecz"))
    assert "e-mail" in back.text
    second = await api.ask(A, "nowy@example.org")
    assert "nowy@example.org" in second.text
    stale = first.button("Osoba wyraziła zgodę")
    assert stale != second.button("Osoba wyraziła zgodę")
    api.press(A, first, stale)
    assert "wcześniejszej wersji wpisu" in await api.next_answer()
    assert await _count(bot) == 0
    saved = await api.click(A, second, second.button("Osoba wyraziła zgodę"))
    assert "#1" in saved.text
    # The same press again after the save: outdated, nothing saved twice.
    api.press(A, second, second.button("Osoba wyraziła zgodę"))
    assert await api.next_answer() == "Ten przycisk jest już nieaktualny."
    async with bot.ctx.db.read() as session:
        rows = list((await session.scalars(select(Expert))).all())
    assert [r.email for r in rows] == ["nowy@example.org"]
    assert api.errors == []


async def test_cancel_on_the_summary_stores_nothing(bot: BotHarness) -> None:
    api = bot.api
    await bot.member(A, "Centrum Organizacji Pozarządowych Olsztyn", name="Alicja")
    summary = await _summary(bot, A)
    cancelled = await api.click(A, summary, summary.button("Anuluj"))
    assert "Anulowano" in cancelled.text
    assert await _count(bot) == 0


async def test_pending_members_and_strangers_are_refused(bot: BotHarness) -> None:
    api = bot.api
    await bot.member(A, "Centrum Organizacji Pozarządowych Olsztyn", name="Alicja")
    await _summary(bot, A)
    org = await bot.org("Centrum Organizacji Pozarządowych Olsztyn")
    async with bot.ctx.db.transaction() as session:
        session.add(Member(telegram_id=PENDING, display_name="Piotr", organisation_id=org.id,
                           status=MemberStatus.PENDING))
    for who in (PENDING, STRANGER):
        for command in ("/experts", "/experts rodo", "/expert_add"):
            reply = await api.ask(who, command)
            assert "tylko zatwierdzeni członkowie sieci" in reply.text, (who, command)
            assert "Anna" not in reply.text


async def test_the_member_who_added_an_expert_edits_it(bot: BotHarness) -> None:
    api = bot.api
    await bot.member(A, "Centrum Organizacji Pozarządowych Olsztyn", name="Alicja")
    await bot.member(B, "OWES Elbląg", name="Bob")
    summary = await _summary(bot, A)
    await api.click(A, summary, summary.button("Osoba wyraziła zgodę"))
    mine = await api.ask(A, "/experts rodo")
    which = await api.click(A, mine, mine.button("Zmień #1"))
    assert "Co zmienić we wpisie #1?" in which.text
    ask = await api.click(A, which, which.button("Kontakt"))
    assert "e-mail" in ask.text
    refused = await api.ask(A, "brak")
    assert "Telefon: brak nie wygląda na numer telefonu" in refused.text
    edited = await api.ask(A, "nowa@example.org")
    assert "Zmieniono wpis #1" in edited.text and "Kontakt: nowa@example.org" in edited.text
    which = await api.click(A, mine, mine.button("Zmień #1"))
    ask = await api.click(A, which, which.button("Języki"))
    edited = await api.click(A, ask, ask.button("polski, angielski"))
    assert "Języki: polski, angielski" in edited.text
    async with bot.ctx.db.read() as session:
        row = await session.scalar(select(Expert))
        assert row is not None and (row.email, row.phone) == ("nowa@example.org", None)
        assert row.languages == ["pl", "en"]
    # Another member's forged Edit changes nothing.
    theirs = await api.ask(B, "/help")
    api.press(B, theirs, mine.button("Zmień #1"))
    assert "Brak uprawnień" in await api.next_answer()
    assert api.errors == []


async def test_the_form_survives_a_restart_and_a_redelivered_consent_saves_once(bot: BotHarness) -> None:
    api = bot.api
    await bot.member(A, "Centrum Organizacji Pozarządowych Olsztyn", name="Alicja")
    await api.ask(A, "/expert_add")
    await api.ask(A, "Jan Kowalski")
    await bot.restart()  # the answers so far are in the database
    districts = await api.ask(A, "księgowość")
    languages = await api.click(A, districts, districts.button("Cały region"))
    assert "✓ województwo warmińsko-mazurskie" in languages.text
    contact = await api.ask(A, "pl, en")
    assert "Adres e-mail lub numer telefonu" in contact.text
    summary = await api.ask(A, "+48 600 100 200")
    press = api.press(A, summary, summary.button("Osoba wyraziła zgodę"))
    assert "#1" in (await api.next_reply(A)).text
    await bot.restart()
    api.redeliver(press)  # Telegram offers the press again: said saved, not saved again
    again = await api.next_reply(A)
    assert "#1" in again.text
    async with bot.ctx.db.read() as session:
        rows = list((await session.scalars(select(Expert))).all())
    assert [(r.name, r.topics, r.districts, r.languages, r.phone) for r in rows] == [
        ("Jan Kowalski", ["księgowość"], ["warminsko-mazurskie"], ["pl", "en"], "+48 600 100 200")]


async def test_hostile_input_is_refused_plainly(bot: BotHarness) -> None:
    api = bot.api
    await bot.member(A, "Centrum Organizacji Pozarządowych Olsztyn", name="Alicja")
    too_long = await api.ask(A, "/experts " + "ą" * 500)
    assert "Za długi tekst: 500 znaków, limit to 100." in too_long.text
    outside = await api.ask(A, "/experts rodo, Kraków")
    assert "Nikogo nie znalazłem dla: rodo, Kraków" in outside.text
    listing = await api.ask(A, "/help")
    for data in ("xp:99999999999999999999999:rm:1", "xp:1:rm:²", "xp:0:rmy:1", "xp:d:x", "xp:ok:",
                 "xp:1:ed:1"):
        api.press(A, listing, data)
        await api.next_answer()  # answered (a toast or nothing), never left spinning
    assert await _count(bot) == 0
    group = await api.ask(A, "/experts rodo", chat_id=-100500, chat_type="group")
    assert "prywatnej rozmowie" in group.text and "rodo" not in group.text
    assert api.errors == []


async def test_added_by_me_lists_only_the_members_own_entries(bot: BotHarness) -> None:
    api = bot.api
    await bot.member(A, "Centrum Organizacji Pozarządowych Olsztyn", name="Alicja")
    await bot.member(B, "OWES Elbląg", name="Bob")
    prompt = await api.ask(B, "/experts")
    empty = await api.click(B, prompt, prompt.button("Dodane przeze mnie"))
    assert "nie ma jeszcze nikogo dodanego przez Ciebie" in empty.text
    summary = await _summary(bot, A)
    await api.click(A, summary, summary.button("Osoba wyraziła zgodę"))
    prompt = await api.ask(A, "/experts")
    mine = await api.click(A, prompt, prompt.button("Dodane przeze mnie"))
    assert "Osoby dodane przez Ciebie" in mine.text and "Anna <Nowak> & syn (#1)" in mine.text
    ask = await api.click(A, mine, mine.button("Usuń #1"))
    await api.click(A, ask, ask.button("Tak, usuń"))
    assert await _count(bot) == 0
    prompt = await api.ask(B, "/experts")
    theirs = await api.click(B, prompt, prompt.button("Dodane przeze mnie"))
    assert "Anna" not in theirs.text
    assert api.errors == []
