"""The yearly evaluation through `infranet report yearly`: the PDF's text (read back with
pdftotext) and the XLSX's cells carry the figures of a network counted by hand, on both
engines; the HTML escapes what organisations typed; coordination decisions are counted."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from infranet.calendar.coordination import record_decision
from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.insight.yearly import build_report, render_html
from infranet.storage.models import Organisation
from tests.test_insight_indicators import _network


async def run(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


async def _decisions(ctx: AppContext) -> None:
    async with ctx.db.transaction() as session:
        for outcome in ("moved_suggested", "moved_suggested", "moved_other", "kept", "dropped"):
            await record_decision(session, outcome=outcome, conflicts=2, source="bot",
                                  organisation_id=None)


def _pdf_text(path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext is missing: apt-get install poppler-utils (.ci/run does it)")
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    return re.sub(r"[ \t]+", " ", text)


async def test_the_pdf_carries_the_years_figures(ctx: AppContext, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    await _network(ctx)
    await _decisions(ctx)
    out = tmp_path / "ewaluacja-2026.pdf"
    assert await run(ctx, "report", "yearly", "2026", "-o", str(out)) == 0
    printed = capsys.readouterr().out
    assert "[1/3] gathering 2026" in printed and f"[3/3] written {out}" in printed
    text = _pdf_text(out)
    assert "Ewaluacja porozumienia 2026" in text
    for line in ("Organizacje członkowskie 3", "Wydarzenia w kalendarzu 8",
                 "Ostrzeżenia o kolizji, na które odpowiedziano 5",
                 "Przeniesione na proponowany wolny termin 2", "Termin pozostawiony 1",
                 "Fundacja Alfa 5", "Wsparte organizacje i grupy 2",
                 "Czytelnicy (potwierdzeni, dziś) 4", "Newsletter nie śledzi otwarć"):
        assert line in text, line
    assert re.search(r"olsztyński 1 20", text)  # trainings and places in its powiat
    assert "Alice" not in text and "Klub Orzeł" not in text and "@example.org" not in text


async def test_the_xlsx_has_one_sheet_per_table_with_numbers(ctx: AppContext, tmp_path: Path) -> None:
    await _network(ctx)
    out = tmp_path / "report.xlsx"
    assert await run(ctx, "report", "yearly", "2026", "--lang", "en", "-o", str(out)) == 0
    book = load_workbook(out)
    assert {"members", "coordination", "trainings", "referral_outcomes", "support",
            "newsletter", "white_spots", "map"} <= set(book.sheetnames)
    members = book["members"]
    assert members["A1"].value == "Members and their activity"
    assert [c.value for c in members[3]] == ["Member organisations", 3]
    trainings = {row[0]: row[1:] for row in book["trainings"].iter_rows(min_row=3, values_only=True)}
    assert trainings["olsztyński"] == (1, 20) and trainings["Total"] == (1, 20)
    spots = {row[0]: row[1:3] for row in book["white_spots"].iter_rows(min_row=3, values_only=True)}
    assert spots["legal advice"][1] == 20  # everywhere but powiat olsztyński in 2026


async def test_the_html_escapes_what_organisations_typed(ctx: AppContext) -> None:
    await _network(ctx)
    async with ctx.db.transaction() as session:
        await session.execute(update(Organisation).where(Organisation.name == "Fundacja Alfa")
                              .values(name="<script>alert(1)</script> & Co"))
    async with ctx.db.read() as session:
        report = await build_report(session, ctx, 2026, "pl")
    html = render_html(report)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert html.count("data-teryt") == 21  # the map


async def test_a_year_in_the_future_is_refused(ctx: AppContext, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ctx.clock = lambda: datetime(2026, 11, 23, tzinfo=UTC)
    assert await run(ctx, "report", "yearly", "2031", "-o", str(tmp_path / "x.pdf")) == 2
    assert "between 2000 and 2026" in capsys.readouterr().out
    assert not (tmp_path / "x.pdf").exists()
