"""What each reader's copy holds, read back from a real SMTP server: the categories they
chose (training notices included), money in their language, the editorial note's lines."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from infranet.i18n import format_amount
from infranet.newsletter.issues import add_note, build_issue, send_pending
from infranet.storage.actors import Actor
from infranet.storage.districts import district_ids
from infranet.storage.models import Training
from tests.newsletter_support import add_subscribers, newsletter_context, seed_content
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401


def parts(msg) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    payload = msg.get_payload()
    return payload[0].get_content(), payload[1].get_content()


async def test_training_notices_follow_the_readers_categories_and_locale(
        db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        seeded = await seed_content(ctx)
        async with ctx.db.transaction() as session:
            ids = await district_ids(session)
            session.add(Training(title="Kurs pisania wniosków", organisation_id=seeded["org"],
                                 district_id=ids["elblag"], cost_pln=Decimal("1250.5"),
                                 deadline=ctx.now().date() + timedelta(days=5),
                                 target_group="zarządy NGO", places=10,
                                 apply_url="https://example.org/kurs"))
            await add_note(session, ctx, Actor.cli(),
                           "Drodzy Państwo,\nzapraszamy na spotkanie.\n\nDo zobaczenia!")
        # Everyone reads the city of Elbląg (TERYT 2861), where the trainings are.
        await add_subscribers(ctx, {
            "fairs@example.org": {"districts": ["2861"], "categories": ["fair"]},
            "trainings@example.org": {"districts": ["2861"], "categories": ["training"]},
            "all@example.org": {"districts": ["2861"]},
            "en@example.org": {"districts": ["2861"], "language": "en"},
        })
        async with ctx.db.transaction() as session:
            await build_issue(session, ctx, Actor.cli(), period_key="reader-content")
        await send_pending(ctx)
        mail = {m.recipients[0]: parts(m.parse()) for m in smtp.messages}

        # Fairs only: the note still goes out, the training notices do not.
        fairs_text, _ = mail["fairs@example.org"]
        assert "Do zobaczenia!" in fairs_text
        assert "Szkolenie z księgowości" not in fairs_text and "Kurs pisania" not in fairs_text
        for reader in ("trainings@example.org", "all@example.org"):
            assert "Szkolenie z księgowości" in mail[reader][0]

        # Money as the reader writes it.
        text, html = mail["all@example.org"]
        assert "Koszt: 1\u00a0250,50 zł" in text and "1250.50" not in text
        assert "Cost: PLN 1,250.50" in mail["en@example.org"][0]

        # The note's single line break survives in the HTML part, escaped text around it.
        assert "Drodzy Państwo,<br>" in html and "zapraszamy na spotkanie." in html
    finally:
        await ctx.db.dispose()


def test_amounts_in_each_language() -> None:
    assert format_amount("50", "pl") == "50,00"
    assert format_amount(50, "en") == "50.00"
    assert format_amount("1234567.891", "pl") == "1\u00a0234\u00a0567,89"


async def test_my_districts_link_opens_the_feed_of_exactly_those_districts(
        db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    """The link the reader follows, fetched from a real uvicorn server: the ICS feed holds
    the events of their districts (and region-wide ones), not the others'."""
    import re

    import httpx

    from tests.http_app import assembled, served

    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"elk@example.org": {"districts": ["ełcki"]},
                                    "all@example.org": {}})
        async with ctx.db.transaction() as session:
            await build_issue(session, ctx, Actor.cli(), period_key="feeds")
        await send_pending(ctx)
        mail = {m.recipients[0]: parts(m.parse()) for m in smtp.messages}
        base = ctx.settings.http.public_base_url
        link = re.search(re.escape(base) + r"/calendar\.ics\?\S+", mail["elk@example.org"][0])
        assert link is not None, mail["elk@example.org"][0]
        assert link.group() in mail["elk@example.org"][1].replace("&amp;", "&")
        # A reader of everything is sent to the page where feeds are picked.
        assert f"{base}/calendar\r\n" in mail["all@example.org"][0]
        assert "/calendar.ics?" not in mail["all@example.org"][0]

        async with assembled(ctx) as app, served(app.app) as url, httpx.AsyncClient() as client:
            response = await client.get(link.group().replace(base, url))
        assert response.status_code == 200
        assert "Spotkanie sieci w Ełku" in response.text
        assert "Konferencja regionalna" in response.text
        assert "Warsztaty grantowe w Olsztynie" not in response.text
    finally:
        await ctx.db.dispose()


