"""`infranet sources add|list|remove|check`: the calendars followed by URL, from the command line.

Thin, as every sub-command: parse, call `calendar.sources` / `calendar.source_refresh` in one
transaction, print. The operator acts with admin rights, for any organisation. Stored text
(names, URLs, errors) goes through `for_terminal`. Errors are the catalogs' messages, in
English like the rest of the command line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infranet.commands import add_command
from infranet.context import AppContext
from infranet.storage.models import CalendarSource
from infranet.validation import for_terminal as safe
from infranet.validation import json_for_terminal


def register(subparsers: Any) -> None:
    sources = subparsers.add_parser(
        "sources", help="member calendars followed by URL").add_subparsers(
        dest="sources_command", metavar="ACTION", required=True)
    add = add_command(sources, "add", cmd_add,
                      "follow an organisation's calendar by URL (http, https or webcal)")
    add.add_argument("org", metavar="ORG", help="organisation (id, name or short name)")
    add.add_argument("url", metavar="URL")
    add.add_argument("--name", help="how the calendar is shown (default: its host)")
    add.add_argument("--district", help="district for events without one (name, slug or TERYT)")
    add.add_argument("--category", help="category for events without a known one")
    listing = add_command(sources, "list", cmd_list, "list the followed calendars and their state")
    listing.add_argument("--org", metavar="ORG", help="only this organisation's")
    listing.add_argument("--json", action="store_true")
    remove = add_command(sources, "remove", cmd_remove, "stop following a calendar (events stay)")
    remove.add_argument("source_id", type=int, metavar="ID")
    check = add_command(sources, "check", cmd_check, "fetch a calendar now and report")
    check.add_argument("source_id", type=int, metavar="ID")


async def _org_id(ctx: AppContext, value: str) -> int:
    from infranet.network.orgs import find_organisation

    async with ctx.db.read() as session:
        return (await find_organisation(session, value)).id


def _state(source: CalendarSource) -> str:
    if source.failures:
        return f"failing ({source.failures}x): {source.last_error or '?'}"
    if source.last_ok_at is None:
        return "not fetched yet"
    return f"ok at {source.last_ok_at:%Y-%m-%d %H:%M} UTC"


async def cmd_add(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.sources import add_source
    from infranet.storage.actors import Actor

    org_id = await _org_id(ctx, args.org)
    async with ctx.db.transaction() as session:
        source = await add_source(session, ctx, Actor.cli(), org_id, args.url, name=args.name,
                                  district=args.district, category=args.category)
        line = f"following #{source.id} {source.name}: {source.url}"
    print(safe(line))
    print(f"the next round fetches it (within minutes); 'infranet sources check {source.id}' "
          "fetches it now")
    return 0


async def cmd_list(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.sources import list_sources
    from infranet.storage.actors import Actor

    org_id = await _org_id(ctx, args.org) if args.org else None
    async with ctx.db.read() as session:
        rows = [{"id": s.id, "organisation": s.organisation.name, "name": s.name, "url": s.url,
                 "district": s.district, "category": s.category, "state": _state(s),
                 "failures": s.failures, "last_error": s.last_error,
                 "last_ok_at": s.last_ok_at.isoformat() if s.last_ok_at else None,
                 "next_fetch_at": s.next_fetch_at.isoformat() if s.next_fetch_at else None}
                for s in await list_sources(session, Actor.cli(), org_id)]
    if args.json:
        print(json_for_terminal(rows))
        return 0
    for row in rows:
        print(safe(f"#{row['id']:<4} {row['organisation']}: {row['name']}  {row['url'] or '(file)'}"
                   f"\n      {row['state']}"))
    if not rows:
        print("no calendars followed yet: add one with 'infranet sources add ORG URL'")
    return 0


async def cmd_remove(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.sources import remove_source
    from infranet.storage.actors import Actor

    async with ctx.db.transaction() as session:
        source = await remove_source(session, ctx, Actor.cli(), args.source_id)
        line = f"no longer following #{source.id} {source.name}; its events stay in the calendar"
    print(safe(line))
    return 0


async def cmd_check(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.calendar.source_refresh import check_source
    from infranet.storage.actors import Actor

    outcome = await check_source(ctx, Actor.cli(), args.source_id)
    head = f"#{outcome.source_id} {outcome.name}"
    if outcome.state == "failed":
        print(safe(f"{head}: failed ({outcome.failures} in a row): {outcome.error('en')}"),
              file=sys.stderr)
        return 1
    if outcome.state == "gone":
        print(f"#{outcome.source_id}: removed meanwhile; nothing recorded", file=sys.stderr)
        return 1
    if outcome.state == "imported" and outcome.report is not None:
        print(safe(f"{head}: imported: {outcome.report.summary()}"))
        for skipped in outcome.report.skipped:
            print(safe(f"  skipped line {skipped.line} ({skipped.uid}): {skipped.reason}"))
        for c in outcome.report.conflicts:
            print(safe(f"  conflict: {c.title} ({c.starts_at:%Y-%m-%d}) with {c.other_title}, "
                       f"{c.other_organisation}"))
    else:
        print(safe(f"{head}: unchanged since the last import"
                   + (" (the server said 304 Not Modified)" if outcome.state == "not_modified" else "")))
    return 0
