"""The secretariat's view of the subscriber list: who, in which state, counted by status,
language and district; and unsubscribing an address on someone's request.

Admin-only: every function takes the acting `Actor` and checks it. Reading the list is
audited as one entry (not per address) so that the log says who looked and when."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import Subscriber, SubscriberStatus

STATUSES = tuple(s.value for s in SubscriberStatus)
ALL_DISTRICTS = "*"  # the count key of readers who chose no district (they get the whole region)


@dataclass(frozen=True)
class Counts:
    total: int
    by_status: dict[str, int]
    by_language: dict[str, int]
    by_district: dict[str, int]  # slug -> readers; ALL_DISTRICTS for "whole region"


async def select_subscribers(session: AsyncSession, ctx: AppContext, actor: Actor, *,
                             status: str | None = None,
                             district: str | None = None) -> list[Subscriber]:
    """Subscribers in address order, optionally of one status and one district (a reader
    who chose no district reads every district, so is counted in each)."""
    actor.require_admin()
    query = select(Subscriber).order_by(Subscriber.email)
    if status:
        query = query.where(Subscriber.status == status)
    rows = list((await session.scalars(query)).all())
    if district:
        from infranet.newsletter.subscribers import normalise_districts

        slugs = normalise_districts(ctx, [district])
        if slugs:  # the region itself means everybody
            rows = [r for r in rows if not r.districts or slugs[0] in r.districts]
    return rows


async def count_subscribers(session: AsyncSession, ctx: AppContext, actor: Actor, *,
                            status: str | None = None, district: str | None = None) -> Counts:
    rows = await select_subscribers(session, ctx, actor, status=status, district=district)
    by_district: Counter[str] = Counter()
    for row in rows:
        for slug in row.districts or [ALL_DISTRICTS]:
            by_district[slug] += 1
    return Counts(total=len(rows),
                  by_status=dict(Counter(r.status for r in rows)),
                  by_language=dict(Counter(r.language for r in rows)),
                  by_district=dict(by_district))


async def export_csv(session: AsyncSession, ctx: AppContext, actor: Actor, *,
                     status: str | None = None, district: str | None = None) -> str:
    """CSV in the import's own columns (plus status and dates), so an export reads back in."""
    rows = await select_subscribers(session, ctx, actor, status=status, district=district)
    await audit.record(session, actor, "newsletter.list_export", "subscriber", None,
                       count=len(rows), status=status, district=district)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "language", "districts", "categories", "status", "confirmed_at",
                     "unsubscribed_at"])
    for r in rows:
        writer.writerow([r.email, r.language, ";".join(r.districts or []),
                         ";".join(r.categories or []), r.status,
                         r.confirmed_at.isoformat() if r.confirmed_at else "",
                         r.unsubscribed_at.isoformat() if r.unsubscribed_at else ""])
    return out.getvalue()


async def unsubscribe_address(session: AsyncSession, ctx: AppContext, actor: Actor,
                              email: str) -> bool:
    """Unsubscribe on the person's request made to the secretariat (phone, letter): the
    audit log records who did it. Returns False when it was unsubscribed already."""
    from infranet.newsletter.subscribers import find_by_email, mark_unsubscribed, normalise_address

    actor.require_admin()
    row = await find_by_email(session, normalise_address(email))
    if row is None:
        raise NotFound("newsletter.no_subscriber", email=email)
    if row.status == SubscriberStatus.UNSUBSCRIBED:
        return False
    await mark_unsubscribed(session, ctx, row, "unsubscribed before sending")
    await audit.record(session, actor, "newsletter.unsubscribe", "subscriber", row.id,
                       via=actor.kind)
    return True


async def set_archived(session: AsyncSession, actor: Actor, issue_id: int, *,
                       archived: bool) -> bool:
    """Show or hide an issue in the public web archive; False when there is no such issue.
    Its readers' copies are not affected (they were or will be sent all the same)."""
    from infranet.storage.models import NewsletterIssue

    actor.require_admin()
    if not 0 < issue_id <= 2**31 - 1:  # no issue can have it (PostgreSQL Integer range)
        return False
    issue = await session.get(NewsletterIssue, issue_id)
    if issue is None:
        return False
    if issue.archived != archived:
        issue.archived = archived
        # The snapshot says so too: copies rendered from it then carry no "web version"
        # link, which would lead readers to a page that is not there.
        issue.content = {**issue.content, "archived": archived}
        await audit.record(session, actor, "newsletter.archive", "newsletter_issue", issue.id,
                           archived=archived)
    return True
