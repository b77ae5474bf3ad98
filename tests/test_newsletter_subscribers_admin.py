"""The secretariat sees and manages its subscribers from the CLI, and imports the files
people actually have (Polish Excel: `;`, Windows-1250 or UTF-8 with a BOM, CRLF, headers
as typed). Real storage on both engines, real SMTP for the confirmation e-mails."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from infranet.cli import build_parser
from infranet.storage.models import AuditLog, Subscriber
from tests.newsletter_support import add_subscribers, newsletter_context
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401


async def run(ctx: Any, *argv: str) -> int:
    args = build_parser().parse_args(["newsletter", *argv])
    return await args.handler(ctx, args) or 0


async def subscribers(ctx: Any) -> dict[str, Subscriber]:
    async with ctx.db.transaction() as session:
        return {s.email: s for s in (await session.scalars(select(Subscriber))).all()}


async def test_polish_excel_cp1250_semicolons(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Excel's "CSV (rozdzielany przecinkami)" on a Polish Windows: cp1250, `;`, CRLF."""
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    data = ("Imię;Nazwisko;E-mail;Język;Powiaty\r\n"
            "Łucja;Żółć;lucja@example.org;pl;ełcki\r\n"
            "Grzegorz;Brzęczyszczykiewicz;nie-adres;pl;\r\n"
            "Ścibor;Ćwik;scibor@example.org;en;\r\n"
            ";;;;\r\n").encode("cp1250")
    path = tmp_path / "lista.csv"
    path.write_bytes(data)
    try:
        assert await run(ctx, "import", str(path), "--consented") == 0
        out, err = capsys.readouterr()
        assert "imported: 2 confirmed" in out and "1 rejected" in out
        assert "Windows-1250" in err and "line 3" in err
        subs = await subscribers(ctx)
        assert set(subs) == {"lucja@example.org", "scibor@example.org"}
        assert subs["lucja@example.org"].districts == ["elcki"]
        assert subs["scibor@example.org"].language == "en"
    finally:
        await ctx.db.dispose()


@pytest.mark.parametrize("header", ["adres e-mail", "Email", "E-MAIL"])
async def test_utf8_bom_headers_in_any_case(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                            header: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Excel's "CSV UTF-8": a BOM before the header; the header as someone typed it."""
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    path = tmp_path / "lista.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"Nazwa;{header}\r\nKoło Łąk;kolo@example.org\r\n"
                     .encode())
    try:
        assert await run(ctx, "import", str(path), "--not-consented") == 0
        out, err = capsys.readouterr()
        assert "1 sent a confirmation e-mail" in out and "Windows-1250" not in err
        assert smtp.recipients() == ["kolo@example.org"]
        assert (await subscribers(ctx))["kolo@example.org"].status == "pending"
    finally:
        await ctx.db.dispose()


async def test_file_without_email_column_names_line_one(db_url: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path)
    path = tmp_path / "lista.csv"
    path.write_bytes("Imię;Telefon\r\nAla;123\r\n".encode("cp1250"))
    try:
        assert await run(ctx, "import", str(path), "--consented") == 1
        _, err = capsys.readouterr()
        assert "line 1" in err and "e-mail" in err and "Imię" in err
        assert await subscribers(ctx) == {}
    finally:
        await ctx.db.dispose()


async def test_list_count_export_unsubscribe(db_url: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path)
    await add_subscribers(ctx, {"ala@example.org": {"districts": ["ełcki"]},
                                "bob@example.org": {"language": "en"},
                                "cyryl@example.org": {"districts": ["m. Olsztyn"]}})
    try:
        assert await run(ctx, "subscribers", "count") == 0
        out, _ = capsys.readouterr()
        assert "total: 3" in out and "status confirmed: 3" in out
        assert "language en: 1" in out and "district elcki: 1" in out
        assert "district (whole region): 1" in out

        # Ełk's readers: the one who chose it and the one who reads the whole region.
        assert await run(ctx, "subscribers", "list", "--district", "ełcki") == 0
        out, _ = capsys.readouterr()
        assert "ala@example.org" in out and "bob@example.org" in out
        assert "cyryl@example.org" not in out

        assert await run(ctx, "unsubscribe", "Cyryl@Example.org") == 0
        assert "unsubscribed" in capsys.readouterr()[0]
        assert (await subscribers(ctx))["cyryl@example.org"].status == "unsubscribed"
        async with ctx.db.transaction() as session:
            entry = (await session.scalars(select(AuditLog).where(
                AuditLog.action == "newsletter.unsubscribe"))).one()
        assert entry.actor == "cli"

        assert await run(ctx, "subscribers", "export", "--status", "unsubscribed") == 0
        out, _ = capsys.readouterr()
        exported = list(csv.DictReader(io.StringIO(out)))
        assert [r["email"] for r in exported] == ["cyryl@example.org"]
        assert exported[0]["districts"] == "olsztyn" and exported[0]["unsubscribed_at"]

        assert await run(ctx, "subscribers", "list", "--status", "confirmed") == 0
        out, _ = capsys.readouterr()
        assert "cyryl@example.org" not in out and "ala@example.org" in out
    finally:
        await ctx.db.dispose()


