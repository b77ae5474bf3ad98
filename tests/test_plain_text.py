"""Text is plain text everywhere (issue 11).

One rule (`infranet.validation.plain_text`) for every stored field, whoever typed it:
invisible control characters, bidi overrides/isolates and lone surrogates are removed,
line breaks of every kind become "\\n" where a field keeps lines and a space where it
must stay one line; `<`, `>` and `&` are ordinary characters, stored as typed and
escaped by every output. Storage tests run on both engines; the newsletter e-mail is
read back from a real SMTP server.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from infranet.calendar.event_input import EventInput
from infranet.calendar.events import add_event, update_event
from infranet.calendar.ics_import import import_ics
from infranet.calendar.training_input import TrainingInput
from infranet.calendar.trainings import add_training
from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.network.orgs import OrgInput, add_organisation
from infranet.network.referrals import ReferralInput, create_referral
from infranet.newsletter.issues import build_issue, send_pending
from infranet.newsletter.subscribers import subscribe
from infranet.storage.actors import Actor
from infranet.storage.models import Event, Member, MemberStatus, Organisation, Referral, Subscriber
from infranet.validation import clean_text, for_terminal, json_for_terminal, plain_text
from tests.newsletter_support import add_subscribers, local, newsletter_context
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401
from tests.test_newsletter_messages import parts

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Warsaw

TITLE = "Szkolenie <dla> seniorów & <b>"
# The same title with invisible characters in it and broken over lines, as a paste may bring it.
TITLE_TYPED = "\ufeffSzkolenie\x00 <dla>\u202e seniorów\x1b &\r\n\t\u2066<b>\x9b\u2069"
DESCRIPTION_TYPED = "Linia 1 a < b & c > d\r\nLinia\x07 2\u2028Linia 3\x0bLinia 4\tkoniec\x00 \rLinia 5\ud800"
DESCRIPTION = "Linia 1 a < b & c > d\nLinia 2\nLinia 3\nLinia 4 koniec\nLinia 5"
# Characters that must never reach a terminal or a feed.
INVISIBLE = ["\x00", "\x07", "\x1b", "\x9b", "\r", "\t", "\u2028", "\u202e", "\u2066", "\ufeff", "\ud800"]


def visible_only(text: str | None) -> bool:
    return text is not None and not any(ch in text for ch in INVISIBLE)


# --- the rule itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "one_line", "lines"), [
    ("a < b & c > d", "a < b & c > d", "a < b & c > d"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("nul\x00 bell\x07 esc\x1b del\x7f csi\x9b", "nul bell esc del csi", "nul bell esc del csi"),
    ("abc\u202edef\u2066ghi\u2069", "abcdefghi", "abcdefghi"),  # bidi overrides and isolates
    ("lone\ud800 surrogate\udfff", "lone surrogate", "lone surrogate"),
    ("one\r\ntwo\rthree\nfour", "one two three four", "one\ntwo\nthree\nfour"),
    ("one\u2028two\u2029three\x85four", "one two three four", "one\ntwo\nthree\nfour"),
    ("one\x0btwo\x0cthree", "one two three", "one\ntwo\nthree"),
    ("tab\there  \n\n  next", "tab here next", "tab here\n\n  next"),
    ("\ufeff  padded \x00 ", "padded", "padded"),
    ("\x1b\u202e\x00", "", ""),
])
def test_one_rule_for_every_field(typed: str, one_line: str, lines: str) -> None:
    assert plain_text(typed) == one_line
    assert plain_text(typed, multiline=True) == lines


def test_a_field_of_invisible_characters_only_is_empty_and_named() -> None:
    with pytest.raises(ValidationFailed) as info:
        clean_text("\u202e\x00\x1b", "title", 200, required=True)
    assert info.value.localized("pl") == "Tytuł: to pole jest wymagane."
    assert info.value.localized("en") == "Title: this is required."
    # the limit counts what is shown, not what was removed
    assert clean_text("x" * 200 + "\x00" * 50, "title", 200) == "x" * 200


def test_terminal_output_shows_escapes_instead_of_obeying_them() -> None:
    stored = "Tytuł\x1b]0;pwned\x07\x1b[2J \u202eevil\ud800\r\nnext"
    shown = for_terminal(stored)
    assert shown == "Tytuł\\x1b]0;pwned\\x07\\x1b[2J \\u202eevil\\ud800\\r\nnext"
    as_json = json_for_terminal({"title": stored})
    assert json.loads(as_json) == {"title": stored}  # the same JSON, escaped
    assert visible_only(as_json.replace("\n", ""))


# --- business functions: everything stored goes through the rule ------------------------------


async def _member(ctx: AppContext, name: str, telegram_id: int) -> Member:
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, Actor.cli(), OrgInput(name=name))
        member = Member(telegram_id=telegram_id, display_name=name, organisation_id=org.id,
                        status=MemberStatus.APPROVED)
        session.add(member)
        await session.flush()
        return member


async def test_events_store_text_as_typed_without_invisible_characters(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    start = datetime(2026, 12, 5, 9, tzinfo=UTC)
    async with ctx.db.transaction() as session:
        row = await add_event(session, ctx, Actor.cli(), EventInput(
            title=TITLE_TYPED, start=start, end=start + timedelta(hours=3), district="olsztyński",
            description=DESCRIPTION_TYPED, location="Sala <3>\r\n\x1bul. Długa 1\u202e",
            url="https://example.org/a?b=1&c=2\x00", uid="\u202eimport-1@example.org\x00"))
        event_id = row.id
    async with ctx.db.transaction() as session:
        stored = await session.get_one(Event, event_id)
        assert stored.title == TITLE
        assert stored.description == DESCRIPTION
        assert stored.location == "Sala <3> ul. Długa 1"
        assert stored.url == "https://example.org/a?b=1&c=2"
        assert stored.uid == "import-1@example.org"

    # the feed carries the text as text, and a strict parser reads every line of it
    from icalendar import Calendar

    from infranet.calendar.service import build
    from infranet.http import create_app

    app = create_app(ctx, [build(ctx)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        feed = await client.get("/calendar.ics")
    assert feed.status_code == 200 and visible_only(feed.text.replace("\r\n", "").replace("\t", ""))
    [vevent] = Calendar.from_ical(feed.text).walk("VEVENT")
    assert (str(vevent["SUMMARY"]), str(vevent["UID"])) == (TITLE, "import-1@example.org")
    assert str(vevent["LOCATION"]).startswith("Sala <3> ul. Długa 1")

    async with ctx.db.transaction() as session:
        await update_event(session, ctx, Actor.cli(), event_id, EventInput(
            title="a < b & c > d\u2029\x07", start=start, end=start + timedelta(hours=3),
            district="olsztyński", description="<i>x</i>\x85<u>y</u>"))
    async with ctx.db.transaction() as session:
        stored = await session.get_one(Event, event_id)
        assert (stored.title, stored.description) == ("a < b & c > d", "<i>x</i>\n<u>y</u>")


async def test_trainings_referrals_and_organisations_follow_the_same_rule(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    alice = await _member(ctx, "Fundacja <Alfa> & Co\u202e\x1b", 101)
    bob = await _member(ctx, "Stowarzyszenie Beta", 202)
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, Actor.cli(), OrgInput(
            name="Koło\u2066 Gospodyń\r\nWiejskich\x00", short_name="\u202eKGW\x07",
            website="https://kgw.example.org/\x1b", description=DESCRIPTION_TYPED))
        org_id = org.id
        alice_actor = Actor.of(await session.get_one(Member, alice.id))
        view = await add_training(session, ctx, alice_actor, TrainingInput(
            title=TITLE_TYPED, sessions=[(date(2026, 12, 5), date(2026, 12, 5))],
            deadline=date(2026, 12, 1), target_group="seniorzy <65+> &\x00 opiekunowie\u2028",
            how_to_apply="https://example.org/zapisy\x1b", description=DESCRIPTION_TYPED,
            location="\u202eDom Kultury\x07"))
        training_id = view.training.id
        referral = await create_referral(session, ctx, alice_actor, ReferralInput(
            to_org_id=bob.organisation_id or 0, client_kind="person",
            client_name="Jan <Kowalski>\u202e & syn\x1b", client_contact="tel. 600\x00 100 200\r\n",
            need=DESCRIPTION_TYPED, consent=True))
        referral_id = referral.id
    async with ctx.db.transaction() as session:
        first = await session.get_one(Organisation, alice.organisation_id)
        assert first.name == "Fundacja <Alfa> & Co"
        org = await session.get_one(Organisation, org_id)
        assert (org.name, org.short_name, org.website) == (
            "Koło Gospodyń Wiejskich", "KGW", "https://kgw.example.org/")
        assert org.description == DESCRIPTION
        from infranet.storage.models import Training

        training = await session.get_one(Training, training_id)
        assert training.title == TITLE and training.description == DESCRIPTION
        assert training.target_group == "seniorzy <65+> & opiekunowie"
        assert training.apply_url == "https://example.org/zapisy"
        [session_row] = (await session.scalars(select(Event).where(Event.training_id == training_id))).all()
        assert session_row.title == TITLE and session_row.location == "Dom Kultury"
        referral = await session.get_one(Referral, referral_id)
        assert referral.client_name == "Jan <Kowalski> & syn"
        assert referral.client_contact == "tel. 600 100 200"
        assert referral.need == DESCRIPTION


async def test_subscriber_fields_lose_what_was_pasted_along(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    async with ctx.db.transaction() as session:
        result = await subscribe(session, ctx, "\ufeff Ala@Example.org\u2066", source="form",
                                 language="pl\x00", districts=["olsztyński\u202e"],
                                 categories=["\x1btraining"])
    async with ctx.db.transaction() as session:
        row = await session.get_one(Subscriber, result.subscriber_id)
        assert (row.email, row.language, row.districts, row.categories) == (
            "ala@example.org", "pl", ["olsztynski"], ["training"])


ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Test//PL\r
BEGIN:VEVENT\r
UID:\u202egoogle-1@example.com\x00\r
DTSTART:20261205T090000Z\r
DTEND:20261205T120000Z\r
SUMMARY:<b>nie</b>\r
DESCRIPTION:Opis\x07 z dzwonkiem\\nDruga linia\x1b[2J\r
LOCATION:Sala <3> & Co\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:google-2@example.com\r
DTSTART:20261206T090000Z\r
DTEND:20261206T120000Z\r
SUMMARY:a < b & c > d\r
END:VEVENT\r
END:VCALENDAR\r
"""


