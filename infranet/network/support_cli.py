"""`infranet support add|import|list` and `infranet org edit`: the register of support
given and what an organisation offers where, from the command line.

Thin, as every sub-command: parse, call `network.support` / `support_import` /
`org_profile` in one transaction, print. The operator acts with admin rights, for any
organisation. Stored text goes through `for_terminal`; errors are the catalogs'
messages, in English like the rest of the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from infranet.commands import add_command
from infranet.context import AppContext
from infranet.validation import for_terminal as safe
from infranet.validation import json_for_terminal

EXIT_DUPLICATE = 3


def register(subparsers: Any) -> None:
    support = subparsers.add_parser(
        "support", help="the register of support given to organisations").add_subparsers(
        dest="support_command", metavar="ACTION", required=True)
    add = add_command(support, "add", cmd_add, "record support given (checked for duplicates)")
    add.add_argument("--org", required=True, metavar="ORG",
                     help="the member organisation that gave it (id, name or short name)")
    add.add_argument("--krs", help="the client's KRS (10 digits)")
    add.add_argument("--nip", help="the client's NIP (10 digits with a check digit)")
    add.add_argument("--name", required=True, help="the client organisation's or group's name")
    add.add_argument("--kind", choices=("ngo", "group"),
                     help="ngo (needs --krs or --nip) or group (informal; default without them)")
    add.add_argument("--district", required=True, help="the powiat (name, slug or TERYT)")
    add.add_argument("--service", required=True, help="e.g. training, legal-advice")
    add.add_argument("--date", help="the day it was given: 2026-11-05 or 5.11.2026 (default today)")
    add.add_argument("--referral", type=int, metavar="ID",
                     help="the accepted referral this support answers (it then counts once)")
    add.add_argument("--anyway", action="store_true",
                     help="save even when another organisation gave the same support lately")
    imp = add_command(support, "import", cmd_import,
                      "import a CSV (Excel: 'Nazwa organizacji;KRS;NIP;Powiat;Usługa;Data')")
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    imp.add_argument("--org", metavar="ORG",
                     help="the organisation that gave the support (else a column "
                          "'Organizacja wspierająca')")
    listing = add_command(support, "list", cmd_list, "who supported whom, newest first")
    listing.add_argument("--org", metavar="ORG", help="only support given by this organisation")
    listing.add_argument("--client", metavar="KRS|NIP|NAME",
                         help="only support to this client (a KRS, NIP or words of its name)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (≤ 100)")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--json", action="store_true")


def register_org(org_subparsers: Any) -> None:
    """`infranet org edit`, beside `org add|list` (the wiring passes their sub-parsers)."""
    edit = add_command(org_subparsers, "edit", cmd_org_edit,
                       "change the services an organisation offers and the districts it serves")
    edit.add_argument("org", metavar="ORG", help="id, name or short name")
    edit.add_argument("--services", help="comma-separated service codes, e.g. training,grants "
                                         "('' for none)")
    edit.add_argument("--districts", help="powiaty or subregions, comma-separated, e.g. "
                                          "'olsztyński, podregion ełcki' ('' for the whole region)")


def _print_error(exc: Exception) -> int:
    from infranet.errors import InfranetError

    text = exc.localized("en") if isinstance(exc, InfranetError) else str(exc)
    print(safe(f"error: {text}"), file=sys.stderr)
    return 1


async def cmd_add(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.errors import InfranetError
    from infranet.network.orgs import find_organisation
    from infranet.network.support import SupportInput, add_support, preview_support
    from infranet.network.support_import import parse_day, service_code
    from infranet.region import UnknownDistrict
    from infranet.storage.actors import Actor

    try:
        given_on = parse_day(args.date) if args.date else None
        async with ctx.db.transaction() as session:
            org = await find_organisation(session, args.org)
            data = SupportInput(client_name=args.name, krs=args.krs, nip=args.nip,
                                service=service_code(args.service), district=args.district,
                                given_on=given_on, client_kind=args.kind, organisation_id=org.id,
                                referral_id=args.referral, source="cli")
            preview = await preview_support(session, ctx, Actor.cli(), data)
            for dup in preview.duplicates:
                print(safe(f"warning: {dup.organisation} supported {preview.draft.client_name} with "
                           f"{preview.draft.service} on {dup.at.astimezone(ctx.tz):%d.%m.%Y}"),
                      file=sys.stderr)
            if preview.duplicates and not args.anyway:
                print("not saved: the same client had the same support from another organisation "
                      "lately; talk to them, or run again with --anyway", file=sys.stderr)
                return EXIT_DUPLICATE
            row = await add_support(session, ctx, Actor.cli(), data,
                                    warned=bool(preview.duplicates))
    except (InfranetError, UnknownDistrict, ValueError) as exc:
        return _print_error(exc)
    draft = preview.draft
    print(safe(f"support #{row.id}: {draft.organisation} -> {draft.client_name} "
               f"({draft.service}, {draft.district_name}, {draft.given_on:%d.%m.%Y})"))
    return 0


async def cmd_import(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.csvtext import CsvFileError
    from infranet.errors import InfranetError
    from infranet.network.support_import import import_support
    from infranet.storage.actors import Actor

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(safe(f"error: cannot read {args.file}: {exc.strerror}"), file=sys.stderr)
        return 1
    step = {"shown": -1}

    def progress(done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if (percent // 10 != step["shown"] and sys.stderr.isatty()) or done == total:
            step["shown"] = percent // 10
            print(f"\r{done}/{total} rows read", end="\n" if done == total else "",
                  file=sys.stderr, flush=True)

    try:
        async with ctx.db.transaction() as session:
            report = await import_support(session, ctx, Actor.cli(), data, organisation=args.org,
                                          progress=progress)
    except (CsvFileError, InfranetError) as exc:
        return _print_error(exc)
    for note in report.notes:
        print(safe(f"note: {note}"))
    for line in report.warned:
        print(safe(f"duplicate warned: {line}"))
    for line in report.refused:
        print(safe(f"refused: {line}"))
    print(f"{report.added} added, {len(report.warned)} with a duplicate warning (saved), "
          f"{len(report.refused)} refused, of {report.rows} rows")
    return 1 if report.refused and not report.added else 0


async def cmd_list(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.network.orgs import find_organisation
    from infranet.network.support_list import list_support
    from infranet.storage.actors import Actor

    async with ctx.db.read() as session:
        org_id = (await find_organisation(session, args.org)).id if args.org else None
        page = await list_support(session, ctx, Actor.cli(), limit=args.limit, offset=args.offset,
                                  organisation_id=org_id, client=args.client)
    rows: list[dict[str, Any]] = [
        {"date": e.given_on.isoformat(), "organisation": e.organisation, "client": e.client_name,
         "kind": e.client_kind, "krs": e.krs, "nip": e.nip, "service": e.service,
         "district": e.district, "record": e.record_id, "referral": e.referral_id}
        for e in page.entries]
    if args.json:
        print(json_for_terminal({"total": page.total, "entries": rows}))
        return 0
    for row in rows:
        ident = f"KRS {row['krs']}" if row["krs"] else f"NIP {row['nip']}" if row["nip"] else "group"
        via = f" (referral #{row['referral']})" if row["referral"] and not row["record"] else ""
        print(safe(f"{row['date']}  {row['organisation']} -> {row['client']} [{ident}]  "
                   f"{row['service'] or 'service not stated'}, "
                   f"{row['district'] or 'powiat not stated'}{via}"))
    shown = f"{page.offset + 1}-{page.offset + len(rows)} of {page.total}" if rows else f"0 of {page.total}"
    print(f"{shown} entries")
    return 0


async def cmd_org_edit(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.errors import InfranetError
    from infranet.network.org_profile import split_districts, update_profile
    from infranet.network.orgs import find_organisation
    from infranet.region import UnknownDistrict
    from infranet.storage.actors import Actor

    if args.services is None and args.districts is None:
        print("error: give --services and/or --districts", file=sys.stderr)
        return 2
    services = None if args.services is None else [
        s.strip() for s in args.services.split(",") if s.strip()]
    try:
        districts = None if args.districts is None else split_districts(args.districts)
        async with ctx.db.transaction() as session:
            org = await find_organisation(session, args.org)
            profile = await update_profile(session, ctx, Actor.cli(), org.id, services=services,
                                           districts=districts)
    except (InfranetError, UnknownDistrict) as exc:
        return _print_error(exc)
    print(safe(f"#{profile.organisation_id} {profile.name}: services "
               f"{', '.join(profile.services) or 'none'}; districts "
               f"{', '.join(profile.districts) or 'the whole region'}"))
    return 0