async def test_list_prints_stored_text_safely(db_url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """An address stored before today's rules cannot drive the admin's terminal."""
    ctx = await newsletter_context(db_url, tmp_path)
    async with ctx.db.transaction() as session:
        session.add(Subscriber(email="x\x1b[2J@example.org", status="confirmed", language="pl",
                               districts=[], categories=[], token_version=0, hard_bounces=0,
                               confirm_sends=0))
    try:
        assert await run(ctx, "subscribers", "list") == 0
        out, _ = capsys.readouterr()
        assert "\x1b" not in out and "\\x1b[2J" in out
    finally:
        await ctx.db.dispose()


async def test_an_issue_kept_out_of_the_public_archive(db_url: str, tmp_path: Path,
                                                       smtp: SmtpServer,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Hidden: not listed, its page and text 404 over real HTTP; its readers still get it."""
    import httpx

    from infranet.newsletter.issues import build_issue, send_pending
    from infranet.storage.actors import Actor
    from tests.http_app import assembled, served
    from tests.newsletter_support import seed_content

    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"ala@example.org": {}})
        async with ctx.db.transaction() as session:
            built = await build_issue(session, ctx, Actor.cli(), period_key="members-only")
        assert built.issue is not None
        issue_id = built.issue.id
        assert await run(ctx, "archive", str(issue_id), "--hide") == 0
        assert "kept out" in capsys.readouterr()[0]
        assert await run(ctx, "archive", "99999999999", "--hide") == 1
        await send_pending(ctx)
        assert smtp.recipients() == ["ala@example.org"]
        # The copy does not offer a web version that is not there.
        copy = smtp.messages[0].parse()
        for part in copy.get_payload():
            assert f"/newsletter/archive/{issue_id}" not in part.get_content()
        assert "Wersja w przeglądarce" not in copy.get_payload()[0].get_content()

        async with assembled(ctx) as app, served(app.app) as url, httpx.AsyncClient() as client:
            index = await client.get(f"{url}/newsletter/archive")
            page = await client.get(f"{url}/newsletter/archive/{issue_id}")
            text = await client.get(f"{url}/newsletter/archive/{issue_id}.txt")
            assert index.status_code == 200 and f"/newsletter/archive/{issue_id}" not in index.text
            assert page.status_code == 404 and text.status_code == 404

            assert await run(ctx, "archive", str(issue_id), "--show") == 0
            index = await client.get(f"{url}/newsletter/archive")
            page = await client.get(f"{url}/newsletter/archive/{issue_id}")
            assert f"/newsletter/archive/{issue_id}" in index.text and page.status_code == 200
    finally:
        await ctx.db.dispose()


async def test_build_no_archive_keeps_the_new_issue_out(db_url: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from infranet.storage.models import NewsletterIssue
    from tests.newsletter_support import seed_content

    ctx = await newsletter_context(db_url, tmp_path)
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"ala@example.org": {}})
        assert await run(ctx, "build", "--no-archive") == 0
        async with ctx.db.transaction() as session:
            issue = (await session.scalars(select(NewsletterIssue))).one()
        assert issue.archived is False
        assert await run(ctx, "build", "--force") == 0  # without the flag: public
        async with ctx.db.transaction() as session:
            issues = (await session.scalars(select(NewsletterIssue)
                                            .order_by(NewsletterIssue.id))).all()
        assert [i.archived for i in issues] == [False, True]
    finally:
        await ctx.db.dispose()
