"""`infranet experts ...`: the base of experts and trainers from the command line, where
the operator acts as the network's secretariat (with admin rights).

    infranet experts add NAME --topic T --district D --language pl --email E --phone P
                         --consent-by TELEGRAM_ID     # the member who recorded the consent
    infranet experts list [--topic T] [--district D] [--language L] [--json]
    infranet experts edit ID [--topic T ...] [--email E] ...
    infranet experts forget EMAIL|ID                  # the person's request: deleted whole
    infranet experts export EMAIL|ID                  # the person's access request: JSON
    infranet experts consent-text [--lang en]         # what to show the person before `add`

Thin: the rules are `infranet.network.experts`; errors reach `cli._dispatch`, which prints
them in one line and exits 1. Stored text is printed through `for_terminal`.
"""

from __future__ import annotations

import argparse
from typing import Any

from infranet.commands import add_command
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from infranet.network.expert_search import SEARCH_MAX, search_experts
from infranet.network.experts import (
    CONSENT_MESSAGE,
    CONSENT_VERSION,
    ExpertChanges,
    ExpertInput,
    add_expert,
    district_names,
    export_expert,
    forget_expert,
    update_expert,
)
from infranet.network.members import get_member
from infranet.storage.actors import Actor
from infranet.storage.models import Expert
from infranet.validation import for_terminal, json_for_terminal


def register(subparsers: Any) -> None:
    experts = subparsers.add_parser("experts", help="the members' base of experts and trainers") \
        .add_subparsers(dest="experts_command", metavar="ACTION", required=True)
    add = add_command(experts, "add", cmd_add,
                      "add a person who agreed (consent text version " + CONSENT_VERSION + ")")
    add.add_argument("name", metavar="NAME")
    _fields(add)
    add.add_argument("--consent-by", required=True, type=int, metavar="TELEGRAM_ID",
                     help="the member who showed the consent text and recorded the person's consent")
    listing = add_command(experts, "list", cmd_list, "list or search the experts")
    listing.add_argument("--topic")
    listing.add_argument("--district", help="powiat or subregion (also finds those serving "
                                            "the subregion or region around it)")
    listing.add_argument("--language", help="ISO code or name (pl, en, uk, ukraiński)")
    listing.add_argument("--limit", type=int, default=SEARCH_MAX)
    listing.add_argument("--json", action="store_true", help="print JSON")
    edit = add_command(experts, "edit", cmd_edit, "change an expert's topics, districts, "
                                                   "languages or contact")
    edit.add_argument("expert_id", type=int, metavar="ID")
    edit.add_argument("--name")
    _fields(edit)
    forget = add_command(experts, "forget", cmd_forget,
                         "delete everything held about a person, on their request")
    forget.add_argument("key", metavar="EMAIL|ID")
    export = add_command(experts, "export", cmd_export,
                         "print everything held about a person (access request), as JSON")
    export.add_argument("key", metavar="EMAIL|ID")
    text = add_command(experts, "consent-text", cmd_consent_text,
                       "print the consent text to show the person before 'add'", prepare_db=False)
    text.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE)


def _fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", action="append", help="a topic; repeatable (or comma-separated)")
    parser.add_argument("--district", action="append",
                        help="powiat, subregion or 'region' served; repeatable")
    parser.add_argument("--language", action="append", help="ISO code or name; repeatable")
    parser.add_argument("--email")
    parser.add_argument("--phone")
    parser.add_argument("--note")


def _line(ctx: AppContext, row: Expert) -> str:
    contact = " · ".join(c for c in (row.email, row.phone) if c)
    return for_terminal(f"#{row.id:<4} {row.name}  [{', '.join(row.topics)}]  "
                        f"{', '.join(district_names(ctx, row))}  ({', '.join(row.languages)})  {contact}")


async def cmd_add(ctx: AppContext, args: argparse.Namespace) -> int:
    async with ctx.db.transaction() as session:
        recorder = await get_member(session, args.consent_by)
        if recorder is None or not recorder.is_approved:
            raise ValidationFailed("experts.consent_by_unknown", field="consent_by", value=args.consent_by)
        row = await add_expert(session, ctx, Actor.cli(), ExpertInput(
            name=args.name, topics=args.topic or [], districts=args.district or [],
            languages=args.language or ["pl"], email=args.email, phone=args.phone, note=args.note,
            consent=True, consent_version=CONSENT_VERSION, consent_by_member_id=recorder.id))
        print(f"added expert #{row.id}: {for_terminal(row.name)} (consent recorded by "
              f"{for_terminal(recorder.display_name or recorder.telegram_id)}, "
              f"text version {row.consent_text_version})")
    return 0


async def cmd_list(ctx: AppContext, args: argparse.Namespace) -> int:
    async with ctx.db.read() as session:
        found = await search_experts(session, ctx, Actor.cli(), topic=args.topic,
                                     district=args.district, language=args.language,
                                     limit=args.limit)
    if args.json:
        print(json_for_terminal([
            {"id": r.id, "name": r.name, "topics": r.topics, "districts": district_names(ctx, r),
             "languages": r.languages, "email": r.email, "phone": r.phone} for r in found.experts]))
        return 0
    for row in found.experts:
        print(_line(ctx, row))
    if not found.experts:
        print("no experts match" if any((args.topic, args.district, args.language))
              else "no experts yet: add one with 'infranet experts add NAME ... --consent-by ID'")
    elif found.more:
        print(f"(more than {len(found.experts)}: narrow the search or raise --limit)")
    return 0


async def cmd_edit(ctx: AppContext, args: argparse.Namespace) -> int:
    async with ctx.db.transaction() as session:
        row = await update_expert(session, ctx, Actor.cli(), args.expert_id, ExpertChanges(
            name=args.name, topics=args.topic, districts=args.district, languages=args.language,
            email=args.email, phone=args.phone, note=args.note))
        print(_line(ctx, row))
    return 0


async def cmd_forget(ctx: AppContext, args: argparse.Namespace) -> int:
    async with ctx.db.transaction() as session:
        ids = await forget_expert(session, ctx, Actor.cli(), args.key)
    print("deleted " + ", ".join(f"#{i}" for i in ids) + ": nothing about the person is kept")
    return 0


async def cmd_consent_text(ctx: AppContext, args: argparse.Namespace) -> int:
    print(t(args.lang, CONSENT_MESSAGE, version=CONSENT_VERSION))
    return 0


async def cmd_export(ctx: AppContext, args: argparse.Namespace) -> int:
    async with ctx.db.read() as session:
        held = await export_expert(session, ctx, Actor.cli(), args.key)
    print(json_for_terminal(held))
    return 0
