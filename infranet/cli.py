"""The `infranet` command line. Sub-commands are thin: they parse, call the
component's business functions and print; components add their own through
`register(subparsers)` in their `cli` module."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from infranet.commands import add_command
from infranet.config import ConfigError, LoadedConfig, load_settings, masked_dump
from infranet.context import AppContext
from infranet.errors import InfranetError
from infranet.logs import setup_logging
from infranet.validation import for_terminal, json_for_terminal

log = logging.getLogger("infranet")


def build_parser() -> argparse.ArgumentParser:
    from infranet.calendar import cli as calendar_cli
    from infranet.calendar import sources_cli
    from infranet.insight import cli as insight_cli
    from infranet.network import experts_cli
    from infranet.network import support_cli as support_commands
    from infranet.newsletter import cli as newsletter_cli

    parser = argparse.ArgumentParser(
        prog="infranet",
        description="Chat bot, shared calendar and newsletter of a network of NGO-support "
                    "organisations.")
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $INFRANET_CONFIG, else ./config.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    add_command(sub, "run", cmd_run, "run the service (HTTP, bot, scheduler)", prepare_db=False)
    add_command(sub, "migrate", cmd_migrate, "apply pending database migrations",
                prepare_db=False)
    check = sub.add_parser("check-config", help="validate and print the effective configuration",
                           description="validate and print the effective configuration "
                                       "(secrets masked); exit 2 on errors")
    check.set_defaults(handler=None)
    health = sub.add_parser(
        "healthcheck", help="ask the running service's /healthz (exit 0 healthy, 1 not)",
        description="GET /healthz on the configured [http] host and port (0.0.0.0 asked on "
                    "127.0.0.1); exit 0 when it answers 200, else 1. The image's HEALTHCHECK.")
    health.set_defaults(handler=None)

    org = sub.add_parser("org", help="member organisations").add_subparsers(
        dest="org_command", metavar="ACTION", required=True)
    org_add = add_command(org, "add", cmd_org_add, "add an organisation")
    org_add.add_argument("name")
    org_add.add_argument("--type", default="other", help="LGD, COP, OWES, ROEFS, ... or other")
    org_add.add_argument("--short-name")
    org_add.add_argument("--district", action="append", default=[],
                         help="district served (name, slug or TERYT); repeatable")
    org_add.add_argument("--service", action="append", default=[],
                         help="service offered (e.g. training, legal-advice); repeatable")
    org_add.add_argument("--email")
    org_add.add_argument("--phone")
    org_add.add_argument("--website")
    org_add.add_argument("--publish-email", action="store_true",
                         help="show the e-mail on the public site (off unless given)")
    org_add.add_argument("--publish-phone", action="store_true",
                         help="show the phone on the public site (off unless given)")
    org_publish = add_command(org, "publish", cmd_org_publish,
                              "choose which contacts the public site shows")
    org_publish.add_argument("org", metavar="ORG", help="id, name or short name")
    org_publish.add_argument("--email", choices=("yes", "no"), help="public e-mail (site, feeds, API)")
    org_publish.add_argument("--phone", choices=("yes", "no"), help="public phone (site, feeds, API)")
    org_list = add_command(org, "list", cmd_org_list, "list organisations")
    org_list.add_argument("--json", action="store_true", help="print JSON")
    support_commands.register_org(org)

    member = sub.add_parser("member", help="network members").add_subparsers(
        dest="member_command", metavar="ACTION", required=True)
    add_admin = add_command(member, "add-admin", cmd_add_admin,
                            "make a Telegram user an approved admin")
    add_admin.add_argument("telegram_id", type=int, metavar="TELEGRAM_ID")
    unblock = add_command(member, "unblock", cmd_unblock, "lift the block of a Telegram user")
    unblock.add_argument("telegram_id", type=int, metavar="TELEGRAM_ID")

    demo = sub.add_parser("demo", help="demonstration data").add_subparsers(
        dest="demo_command", metavar="ACTION", required=True)
    add_command(demo, "seed", cmd_demo_seed, "load a small realistic data set")

    calendar_cli.register(sub)
    sources_cli.register(sub)
    newsletter_cli.register(sub)
    support_commands.register(sub)
    experts_cli.register(sub)
    insight_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        loaded = load_settings(args.config)
    except ConfigError as exc:
        print(f"infranet: {for_terminal(exc)}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        return check_config(loaded)
    if args.command == "healthcheck":
        from infranet.healthcheck import check_health

        healthy, line = check_health(loaded.settings.http)
        print(line, file=sys.stdout if healthy else sys.stderr)
        return 0 if healthy else 1
    from infranet.datadir import DataDirError, ensure_writable

    try:  # before anything logs: an unusable data directory is one line, not a traceback
        ensure_writable(loaded.settings.service.data_dir)
    except DataDirError as exc:
        print(f"infranet: {for_terminal(exc)}", file=sys.stderr)
        return 1
    setup_logging(loaded.settings)
    if args.command == "run":
        log.info("configuration: %s%s", loaded.source or
                 "no config file found, running on built-in defaults (see config.example.toml)",
                 f" over the defaults in {loaded.defaults_source}" if loaded.defaults_source else "")
    for override in loaded.env_overrides:  # a value of the operator's own file: a warning
        log.log(logging.WARNING if override.file == loaded.source else logging.INFO,
                "%s", override.message())
    try:
        return asyncio.run(_dispatch(args, loaded)) or 0
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, loaded: LoadedConfig) -> int | None:
    from infranet.app import StartupError, prepare_database

    try:
        ctx = AppContext.create(loaded.settings)
    except ValueError as exc:  # region file problems
        print(f"infranet: {for_terminal(exc)}", file=sys.stderr)
        return 2
    try:
        if args.prepare_db:
            await prepare_database(ctx)
        return await args.handler(ctx, args)
    except StartupError as exc:
        print(f"infranet: {for_terminal(exc)}", file=sys.stderr)
        return 1
    except (InfranetError, ValueError) as exc:
        print(f"infranet: {for_terminal(exc)}", file=sys.stderr)
        return 1
    finally:
        await ctx.db.dispose()


def check_config(loaded: LoadedConfig) -> int:
    print(f"# source: {loaded.source or 'built-in defaults (no config file found)'}")
    if loaded.defaults_source:
        print(f"# under it: the defaults in {loaded.defaults_source}")
    for override in loaded.env_overrides:
        print(f"# {override.message()}")
    print(json.dumps(masked_dump(loaded.settings), indent=2, ensure_ascii=False))
    try:
        from infranet.region import load_region

        load_region(loaded.settings.region.districts_file)
    except ValueError as exc:
        print(f"infranet: {for_terminal(exc)}", file=sys.stderr)
        return 2
    return 0


async def cmd_run(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.app import run_service

    await run_service(ctx)
    return 0


async def cmd_migrate(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.app import prepare_database
    from infranet.storage.migrate import head_revision, pending

    was_pending = await pending(ctx.db)
    await prepare_database(ctx)
    print("migrated to " + str(head_revision()) if was_pending
          else f"already at {head_revision()}: nothing to do")
    return 0


async def cmd_org_add(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.network.orgs import OrgInput, add_organisation
    from infranet.storage.actors import Actor

    data = OrgInput(name=args.name, type=args.type, short_name=args.short_name,
                    districts=args.district, services=args.service, contact_email=args.email,
                    phone=args.phone, website=args.website)
    async with ctx.db.transaction() as session:
        org = await add_organisation(session, ctx, Actor.cli(), data)
        if args.publish_email or args.publish_phone:
            from infranet.network.public_contacts import set_publication

            await set_publication(session, Actor.cli(), org.id, email=args.publish_email or None,
                                  phone=args.publish_phone or None, ctx=ctx)
    print(f"added organisation #{org.id}: {for_terminal(org.name)}")
    return 0


async def cmd_org_publish(ctx: AppContext, args: argparse.Namespace) -> int:
    """What the public site shows of an organisation's contacts (the website always)."""
    from infranet.errors import InfranetError
    from infranet.network.orgs import find_organisation
    from infranet.network.public_contacts import set_publication
    from infranet.storage.actors import Actor

    def choice(value: str | None) -> bool | None:
        return None if value is None else value == "yes"

    try:
        async with ctx.db.transaction() as session:
            org = await find_organisation(session, args.org)
            org = await set_publication(session, Actor.cli(), org.id, email=choice(args.email),
                                        phone=choice(args.phone), ctx=ctx)
    except InfranetError as exc:
        print(f"error: {exc.localized('en')}", file=sys.stderr)
        return 1
    shown = [name for name, on in (("e-mail", org.publish_email), ("phone", org.publish_phone)) if on]
    print(for_terminal(f"#{org.id} {org.name}: the site shows "
                       f"{', '.join(shown) or 'no e-mail or phone'} (and the website, if any)"))
    return 0


