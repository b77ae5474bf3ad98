"""`infranet newsletter ...` commands, parsed by the real argument parser and run
against real storage and a real SMTP server; plus the admin-only business rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from infranet.cli import build_parser
from infranet.errors import PermissionDenied
from infranet.newsletter.issues import add_note
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, Delivery, Member, MemberStatus, Subscriber
from tests.newsletter_support import add_subscribers, newsletter_context, seed_content
from tests.smtp_server import SmtpServer, smtp_fixture  # noqa: F401


async def run(ctx: Any, *argv: str) -> int:
    args = build_parser().parse_args(["newsletter", *argv])
    return await args.handler(ctx, args) or 0


async def rows(ctx: Any, model: Any) -> list[Any]:
    async with ctx.db.transaction() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def test_import_states_consent(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("email,language,districts,categories\n"
                        "ala@example.org,pl,olsztyński;ełcki,training\n"
                        "BOB@Example.org,en,,\n"
                        "nie-adres,pl,,\n"
                        "cyryl@example.org,pl,Olsztynek,\n", encoding="utf-8")
    try:
        with pytest.raises(SystemExit):  # neither --consented nor --not-consented
            build_parser().parse_args(["newsletter", "import", str(csv_file)])
        assert await run(ctx, "import", str(csv_file), "--consented") == 0
        out, err = capsys.readouterr()
        assert "imported: 2 confirmed" in out and "2 rejected" in out
        assert "line 4" in err and "line 5" in err and "olsztyński" in err.lower()
        subs = {s.email: s for s in await rows(ctx, Subscriber)}
        assert set(subs) == {"ala@example.org", "bob@example.org"}
        assert subs["ala@example.org"].districts == ["olsztynski", "elcki"]
        assert subs["bob@example.org"].language == "en"
        assert all(s.status == "confirmed" and s.consent_source == "import" for s in subs.values())
        assert smtp.messages == []

        other = tmp_path / "new.csv"
        other.write_text("email\nnew@example.org\nala@example.org\n", encoding="utf-8")
        assert await run(ctx, "import", str(other), "--not-consented") == 0
        out, _ = capsys.readouterr()
        assert "1 sent a confirmation e-mail, 1 already subscribed" in out
        assert smtp.recipients() == ["new@example.org"]
        subs = {s.email: s for s in await rows(ctx, Subscriber)}
        assert subs["new@example.org"].status == "pending"
        assert subs["ala@example.org"].status == "confirmed"
    finally:
        await ctx.db.dispose()


async def test_note_preview_send_status_resend(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings(retry_base_s=0.02,
                                                                        max_attempts=1))
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"ala@example.org": {"districts": ["ełcki"]},
                                    "bad@example.org": {}})
        assert await run(ctx, "note", "Zapraszamy na spotkanie sieci!") == 0
        assert await run(ctx, "preview") == 0
        out, err = capsys.readouterr()
        assert "Zapraszamy na spotkanie sieci!" in out and "Warsztaty grantowe w Olsztynie" in out
        assert "Subject:" in err
        assert await run(ctx, "preview", "--subscriber", "ala@example.org", "--html") == 0
        out, _ = capsys.readouterr()
        assert out.lstrip().startswith("<!DOCTYPE html>") and "Spotkanie sieci w Ełku" in out
        assert "Warsztaty grantowe w Olsztynie" not in out
        assert await run(ctx, "preview", "--send-test", "editor@example.org") == 0
        assert smtp.recipients() == ["editor@example.org"]
        assert await rows(ctx, Delivery) == []  # previews store nothing

        smtp.reject(lambda r: r == "bad@example.org", 451, times=1)
        assert await run(ctx, "build") == 0 and await run(ctx, "send") == 0
        out, _ = capsys.readouterr()
        assert "2 recipients" in out and "sent 1, failed 1" in out
        assert await run(ctx, "status", "--json") == 0
        [status] = json.loads(capsys.readouterr().out)
        assert (status["sent"], status["failed"], status["pending"]) == (1, 1, 0)
        assert await run(ctx, "resend", str(status["id"]), "--failed") == 0
        out, _ = capsys.readouterr()
        assert "1 failed deliveries" in out and "sent 1" in out
        assert sorted(smtp.recipients()) == ["ala@example.org", "bad@example.org", "editor@example.org"]
        assert await run(ctx, "status", str(status["id"])) == 0
        assert "sent 2, failed 0, unknown 0" in capsys.readouterr().out
        # the note went into that issue, the next preview no longer has it
        assert await run(ctx, "preview") == 0
        assert "Zapraszamy" not in capsys.readouterr().out
    finally:
        await ctx.db.dispose()


async def test_test_copy_is_the_preview_that_was_shown(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"ala@example.org": {"districts": ["ełcki"]}})
        assert await run(ctx, "preview", "--subscriber", "ala@example.org", "--language", "en",
                         "--send-test", "editor@example.org") == 0
        assert "test copy to editor@example.org: sent" in capsys.readouterr().out
        [sent] = smtp.messages
        text = sent.parse().get_body(("plain",)).get_content()
        assert "Upcoming events" in text and "Nadchodzące wydarzenia" not in text
        assert "Spotkanie sieci w Ełku" in text and "Warsztaty grantowe w Olsztynie" not in text
    finally:
        await ctx.db.dispose()


async def test_export_and_forget(db_url: str, tmp_path: Path, smtp: SmtpServer,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    ctx = await newsletter_context(db_url, tmp_path, smtp.smtp_settings())
    try:
        await seed_content(ctx)
        await add_subscribers(ctx, {"ala@example.org": {}, "ola@example.org": {}})
        assert await run(ctx, "build") == 0 and await run(ctx, "send") == 0
        capsys.readouterr()
        assert await run(ctx, "export", "ALA@example.org") == 0
        data = json.loads(capsys.readouterr().out)
        assert data["email"] == "ala@example.org" and data["consent"]["source"] == "import"
        assert data["deliveries"][0]["status"] == "sent"
        assert await run(ctx, "forget", "ala@example.org") == 0
        assert [s.email for s in await rows(ctx, Subscriber)] == ["ola@example.org"]
        emails = sorted((d.email or "-") for d in await rows(ctx, Delivery))
        assert emails == ["-", "ola@example.org"]
        audit = await rows(ctx, AuditLog)
        assert not any("ala@example.org" in json.dumps(a.details) for a in audit)
        assert await run(ctx, "forget", "ala@example.org") == 1
    finally:
        await ctx.db.dispose()


async def test_admin_rules(db_url: str, tmp_path: Path) -> None:
    from infranet.newsletter.issues import preview, resend
    from infranet.newsletter.subscriber_data import forget

    ctx = await newsletter_context(db_url, tmp_path)
    try:
        async with ctx.db.transaction() as session:
            member = Member(telegram_id=42, display_name="M", status=MemberStatus.APPROVED)
            session.add(member)
            await session.flush()
            actor = Actor.of(member)
            for call in (add_note(session, ctx, actor, "x"), preview(session, ctx, actor),
                         resend(session, ctx, actor, 1, "failed"), forget(session, ctx, actor, "a@b.pl")):
                with pytest.raises(PermissionDenied):
                    await call
    finally:
        await ctx.db.dispose()
