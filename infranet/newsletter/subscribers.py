"""Subscribers: double opt-in, preferences, unsubscribe, import, export and erasure.

Every function here is a business rule shaped `op(session, ctx, ...)`: it
validates, writes the audit log and flushes, never commits. Callers wrap it in
`async with ctx.db.transaction() as session:` and, for `subscribe()`, send the
confirmation e-mail after the commit and after the answer
(`outbound.send_confirmation_after_answer()`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import LANGUAGES
from infranet.newsletter import limits, texts, tokens
from infranet.region import UnknownDistrict
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.database import rows_changed
from infranet.storage.models import Delivery, Subscriber, SubscriberStatus
from infranet.validation import clean_email, plain_text

log = logging.getLogger(__name__)

SOURCES = ("form", "bot", "import")
# Used when the calendar does not publish its own list.
DEFAULT_CATEGORIES = ("training", "conference", "meeting", "consultation", "fair", "other")


def known_categories() -> tuple[str, ...]:
    """Event categories a subscriber may choose: the calendar's list when it has one."""
    try:
        from infranet.calendar import event_input as calendar_events
    except ImportError:
        return DEFAULT_CATEGORIES
    found = getattr(calendar_events, "CATEGORIES", None)
    return tuple(found) if found else DEFAULT_CATEGORIES


def normalise_address(value: str) -> str:
    """Validated, normalised address, all lower case (IDN as punycode), so that
    "Ala@X.pl" and "ala@x.pl" are one subscriber: local-part case is significant only
    in theory. SMTPUTF8 local parts are refused because not every server accepts them.
    Invisible characters pasted along (a byte-order mark, a bidi mark) are removed first, by
    the plain-text rule every field follows (`infranet.validation`)."""
    return clean_email(value, "email").lower()


def _language(ctx: AppContext, value: str | None) -> str:
    if not value:
        return ctx.settings.newsletter.language
    value = plain_text(value).lower().split("-")[0]
    if value not in LANGUAGES:
        raise ValidationFailed("newsletter.unknown_language", value=value)
    return value


def normalise_districts(ctx: AppContext, values: Iterable[str]) -> list[str]:
    """Names, slugs or TERYT codes to slugs; the whole region means no filter."""
    slugs: list[str] = []
    for value in values:
        value = plain_text(value)
        if not value:
            continue
        try:
            district = ctx.region.find(value)
        except UnknownDistrict as exc:
            if exc.suggestions:  # "did you mean", in the reader's language
                raise ValidationFailed("error.district_hint", field="districts", query=repr(value),
                                       names=", ".join(d.name for d in exc.suggestions)) from None
            raise ValidationFailed("error.district_unknown", field="districts",
                                   query=repr(value)) from None
        if district.kind == "region":
            return []
        if district.slug not in slugs:
            slugs.append(district.slug)
    return slugs


def normalise_categories(values: Iterable[str]) -> list[str]:
    known = known_categories()
    chosen: list[str] = []
    for value in values:
        value = plain_text(value).lower()
        if not value:
            continue
        if value not in known:
            raise ValidationFailed("newsletter.unknown_category", value=value,
                                   choices=", ".join(known))
        if value not in chosen:
            chosen.append(value)
    return [] if set(chosen) == set(known) else chosen


@dataclass
class SubscribeResult:
    """What happened, for the caller only; the user is told the same in every case."""

    subscriber_id: int
    email: str
    language: str
    needs_confirmation: bool  # send the confirmation e-mail after the commit
    # Why a due confirmation e-mail was held back by the per-address limits (limits.COOLDOWN
    # or limits.DAILY_CAP); the row was left as it was. Never shown to the requester.
    held: str | None = None
    # A confirmed reader signed up again: send the preferences link after the answer.
    send_preferences: bool = False


async def find_by_email(session: AsyncSession, email: str) -> Subscriber | None:
    return await session.scalar(select(Subscriber).where(Subscriber.email == email))


async def _row_for_subscribe(session: AsyncSession, address: str,
                             **fields: Any) -> tuple[Subscriber, bool]:
    """The address's row, locked until the commit so that concurrent requests for one address
    (other instances included) decide about its confirmation e-mail one after the other; or a
    new pending row made of `fields`. Returns (row, created).

    PostgreSQL has no row to lock for a new address: when a concurrent request inserted it
    first, the unique email index makes this insert wait for that commit and fail, and the
    committed row is used instead (SQLite runs one writer at a time, so never gets there)."""
    query = select(Subscriber).where(Subscriber.email == address).with_for_update()
    row = await session.scalar(query)
    if row is not None:
        return row, False
    row = Subscriber(email=address, status=SubscriberStatus.PENDING, token_version=0, **fields)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        existing = await session.scalar(query.execution_options(populate_existing=True))
        if existing is None:
            raise
        return existing, False
    return row, True