async def test_size_is_checked_per_copy_and_a_long_copy_links_to_the_rest(
        db_url: str, tmp_path: Path, smtp: SmtpServer) -> None:
    """400 events over the region: the whole issue is far over Gmail's clip size, but a
    one-district reader's copy is small and complete; a whole-region reader's copy keeps
    the first events of each district and links to the rest. Everyone gets mail."""
    from infranet.calendar.event_input import EventInput
    from infranet.calendar.events import add_event
    from infranet.newsletter.checks import HTML_LIMIT
    from tests.newsletter_support import local

    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    districts = ["ełcki", "m. Olsztyn", "olsztyński", "giżycki", "elbląski", "iławski",
                 "mrągowski", "piski"]
    try:
        async with ctx.db.transaction() as session:
            for n in range(400):
                await add_event(session, ctx, Actor.cli(), EventInput(
                    title=f"Spotkanie nr {n:03d} o funduszach dla organizacji pozarządowych",
                    start=local(ctx, 1 + n % 12, 9 + n % 8), end=local(ctx, 1 + n % 12, 17),
                    district=districts[n % len(districts)], category="meeting",
                    location=f"ul. Długa {n}, sala konferencyjna na pierwszym piętrze",
                    url=f"https://example.org/wydarzenia/{n}"))
        await add_subscribers(ctx, {"elk@example.org": {"districts": ["ełcki"]},
                                    "all@example.org": {}})
        async with ctx.db.transaction() as session:
            await build_issue(session, ctx, Actor.cli(), period_key="big")
        report = await send_pending(ctx)
        assert report.sent == 2
        mail = {m.recipients[0]: parts(m.parse()) for m in smtp.messages}

        elk_text = mail["elk@example.org"][0]
        assert elk_text.count("Spotkanie nr") == 50  # every Ełk event, nothing cut
        assert "Więcej wydarzeń" not in elk_text

        all_text, all_html = mail["all@example.org"]
        assert len(all_html.encode()) <= HTML_LIMIT
        assert "Więcej wydarzeń w kalendarzu" in all_text
        assert "Spotkanie nr 000" in all_text  # the first events of each district stay
        shown = all_text.count("Spotkanie nr")
        assert 8 <= shown < 400
        assert "jeszcze" in all_text and f"{ctx.settings.http.public_base_url}/calendar" in all_text
    finally:
        await ctx.db.dispose()


async def test_the_english_issue_has_an_english_title(db_url: str, tmp_path: Path,
                                                      smtp: SmtpServer) -> None:
    from email.header import decode_header, make_header

    from infranet.config import NewsletterSettings

    default = NewsletterSettings.model_fields["title"].default
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(),
                                   newsletter={"title": default})
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"en@example.org": {"language": "en"},
                                    "pl@example.org": {}})
        async with ctx.db.transaction() as session:
            await build_issue(session, ctx, Actor.cli(), period_key="titles")
        await send_pending(ctx)
        subjects = {m.recipients[0]: str(make_header(decode_header(m.parse()["Subject"])))
                    for m in smtp.messages}
        english = "Newsletter of the network of infrastructure organisations"
        assert subjects["en@example.org"].startswith(english)
        assert subjects["pl@example.org"].startswith(default)
        en_text = next(parts(m.parse())[0] for m in smtp.messages
                       if m.recipients[0] == "en@example.org")
        assert english in en_text and default not in en_text
    finally:
        await ctx.db.dispose()
