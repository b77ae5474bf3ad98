"""`infranet newsletter ...`: the newsletter's sub-commands (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infranet.context import AppContext
from infranet.storage.actors import Actor


def register(subparsers: Any) -> None:
    from infranet.commands import add_command

    nl = subparsers.add_parser("newsletter", help="the e-mail newsletter").add_subparsers(
        dest="newsletter_command", metavar="ACTION", required=True)

    imp = add_command(nl, "import", cmd_import,
                      "import subscribers from a CSV file (columns: email[,language,districts,"
                      "categories]; lists separated by ';')")
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    consent = imp.add_mutually_exclusive_group(required=True)
    consent.add_argument("--consented", action="store_true",
                         help="the addresses already consented (no confirmation e-mail)")
    consent.add_argument("--not-consented", action="store_true",
                         help="send each new address a confirmation e-mail (double opt-in)")

    note = add_command(nl, "note", cmd_note, "add an editorial note to the next issue")
    note.add_argument("text")

    prev = add_command(nl, "preview", cmd_preview, "render the next issue without sending it")
    prev.add_argument("--subscriber", metavar="ADDR", help="as this subscriber would get it")
    prev.add_argument("--language", choices=["pl", "en"])
    fmt = prev.add_mutually_exclusive_group()
    fmt.add_argument("--html", action="store_true", help="print the HTML part")
    fmt.add_argument("--text", action="store_true", help="print the plain-text part (default)")
    prev.add_argument("--send-test", metavar="ADDR", help="send one copy to ADDR")

    build = add_command(nl, "build", cmd_build,
                        "build the issue of the current period (once: a second one for the "
                        "same period is refused without --force); 'send' sends it")
    build.add_argument("--force", action="store_true",
                       help="build another issue although this period has one (every reader "
                            "gets the newsletter again)")
    build.add_argument("--no-archive", action="store_true",
                       help="keep the issue out of the public web archive (readers still get it)")

    send = add_command(nl, "send", cmd_send,
                       "send the pending deliveries of built issues (never builds one)")
    send.add_argument("--give-up-after", type=float, default=300.0, metavar="SECONDS",
                      help="stop waiting for an unreachable SMTP server after this long "
                           "(the issue stays in progress; default 300)")

    status = add_command(nl, "status", cmd_status, "show issues with delivery counts")
    status.add_argument("issue", nargs="?", type=int, metavar="ISSUE")
    status.add_argument("--json", action="store_true")

    resend = add_command(nl, "resend", cmd_resend,
                         "send the failed or unknown deliveries of an issue again")
    resend.add_argument("issue", type=int, metavar="ISSUE")
    which = resend.add_mutually_exclusive_group(required=True)
    which.add_argument("--failed", action="store_true")
    which.add_argument("--unknown", action="store_true",
                       help="interrupted mid-send: the recipient may get a second copy")

    resume = add_command(nl, "resume", cmd_resume,
                         "resume an issue paused after too many refused deliveries")
    resume.add_argument("issue", type=int, metavar="ISSUE")

    forget = add_command(nl, "forget", cmd_forget, "erase a subscriber's data")
    forget.add_argument("address", metavar="ADDR")

    export = add_command(nl, "export", cmd_export, "print everything stored about a subscriber (JSON)")
    export.add_argument("address", metavar="ADDR")

    subs = add_command(nl, "subscribers", cmd_subscribers,
                       "list, count or export (CSV) the subscribers")
    subs.add_argument("view", choices=["list", "count", "export"])
    subs.add_argument("--status", choices=["pending", "confirmed", "unsubscribed", "disabled"])
    subs.add_argument("--district", metavar="NAME", help="readers of this district (name, slug "
                      "or TERYT code; readers of the whole region are included)")

    unsub = add_command(nl, "unsubscribe", cmd_unsubscribe,
                        "unsubscribe an address at the person's request (recorded as the CLI's)")
    unsub.add_argument("address", metavar="ADDR")

    bounces = add_command(nl, "bounces", cmd_bounces,
                          "read the [bounces] mailbox: count bounces, act on complaints and "
                          "mailto: unsubscribe requests, move what was handled")
    bounces.add_argument("--once", action="store_true",
                         help="read the mailbox once and exit (default: every poll_interval_s "
                              "until interrupted)")

    arch = add_command(nl, "archive", cmd_archive,
                       "keep a built issue out of the public web archive, or put it back")
    arch.add_argument("issue", type=int, metavar="ISSUE")
    shown = arch.add_mutually_exclusive_group(required=True)
    shown.add_argument("--hide", action="store_true", help="not in /newsletter/archive")
    shown.add_argument("--show", action="store_true", help="listed in /newsletter/archive")


async def cmd_import(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.csvfiles import CsvFileError, read_subscriber_file
    from infranet.newsletter.outbound import send_confirmation
    from infranet.newsletter.subscriber_data import import_csv

    try:
        parsed = read_subscriber_file(args.file.read_bytes())
    except OSError as exc:
        print(f"infranet: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    except CsvFileError as exc:
        print(f"infranet: {args.file}: {exc}", file=sys.stderr)
        return 1
    for note in parsed.notes:
        print(f"note: {note}", file=sys.stderr)
    text = parsed.text
    async with ctx.db.transaction() as session:
        report = await import_csv(session, ctx, Actor.cli(), text, consented=args.consented)
    for result in report.to_confirm:
        await send_confirmation(ctx, result.subscriber_id)
    for error in report.errors:
        print(error, file=sys.stderr)
    for skipped in report.skipped:
        print(skipped)
    held = f", {report.held} not sent one (one went out too recently)" if report.held else ""
    print(f"imported: {report.added} confirmed, {len(report.to_confirm)} sent a confirmation "
          f"e-mail{held}, {report.unchanged} already subscribed, {len(report.skipped)} skipped "
          f"(they left; only they can subscribe again), {len(report.errors)} rejected")
    return 1 if report.errors and not (report.added or report.to_confirm) else 0


async def cmd_note(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.issues import add_note

    async with ctx.db.transaction() as session:
        note = await add_note(session, ctx, Actor.cli(), args.text)
    print(f"note #{note.id} will appear in the next issue")
    return 0


async def cmd_preview(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.issues import preview
    from infranet.newsletter.outbound import send_one

    async with ctx.db.transaction() as session:
        result = await preview(session, ctx, Actor.cli(), email=args.subscriber,
                               language=args.language, test_to=args.send_test)
    envelope = result.test_copy
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.send_test:
        if envelope is None:
            print("nothing to send: the issue is empty for these preferences", file=sys.stderr)
            return 1
        outcome = await send_one(ctx, envelope)
        print(f"test copy to {envelope.recipient}: {outcome.kind} ({outcome.detail})")
        return 0 if outcome.kind == "sent" else 1
    if not result.text:
        print("nothing to send: the issue is empty for these preferences", file=sys.stderr)
        return 0
    print(f"Subject: {result.subject}\n", file=sys.stderr)
    print(result.html if args.html else result.text)
    return 0


async def cmd_build(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.issues import build_for_period

    async with ctx.db.transaction() as session:
        outcome = await build_for_period(session, ctx, Actor.cli(), force=args.force)
        built_now = outcome.built.issue if outcome.built is not None and outcome.built.created else None
        if args.no_archive and built_now is not None:
            # In the build's own transaction: the archive never shows it, not for a moment.
            from infranet.newsletter.roster import set_archived

            await set_archived(session, Actor.cli(), built_now.id, archived=False)
    key, built = outcome.period_key, outcome.built
    if outcome.refused is not None:
        issue = outcome.refused
        print(f"issue #{issue.id} ({issue.period_key}, {issue.status}) was already built for this "
              "period: nothing built. 'infranet newsletter send' sends what is pending; "
              "--force builds another issue and every reader gets it again", file=sys.stderr)
        return 1
    assert built is not None
    for warning in built.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if built.skipped_empty:
        print(f"nothing to send for {key}: no events, trainings, new members or notes (skipped)")
    elif built.issue is not None and built.created:
        print(f"issue #{built.issue.id} built for {key}: {built.recipients} recipients; "
              "'infranet newsletter send' sends it (so does the service when it starts)")
    elif built.issue is not None:  # another process built it a moment ago
        print(f"issue #{built.issue.id} for {key} exists already ({built.issue.status})")
    return 0


async def cmd_send(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.issues import send_pending

    report = await send_pending(ctx, give_up_after=args.give_up_after)
    print(f"sent {report.sent}, failed {report.failed}, unknown {report.unknown}, "
          f"retried {report.retried}, subscribers disabled {report.disabled}")
    for issue_id in report.paused:
        print(f"issue #{issue_id} paused: too many of its first deliveries were refused (see "
              f"'newsletter status {issue_id}'); after fixing the cause: 'infranet newsletter "
              f"resume {issue_id}'", file=sys.stderr)
    if report.stalled:
        print("the SMTP server could not be reached; the issue stays in progress and is sent "
              "when the service (or this command) runs again", file=sys.stderr)
        return 1
    return 0


async def cmd_status(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.issues import issue_status

    async with ctx.db.transaction() as session:
        rows = await issue_status(session, ctx, args.issue)
    if args.json:
        print(json.dumps([{"id": r.id, "period": r.period_key, "status": r.status,
                           "subject": r.subject, **r.counts} for r in rows], ensure_ascii=False,
                         indent=2))
        return 0
    if not rows:
        print("no issues yet: 'infranet newsletter build' builds one")
    for r in rows:
        c = r.counts
        print(f"#{r.id:<4} {r.period_key:<28} {r.status:<8} pending {c['pending']}, sending "
              f"{c['sending']}, sent {c['sent']}, failed {c['failed']}, unknown {c['unknown']}")
    return 0


async def cmd_resend(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.issues import resend, send_pending

    which = "failed" if args.failed else "unknown"
    async with ctx.db.transaction() as session:
        count = await resend(session, ctx, Actor.cli(), args.issue, which)
    print(f"{count} {which} deliveries of issue #{args.issue} queued again")
    if count:
        report = await send_pending(ctx, give_up_after=300.0, issue_ids=[args.issue])
        print(f"sent {report.sent}, failed {report.failed}, unknown {report.unknown}")
    return 0


async def cmd_resume(ctx: AppContext, args: argparse.Namespace) -> int:
    """Resume a paused issue; a running service notices it within `poll_seconds`, and
    this command sends what waits (like `send`) so that it also works without one."""
    from infranet.newsletter.issues import resume, send_pending

    async with ctx.db.transaction() as session:
        resumed = await resume(session, ctx, Actor.cli(), args.issue)
    if not resumed:
        print(f"issue #{args.issue} is not paused; nothing to resume", file=sys.stderr)
        return 1
    print(f"issue #{args.issue} resumed")
    report = await send_pending(ctx, give_up_after=300.0, issue_ids=[args.issue])
    print(f"sent {report.sent}, failed {report.failed}, unknown {report.unknown}")
    return 0


async def cmd_forget(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.subscriber_data import forget

    async with ctx.db.transaction() as session:
        found = await forget(session, ctx, Actor.cli(), args.address)
    print(f"{args.address}: erased" if found else f"{args.address}: no such subscriber")
    return 0 if found else 1


async def cmd_export(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.subscriber_data import export_subscriber

    async with ctx.db.transaction() as session:
        data = await export_subscriber(session, ctx, Actor.cli(), args.address)
    print(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


async def cmd_subscribers(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter import roster
    from infranet.validation import for_terminal

    async with ctx.db.transaction() as session:
        if args.view == "export":
            sys.stdout.write(await roster.export_csv(session, ctx, Actor.cli(), status=args.status,
                                                     district=args.district))
            return 0
        if args.view == "count":
            counts = await roster.count_subscribers(session, ctx, Actor.cli(), status=args.status,
                                                    district=args.district)
            print(f"total: {counts.total}")
            for title, values in (("status", counts.by_status), ("language", counts.by_language),
                                  ("district", counts.by_district)):
                for key, number in sorted(values.items()):
                    name = "(whole region)" if key == roster.ALL_DISTRICTS else for_terminal(key)
                    print(f"{title} {name}: {number}")
            return 0
        rows = await roster.select_subscribers(session, ctx, Actor.cli(), status=args.status,
                                               district=args.district)
    for r in rows:
        districts = ",".join(r.districts) if r.districts else "(whole region)"
        print(f"{for_terminal(r.email)}\t{r.status}\t{r.language}\t{for_terminal(districts)}")
    print(f"{len(rows)} subscribers", file=sys.stderr)
    return 0


async def cmd_unsubscribe(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.roster import unsubscribe_address
    from infranet.validation import for_terminal

    async with ctx.db.transaction() as session:
        changed = await unsubscribe_address(session, ctx, Actor.cli(), args.address)
    address = for_terminal(args.address)
    print(f"{address}: unsubscribed" if changed else f"{address}: was unsubscribed already")
    return 0


async def cmd_archive(ctx: AppContext, args: argparse.Namespace) -> int:
    from infranet.newsletter.roster import set_archived

    async with ctx.db.transaction() as session:
        found = await set_archived(session, Actor.cli(), args.issue, archived=args.show)
    if not found:
        print(f"no issue #{args.issue}", file=sys.stderr)
        return 1
    print(f"issue #{args.issue} " + ("is in the public archive" if args.show
                                     else "is kept out of the public archive"))
    return 0


async def cmd_bounces(ctx: AppContext, args: argparse.Namespace) -> int:
    import asyncio

    from infranet.newsletter.bounces import MailboxError, process_mailbox

    settings = ctx.settings.bounces
    if not settings.enabled:
        print("infranet: no [bounces] host is configured (see config.example.toml)",
              file=sys.stderr)
        return 1

    def progress(run: Any) -> None:
        print(f"… {run.read} of {run.waiting} read", file=sys.stderr, flush=True)

    while True:
        try:
            run = await process_mailbox(ctx, progress)
        except MailboxError as exc:
            print(f"infranet: {exc}", file=sys.stderr)
            if args.once:
                return 1
        else:
            print(run.summary() + (f"; {run.disabled} subscribers disabled" if run.disabled else ""))
        if args.once:
            return 0
        await asyncio.sleep(settings.poll_interval_s)