async def subscribe(
    session: AsyncSession, ctx: AppContext, email: str, *, source: str = "form",
    language: str | None = None, districts: Sequence[str] = (), categories: Sequence[str] = (),
    consented: bool = False, actor: Actor | None = None,
) -> SubscribeResult:
    """Start (or restart) a subscription.

    `source` is "form", "bot" or "import". Without `consented` the address
    stays pending until its confirmation link is opened (double opt-in, valid
    `[newsletter] confirm_ttl_days`); `consented=True` is for imports whose
    consent was collected elsewhere. A repeated subscription never creates a
    second row, and the result must not be shown to the user beyond "check
    your inbox": whether the address was known stays private.

    The per-address abuse limits (limits.py) apply to every source: when a
    confirmation e-mail would be due too soon after the last one, the row is
    left unchanged and the result has `needs_confirmation=False` and `held` set.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    address = normalise_address(email)
    lang = _language(ctx, language)
    slugs = normalise_districts(ctx, districts)
    cats = normalise_categories(categories)
    now = ctx.now()
    ttl = timedelta(days=ctx.settings.newsletter.confirm_ttl_days)
    actor = actor or Actor("web" if source == "form" else source)
    row, created = await _row_for_subscribe(session, address, language=lang, districts=slugs,
                                            categories=cats)
    if not created and source == "import" and _left_by_choice(row):
        # Consent is the person's alone: only they come back, through double opt-in.
        return SubscribeResult(row.id, row.email, row.language, False)
    if not created:
        if row.status == SubscriberStatus.CONFIRMED:
            # Nothing changes: a stranger must not be able to rewrite someone's preferences.
            # A reader who fills the form again gets (rate-limited, like confirmations) an
            # e-mail with their preferences link: the only way back to it besides an issue.
            if source != "form":
                return SubscribeResult(row.id, row.email, row.language, False)
            held = limits.confirmation_hold(row, now, ctx.settings.newsletter)
            if held is None:
                limits.record_confirmation(row, now)
                await session.flush()
            return SubscribeResult(row.id, row.email, row.language, False, held=held,
                                   send_preferences=held is None)
        held = None if consented else limits.confirmation_hold(row, now, ctx.settings.newsletter)
        if held is not None:
            log.info("newsletter: no confirmation e-mail to %s (subscriber %s, %s, via %s)",
                     limits.mask_address(address), row.id, held, source)
            return SubscribeResult(row.id, row.email, row.language, False, held=held)
        if row.status != SubscriberStatus.PENDING:
            row.token_version += 1  # old unsubscribe/preferences links stay dead
        row.language, row.districts, row.categories = lang, slugs, cats
        row.status = SubscriberStatus.PENDING
    needs_confirmation = True
    row.consent_source = source
    row.consent_version = texts.CONSENT_VERSION
    row.unsubscribed_at = None
    if consented:
        row.status = SubscriberStatus.CONFIRMED
        row.confirmed_at = row.consent_at = now
        row.confirm_expires_at = None
        row.hard_bounces = 0
        needs_confirmation = False
    else:
        row.confirm_expires_at = now + ttl
        limits.record_confirmation(row, now)
    await session.flush()
    await audit.record(session, actor, "newsletter.subscribe", "subscriber", row.id,
                       source=source, consented=consented)
    return SubscribeResult(row.id, row.email, row.language, needs_confirmation)


async def _by_token(session: AsyncSession, ctx: AppContext, subscriber_id: Any, token: str,
                    purpose: str, *, allow_previous: bool = False) -> Subscriber:
    try:
        sid = int(subscriber_id)
    except (TypeError, ValueError):
        raise ValidationFailed("newsletter.bad_link") from None
    row = await session.get(Subscriber, sid)
    if row is None:
        raise ValidationFailed("newsletter.bad_link")
    if tokens.check_token(ctx, purpose, row, token):
        return row
    if allow_previous and row.token_version > 0 and tokens.check_token(
            ctx, purpose, row, token, version=row.token_version - 1):
        return row
    raise ValidationFailed("newsletter.bad_link")


async def confirm(session: AsyncSession, ctx: AppContext, subscriber_id: Any,
                  token: str) -> Subscriber:
    """Confirm a pending subscription from its signed link; confirming twice is fine."""
    row = await _by_token(session, ctx, subscriber_id, token, "confirm")
    if row.status == SubscriberStatus.CONFIRMED:
        return row
    if row.status != SubscriberStatus.PENDING:
        raise ValidationFailed("newsletter.bad_link")
    now = ctx.now()
    if row.confirm_expires_at is not None and row.confirm_expires_at < now:
        raise ValidationFailed("newsletter.expired", days=ctx.settings.newsletter.confirm_ttl_days)
    row.status = SubscriberStatus.CONFIRMED
    row.confirmed_at = row.consent_at = now
    row.confirm_expires_at = None
    row.hard_bounces = 0
    await session.flush()
    await audit.record(session, Actor("web"), "newsletter.confirm", "subscriber", row.id)
    return row


async def subscriber_for_link(session: AsyncSession, ctx: AppContext, subscriber_id: Any,
                              token: str, purpose: str) -> Subscriber:
    """The subscriber a signed link belongs to (for showing a page), or ValidationFailed."""
    return await _by_token(session, ctx, subscriber_id, token, purpose,
                           allow_previous=purpose == "unsubscribe")


async def update_preferences(
    session: AsyncSession, ctx: AppContext, subscriber_id: Any, token: str, *,
    language: str | None, districts: Sequence[str], categories: Sequence[str],
) -> Subscriber:
    """Change language, districts and categories from the signed preferences link."""
    row = await _by_token(session, ctx, subscriber_id, token, "preferences")
    if row.status not in (SubscriberStatus.CONFIRMED, SubscriberStatus.PENDING):
        raise ValidationFailed("newsletter.bad_link")
    row.language = _language(ctx, language)
    row.districts = normalise_districts(ctx, districts)
    row.categories = normalise_categories(categories)
    await session.flush()
    await audit.record(session, Actor("web"), "newsletter.preferences", "subscriber", row.id)
    return row


async def mark_unsubscribed(session: AsyncSession, ctx: AppContext, row: Subscriber,
                            reason: str) -> None:
    """The one way an address leaves the list, however the person asked (a link, a mailto:
    request, a complaint, the secretariat): no more mail from now, their old links stop
    working (token version), and deliveries not yet handed to the server are dropped with
    `reason`. The caller records who asked, and how, in the audit log."""
    row.status = SubscriberStatus.UNSUBSCRIBED
    row.unsubscribed_at = ctx.now()
    row.token_version += 1
    await session.execute(
        update(Delivery).where(Delivery.subscriber_id == row.id, Delivery.status == "pending")
        .values(status="failed", last_error=reason))
    await session.flush()


async def unsubscribe(session: AsyncSession, ctx: AppContext, subscriber_id: Any, token: str, *,
                      via: str = "link") -> Subscriber:
    """Unsubscribe at once (link, RFC 8058 one-click POST or mailto). Repeating it
    with the same link is harmless; older links stop working."""
    row = await _by_token(session, ctx, subscriber_id, token, "unsubscribe", allow_previous=True)
    if row.status == SubscriberStatus.UNSUBSCRIBED:
        return row
    await mark_unsubscribed(session, ctx, row, "unsubscribed before sending")
    await audit.record(session, Actor("web"), "newsletter.unsubscribe", "subscriber", row.id, via=via)
    return row


async def record_hard_bounce(session: AsyncSession, ctx: AppContext, subscriber_id: int) -> bool:
    """Count a 5xx answer; return True when it disabled the subscriber."""
    row = await session.get(Subscriber, subscriber_id)
    if row is None:
        return False
    row.hard_bounces += 1
    disabled = (row.hard_bounces >= ctx.settings.newsletter.max_hard_bounces
                and row.status == SubscriberStatus.CONFIRMED)
    if disabled:
        row.status = SubscriberStatus.DISABLED
        await audit.record(session, Actor.system(), "newsletter.disable", "subscriber", row.id,
                           hard_bounces=row.hard_bounces)
    return disabled


async def expire_pending(session: AsyncSession, ctx: AppContext) -> int:
    """Delete subscriptions never confirmed within their time (run daily)."""
    result = await session.execute(
        delete(Subscriber).where(Subscriber.status == SubscriberStatus.PENDING,
                                 Subscriber.confirm_expires_at < ctx.now()))
    return rows_changed(result)


def _left_by_choice(row: Subscriber) -> bool:
    """The person unsubscribed, or their mailbox bounced until they were disabled: an
    import must not change that (RODO: consent is theirs to give again)."""
    return row.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.DISABLED)