async def test_ics_import_takes_text_as_text_and_drops_controls(ctx: AppContext) -> None:
    ctx.clock = lambda: NOW
    async with ctx.db.transaction() as session:
        result = await import_ics(session, ctx, Actor.cli(), ICS)
    assert (result.added, result.updated) == (2, 0)
    async with ctx.db.transaction() as session:
        rows = {e.uid: e for e in (await session.scalars(select(Event))).all()}
    assert set(rows) == {"google-1@example.com", "google-2@example.com"}
    first, second = rows["google-1@example.com"], rows["google-2@example.com"]
    assert first.title == "<b>nie</b>" and second.title == "a < b & c > d"
    assert first.description == "Opis z dzwonkiem\nDruga linia[2J"
    assert first.location == "Sala <3> & Co"
    # the same file again: found by its cleaned UID, nothing changes
    async with ctx.db.transaction() as session:
        again = await import_ics(session, ctx, Actor.cli(), ICS)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)


# --- the CLI: controls typed or imported are never stored, stored ones never printed -----------


async def run(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


async def test_cli_add_import_and_list_keep_controls_off_the_terminal(
        ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx.clock = lambda: NOW
    assert await run(ctx, "events", "add", "--title", "Forum\x1b[31m NGO\u202e <b>&</b>",
                     "--start", "5.12.2026 10:00", "--end", "12:00", "--district", "olsztyński",
                     "--description", "Linia 1\r\nLinia\x07 2", "--location", "Sala\x00 5") == 0
    ics = tmp_path / "in.ics"
    ics.write_text(ICS, encoding="utf-8", newline="")
    assert await run(ctx, "events", "import", str(ics)) == 0
    async with ctx.db.transaction() as session:
        added = (await session.scalars(select(Event).where(Event.source == "cli"))).one()
        assert (added.title, added.description, added.location) == (
            "Forum[31m NGO <b>&</b>", "Linia 1\nLinia 2", "Sala 5")
        # a title stored before the rule existed (written past the business functions)
        await session.execute(update(Event).where(Event.id == added.id)
                              .values(title="Stare\x1b]0;pwned\x07\x1b[2J\u202e"))
        titles = [e.title for e in (await session.scalars(select(Event))).all()]
    assert all(visible_only(t) for t in titles if not t.startswith("Stare"))
    capsys.readouterr()
    assert await run(ctx, "events", "list", "--from", "1.12.2026", "--to", "31.12.2026") == 0
    assert await run(ctx, "events", "list", "--from", "1.12.2026", "--to", "31.12.2026", "--json") == 0
    assert await run(ctx, "events", "cancel", str(added.id)) == 0
    out = capsys.readouterr().out
    assert "Stare\\x1b]0;pwned\\x07\\x1b[2J\\u202e" in out  # shown, not obeyed
    assert "<b>nie</b>" in out and "a < b & c > d" in out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out


# --- outputs escape what is text ------------------------------------------------------------


async def test_newsletter_escapes_html_and_shows_text_as_typed(db_url: str, tmp_path: Path,
                                                              smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        async with ctx.db.transaction() as session:
            await add_event(session, ctx, Actor.cli(), EventInput(
                title=TITLE_TYPED, start=local(ctx, 2, 10), end=local(ctx, 2, 14),
                district="m. Olsztyn", category="training", location="Sala <3> & Co"))
        await add_subscribers(ctx, {"anna@example.org": {}})
        async with ctx.db.transaction() as session:
            await build_issue(session, ctx, Actor.cli(), period_key="plain-text")
        await send_pending(ctx)
        [received] = smtp.messages
        text, html = parts(received.parse())
        assert "Szkolenie &lt;dla&gt; seniorów &amp; &lt;b&gt;" in html and "<dla>" not in html
        assert "Sala &lt;3&gt; &amp; Co" in html
        assert TITLE in text and "Sala <3> & Co" in text
        assert visible_only(text.replace("\r", "").replace("\t", " "))
    finally:
        await ctx.db.dispose()


async def test_web_subscription_form_cleans_and_escapes(db_url: str, tmp_path: Path,
                                                        smtp: SmtpServer) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from infranet.http import create_app
    from infranet.newsletter import service

    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        app = create_app(ctx, [service.build(ctx, AsyncIOScheduler())])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="https://newsletter.example.org") as client:
            bad = await client.post("/newsletter/subscribe", data={
                "email": "<b>ala</b> & kot", "consent": "yes", "language": "pl"})
            assert bad.status_code == 400
            assert "&lt;b&gt;ala&lt;/b&gt; &amp; kot" in bad.text and "<b>ala</b>" not in bad.text
            answer = await client.post("/newsletter/subscribe", data={
                "email": "\ufeffala@example.org\u2066", "consent": "yes", "language": "pl",
                "districts": ["olsztyński\u202e"]})
            assert answer.status_code == 200, answer.text
        async with ctx.db.transaction() as session:
            [row] = (await session.scalars(select(Subscriber))).all()
            assert (row.email, row.districts) == ("ala@example.org", ["olsztynski"])
    finally:
        await ctx.db.dispose()


# --- what the CLI and the admin functions store --------------------------------------------------


async def test_names_and_notes_from_the_cli_and_admin_functions_are_plain_text(ctx: AppContext) -> None:
    """The CLI's `newsletter note` and `member add-admin`, and a join request, store no control
    characters: a note is shown in every newsletter and a name on every admin's screen."""
    from infranet.network.members import add_admin
    from infranet.network.membership import JoinRequest, ask_to_join
    from infranet.newsletter.issues import add_note

    system = Actor.system()
    async with ctx.db.transaction() as session:
        admin = await add_admin(session, system, 501, display_name="Ewa\x1b[2J \u202eAdmin")
        note = await add_note(session, ctx, Actor.of(admin),
                              "Spotkanie\x07 sieci\r\nw piątek\x00 a < b")
        org = await add_organisation(session, ctx, system, OrgInput(name="COP Ełk", type="COP"))
        member = (await ask_to_join(session, ctx, JoinRequest(
            telegram_id=502, display_name="Jan\x9b Kowalski\u2066", username=None, language="pl",
            organisation_id=org.id))).member
    assert admin.display_name == "Ewa[2J Admin"
    assert note.text == "Spotkanie sieci\nw piątek a < b"
    assert member.display_name == "Jan Kowalski"


async def test_org_list_shows_old_control_characters_escaped(
        ctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    """A name stored before the plain-text rule cannot drive the admin's terminal through
    `org list`, in either of its forms."""
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, Actor.system(), OrgInput(name="COP Gołdap",
                                                                              type="COP"))
        await session.execute(update(Organisation).where(Organisation.id == org.id)
                              .values(name="COP\x1b]0;pwned\x07 Gołdap\u202e"))
    assert await run(ctx, "org", "list") == 0
    listed = capsys.readouterr().out
    assert await run(ctx, "org", "list", "--json") == 0
    as_json = capsys.readouterr().out
    assert visible_only((listed + as_json).replace("\n", "")), listed + as_json
    assert "COP\\x1b]0;pwned\\x07 Gołdap\\u202e" in listed
    assert json.loads(as_json)[0]["name"] == "COP\x1b]0;pwned\x07 Gołdap\u202e"
