"""`infranet report yearly YEAR [--format html|pdf|xlsx] [--lang pl|en] -o FILE`: the
yearly evaluation of the agreement, written to a file, with its steps on the terminal.

Thin: the figures are `infranet.insight.yearly`'s."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from infranet.commands import add_command
from infranet.context import AppContext
from infranet.i18n import LANGUAGES
from infranet.insight.yearly import build_report, render_html, to_pdf, to_xlsx

FORMATS = ("html", "pdf", "xlsx")


def register(subparsers: Any) -> None:
    report = subparsers.add_parser("report", help="reports on the network") \
        .add_subparsers(dest="report_command", metavar="KIND", required=True)
    yearly = add_command(report, "yearly", cmd_yearly, "the yearly evaluation of the agreement")
    yearly.add_argument("year", type=int, metavar="YEAR")
    yearly.add_argument("--format", choices=FORMATS, default=None,
                        help="html, pdf or xlsx (default: from the file's extension, else pdf)")
    yearly.add_argument("--lang", choices=LANGUAGES, default="pl")
    yearly.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")


async def cmd_yearly(ctx: AppContext, args: argparse.Namespace) -> int:
    kind = args.format or (args.output.suffix.lstrip(".").lower()
                           if args.output.suffix.lstrip(".").lower() in FORMATS else "pdf")
    this_year = ctx.now().astimezone(ctx.tz).year
    if not 2000 <= args.year <= this_year:
        print(f"infranet: the year must be between 2000 and {this_year}")
        return 2
    started = time.perf_counter()
    print(f"[1/3] gathering {args.year} (and {args.year - 1} for the white spots)…", flush=True)
    async with ctx.db.read() as session:
        report = await build_report(session, ctx, args.year, args.lang)
    print(f"[2/3] rendering {kind.upper()} ({len(report.tables)} tables)…", flush=True)
    if kind == "xlsx":
        body = await asyncio.to_thread(to_xlsx, report)
    else:
        html = render_html(report)
        body = html.encode() if kind == "html" else await asyncio.to_thread(to_pdf, html)
    args.output.write_bytes(body)
    print(f"[3/3] written {args.output} ({len(body) / 1024:.0f} kB) in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return 0
