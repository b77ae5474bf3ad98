"""A subscriber's data as a whole: export (right of access), erasure (right to erasure),
and the secretariat's CSV import, which must respect both.

Kept apart from `subscribers.py` (one address's life: sign-up, confirmation, preferences,
leaving) because these act on what is stored about people, and the import's one rule is
that it never brings back someone who left or asked to be erased.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound, ValidationFailed
from infranet.newsletter.subscribers import (
    SubscribeResult,
    find_by_email,
    normalise_address,
    subscribe,
)
from infranet.security import sign
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, Delivery, NewsletterIssue, Subscriber, SubscriberStatus


async def export_subscriber(session: AsyncSession, ctx: AppContext, actor: Actor,
                            email: str) -> dict[str, Any]:
    """Everything stored about one address (right of access), as plain data."""
    actor.require_admin()
    row = await find_by_email(session, normalise_address(email))
    if row is None:
        raise NotFound("newsletter.no_subscriber", email=email)
    deliveries = (await session.execute(
        select(Delivery, NewsletterIssue.subject).join(NewsletterIssue)
        .where(Delivery.subscriber_id == row.id).order_by(Delivery.id))).all()
    await audit.record(session, actor, "newsletter.export", "subscriber", row.id)

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "email": row.email, "status": row.status, "language": row.language,
        "districts": row.districts, "categories": row.categories,
        "created_at": iso(row.created_at), "confirmed_at": iso(row.confirmed_at),
        "unsubscribed_at": iso(row.unsubscribed_at),
        "consent": {"at": iso(row.consent_at), "source": row.consent_source,
                    "version": row.consent_version},
        "hard_bounces": row.hard_bounces,
        "confirmation_emails": {"last_sent_at": iso(row.confirm_sent_at),
                                "recent_count": row.confirm_sends},
        "deliveries": [{"issue_id": d.issue_id, "subject": subject, "status": d.status,
                        "sent_at": iso(d.sent_at)} for d, subject in deliveries],
    }


async def forget(session: AsyncSession, ctx: AppContext, actor: Actor, email: str) -> bool:
    """Erase an address (right to erasure): the subscriber row goes, delivery rows
    keep only their counts. The audit log keeps the id, never the address."""
    actor.require_admin()
    row = await find_by_email(session, normalise_address(email))
    if row is None:
        return False
    await session.execute(update(Delivery).where(Delivery.subscriber_id == row.id)
                          .values(email=None, subscriber_id=None))
    await session.delete(row)
    await session.flush()
    # The only trace of the address: a keyed hash, so that an import cannot bring back a
    # person who asked to be erased (see `import_csv`), while the address itself is gone.
    await audit.record(session, actor, "newsletter.forget", "subscriber", row.id,
                       address_hash=forgotten_hash(ctx, row.email))
    return True


def forgotten_hash(ctx: AppContext, address: str) -> str:
    """HMAC of a normalised address under `[security] secret_key`: without the key it
    cannot be reversed or checked against a list of guessed addresses."""
    return sign(ctx.secret_key, "newsletter.forgotten", address)


async def _forgotten(session: AsyncSession) -> dict[str, Any]:
    """address hash -> when it was erased, from the audit log's forget records."""
    rows = (await session.execute(select(AuditLog.details, AuditLog.at)
                                  .where(AuditLog.action == "newsletter.forget"))).all()
    return {d["address_hash"]: at for d, at in rows if isinstance(d, dict) and d.get("address_hash")}


def _why_skipped(row: Subscriber | None, erased_at: Any, tz: tzinfo) -> str | None:
    """The reason an import leaves an address alone, as reported to the secretariat.
    Dates are the region's days: stored in UTC, an unsubscribe at 23:30 UTC happened on
    the next day in Warsaw, as the person who left remembers it."""
    def day(value: Any) -> str:
        return value.astimezone(tz).date().isoformat() if value is not None else "an unknown date"

    if row is None:
        return f"erased on {day(erased_at)} at the person's request, skipped" if erased_at else None
    if row.status == SubscriberStatus.UNSUBSCRIBED:
        return f"unsubscribed on {day(row.unsubscribed_at)}, skipped"
    if row.status == SubscriberStatus.DISABLED:
        return f"disabled by bounces on {day(getattr(row, 'updated_at', None))}, skipped"
    return None


@dataclass
class ImportReport:
    added: int = 0
    to_confirm: list[SubscribeResult] = field(default_factory=list)
    unchanged: int = 0
    held: int = 0  # a confirmation e-mail went to the address too recently (limits.py)
    errors: list[str] = field(default_factory=list)
    # Addresses that left (unsubscribed, disabled by bounces, erased): never changed.
    skipped: list[str] = field(default_factory=list)


async def import_csv(session: AsyncSession, ctx: AppContext, actor: Actor, text: str, *,
                     consented: bool) -> ImportReport:
    """Import a CSV with a header row: `email` (required), optional `language`,
    `districts` and `categories` (separated by `;`). `consented` must state
    whether the addresses already gave consent; if not they get a confirmation
    e-mail (returned in `to_confirm` for the caller to send after the commit).
    Bad rows are reported by line and skipped; good rows are kept."""
    actor.require_admin()
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        raise ValidationFailed("newsletter.error.csv_header")
    forgotten = await _forgotten(session)
    for number, raw in enumerate(reader, start=2):
        data = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        try:
            async with session.begin_nested():
                address = normalise_address(data.get("email", ""))
                existing = await find_by_email(session, address)
                why = _why_skipped(existing, forgotten.get(forgotten_hash(ctx, address)), ctx.tz)
                if why is not None:
                    report.skipped.append(f"line {number}: {address}: {why}")
                    continue
                was_confirmed = existing is not None and existing.status == SubscriberStatus.CONFIRMED
                result = await subscribe(
                    session, ctx, data.get("email", ""), source="import",
                    language=data.get("language") or None,
                    districts=[d for d in data.get("districts", "").split(";") if d.strip()],
                    categories=[c for c in data.get("categories", "").split(";") if c.strip()],
                    consented=consented, actor=actor)
        except ValidationFailed as exc:
            report.errors.append(f"line {number}: {exc}")
            continue
        if was_confirmed:
            report.unchanged += 1
        elif result.held:
            report.held += 1
        elif result.needs_confirmation:
            report.to_confirm.append(result)
        else:
            report.added += 1
    return report
