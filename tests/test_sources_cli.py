"""`infranet sources add|list|remove|check` through the real argument parser and handlers,
against a calendar served on 127.0.0.1. Both engines."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infranet.cli import build_parser
from infranet.context import AppContext
from infranet.errors import InfranetError
from tests.calendar_server import CalendarServer, calendar_server
from tests.conftest import make_context
from tests.test_calendar_sources import FIRST

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def sctx(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    context = await make_context(db_url, tmp_path / "data", sources={"allow_private": True,
                                                                     "timeout_seconds": 2})
    context.clock = lambda: NOW
    yield context
    await context.db.dispose()


@pytest.fixture
async def server() -> AsyncIterator[CalendarServer]:
    async with calendar_server() as running:
        yield running


async def run(ctx: AppContext, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.handler(ctx, args) or 0


async def test_add_list_check_remove(sctx: AppContext, server: CalendarServer,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(sctx, "org", "add", "COP Olsztyn") == 0
    server.ics("cop.ics", FIRST)
    url = server.url("cop.ics")
    assert await run(sctx, "sources", "add", "COP Olsztyn", url.replace("http://", "webcal://"),
                     "--district", "olsztyński", "--category", "training") == 0
    out = capsys.readouterr().out
    # webcal:// is https://; our test server speaks http, so follow it by its own address too.
    assert "following #1 127.0.0.1: https://127.0.0.1:" in out and "sources check 1" in out
    assert await run(sctx, "sources", "add", "1", url, "--name", "Kalendarz COP") == 0
    capsys.readouterr()
    with pytest.raises(InfranetError, match=r"already followed \(#2\)"):
        await run(sctx, "sources", "add", "COP Olsztyn", url)

    assert await run(sctx, "sources", "check", "2") == 0
    assert "#2 Kalendarz COP: imported: 3 added, 0 updated" in capsys.readouterr().out
    assert await run(sctx, "sources", "check", "2") == 0
    assert "unchanged since the last import (the server said 304" in capsys.readouterr().out

    assert await run(sctx, "sources", "list", "--json") == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[1]["state"] == "not fetched yet" and rows[1]["district"] == "olsztynski"
    assert rows[2]["state"] == "ok at 2026-12-01 09:00 UTC" and rows[2]["organisation"] == "COP Olsztyn"

    server.status("cop.ics", 500)
    assert await run(sctx, "sources", "check", "2") == 1
    assert "failed (1 in a row): 127.0.0.1 answered with HTTP error 500" in capsys.readouterr().err
    assert await run(sctx, "sources", "list") == 0
    assert "failing (1x): 127.0.0.1 answered with HTTP error 500" in capsys.readouterr().out

    assert await run(sctx, "sources", "remove", "2") == 0
    assert "no longer following #2 Kalendarz COP" in capsys.readouterr().out
    with pytest.raises(InfranetError, match="no followed calendar #2"):
        await run(sctx, "sources", "check", "2")
    assert await run(sctx, "sources", "list", "--org", "COP Olsztyn") == 0
    assert "#2" not in capsys.readouterr().out


async def test_refusals_name_what_is_wrong(sctx: AppContext) -> None:
    assert await run(sctx, "org", "add", "COP Olsztyn") == 0
    with pytest.raises(InfranetError, match="not an address the service can fetch"):
        await run(sctx, "sources", "add", "COP Olsztyn", "file:///etc/passwd")
    sctx.settings.sources.allow_private = False
    with pytest.raises(InfranetError, match=r"169\.254\.169\.254, an internal address"):
        await run(sctx, "sources", "add", "COP Olsztyn", "http://169.254.169.254/latest/")
    with pytest.raises(InfranetError, match="no organisation"):
        await run(sctx, "sources", "add", "Nieznana", "https://calendar.example/a.ics")