async def cmd_org_list(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.network.orgs import list_organisations

    async with ctx.db.transaction() as session:
        orgs = await list_organisations(session)
    rows: list[dict[str, Any]] = [{"id": o.id, "name": o.name, "type": o.type, "email": o.contact_email,
             "phone": o.phone, "districts": [d.name for d in o.districts]} for o in orgs]
    if args.json:
        print(json_for_terminal(rows))
        return 0
    for row in rows:
        print(for_terminal(f"#{row['id']:<4} {row['name']} [{row['type']}]  {row['email'] or '-'}  "
                           f"{', '.join(row['districts']) or 'whole region'}"))
    if not rows:
        print("no organisations yet: add one with 'infranet org add NAME' or 'infranet demo seed'")
    return 0


async def cmd_add_admin(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.network.members import add_admin
    from infranet.storage.actors import Actor

    async with ctx.db.transaction() as session:
        member = await add_admin(session, Actor.cli(), args.telegram_id)
    print(f"Telegram user {member.telegram_id} is now an admin")
    return 0


async def cmd_unblock(ctx: AppContext, args: argparse.Namespace) -> int:
    """The way back from a block made by mistake, also when no admin can use the bot."""
    from infranet.errors import InfranetError
    from infranet.network.members import get_member
    from infranet.network.membership import unblock_member
    from infranet.storage.actors import Actor

    try:
        async with ctx.db.transaction() as session:
            member = await get_member(session, args.telegram_id)
            if member is None:
                print(f"error: no member has the Telegram id {args.telegram_id}", file=sys.stderr)
                return 1
            member = await unblock_member(session, ctx, Actor.cli(), member.id)
    except InfranetError as exc:
        print(f"error: {exc.localized('en')}", file=sys.stderr)
        return 1
    state = "an approved member again" if member.is_approved else "free to ask to join again"
    print(for_terminal(f"Telegram user {member.telegram_id} ({member.display_name or '-'}) "
                       f"is unblocked: {state}"))
    return 0


async def cmd_demo_seed(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.demo import seed

    summary = await seed(ctx)
    print("demo data loaded: " + ", ".join(f"{n} {what}" for what, n in summary.items()))
    return 0
