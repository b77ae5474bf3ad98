"""Issues: notes, building (one delivery row per recipient, in one transaction),
preview, status, resend, and the plain async functions the bot and CLI call.

Bot-facing API (each wrapped by the caller in `ctx.db.transaction()` unless
it says it manages its own transactions):

- `add_note(session, ctx, actor, text)` – /newsletter_note (admins)
- `preview(session, ctx, actor, email=None, language=None)` – /newsletter_preview
- `resend(session, ctx, actor, issue_id, which)` – then run a `Sender` (or
  `send_pending(ctx)`) to send them
- `issue_status(session, ctx, issue_id=None)` – counts per issue
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound, ValidationFailed
from infranet.newsletter import content as content_mod
from infranet.newsletter.checks import CheckReport, check_message, check_sender
from infranet.newsletter.compose import Composer, SubscriberRef, subject_for
from infranet.newsletter.subscribers import find_by_email, normalise_address
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.database import rows_changed
from infranet.storage.models import (
    Delivery,
    DeliveryStatus,
    IssueStatus,
    NewsletterIssue,
    NewsletterNote,
    Subscriber,
    SubscriberStatus,
)
from infranet.validation import plain_text

NOTE_LIMIT = 2000


async def add_note(session: AsyncSession, ctx: AppContext, actor: Actor, text: str) -> NewsletterNote:
    """An admin's editorial note for the next issue (plain text; escaped in HTML)."""
    actor.require_admin()
    text = plain_text(text or "", multiline=True)
    if not text:
        raise ValidationFailed("newsletter.note_empty")
    if len(text) > NOTE_LIMIT:
        raise ValidationFailed("newsletter.note_too_long", length=len(text), limit=NOTE_LIMIT)
    note = NewsletterNote(text=text, author=actor.name, created_at=ctx.now())
    session.add(note)
    await session.flush()
    await audit.record(session, actor, "newsletter.note", "newsletter_note", note.id)
    return note


async def _since(session: AsyncSession, ctx: AppContext, now: datetime) -> datetime:
    last = await session.scalar(select(func.max(NewsletterIssue.period_start))
                                .where(NewsletterIssue.status != IssueStatus.SKIPPED))
    return last if last is not None and last < now else now - timedelta(days=7)


def period_end(ctx: AppContext, now: datetime) -> datetime:
    """The end (exclusive) of the period an issue built at `now` covers: local midnight
    after its last day, today counted as the first of `horizon_days`. The label's last day
    ("3 – 16 grudnia") is then the last day whose events are all included; `now +
    horizon` ended at the schedule's hour, so the label named a day half of which was left
    out."""
    last_day = now.astimezone(ctx.tz).date() + timedelta(days=ctx.settings.newsletter.horizon_days)
    return datetime.combine(last_day, time(0), tzinfo=ctx.tz)


async def gather_content(session: AsyncSession, ctx: AppContext, now: datetime,
                         notes: list[NewsletterNote] | None = None) -> dict[str, Any]:
    end = period_end(ctx, now)
    if notes is None:
        notes = await content_mod.pending_notes(session)
    return await content_mod.gather(session, ctx, start=now, end=end,
                                    since=await _since(session, ctx, now), notes=notes)


def check_issue(ctx: AppContext, content: dict[str, Any], composer: Composer | None = None) -> CheckReport:
    """Check the full issue (every item) in both languages, as a subscriber would get it."""
    composer = composer or Composer(ctx)
    report = check_sender(ctx)
    probe = SubscriberRef(0, "probe@example.org", 0)
    for lang in ("pl", "en"):
        parts = composer.render_for(None, content, SubscriberRef(0, probe.email, 0, lang),
                                    content_mod.everything(content))
        if parts is not None:
            report.extend(check_message(ctx, *parts))
    return report


@dataclass
class BuildResult:
    issue: NewsletterIssue | None
    created: bool
    recipients: int = 0
    skipped_empty: bool = False
    warnings: list[str] = field(default_factory=list)


async def build_issue(session: AsyncSession, ctx: AppContext, actor: Actor, *, period_key: str,
                      force: bool = False) -> BuildResult:
    """Build the issue of a period, once: `period_key` is unique, so a second call (or a
    second service instance) gets the existing issue back instead of a new one.

    The issue row, its content snapshot and one pending delivery per recipient
    (confirmed subscribers with something to read) are written together.
    An empty period is recorded as skipped when `[newsletter] skip_empty`
    (unless `force`). Pre-send check errors raise ValidationFailed.
    """
    actor.require_admin()
    existing = await session.scalar(select(NewsletterIssue).where(NewsletterIssue.period_key == period_key))
    if existing is not None:
        return BuildResult(existing, False)
    now = ctx.now()
    notes = await content_mod.pending_notes(session)
    content = await gather_content(session, ctx, now, notes)
    lang = ctx.settings.newsletter.language
    issue = NewsletterIssue(period_key=period_key, period_start=now,
                            period_end=period_end(ctx, now),
                            subject=subject_for(ctx, content, lang), content=content, created_at=now)
    empty = not content_mod.has_news(content)
    if empty and ctx.settings.newsletter.skip_empty and not force:
        issue.status = IssueStatus.SKIPPED
        issue.finished_at = now
        if not await _insert_issue(session, issue):
            return BuildResult(await _by_key(session, period_key), False)
        await audit.record(session, actor, "newsletter.skip", "newsletter_issue", issue.id)
        return BuildResult(issue, True, skipped_empty=True)
    composer = Composer(ctx)
    report = check_issue(ctx, content, composer)
    if not report.ok:
        raise ValidationFailed("newsletter.check_failed", problems="; ".join(report.errors))
    if not await _insert_issue(session, issue):
        return BuildResult(await _by_key(session, period_key), False)
    rows = (await session.execute(
        select(Subscriber.id, Subscriber.email, Subscriber.districts, Subscriber.categories)
        .where(Subscriber.status == SubscriberStatus.CONFIRMED).order_by(Subscriber.id))).all()
    matcher = composer.matcher
    deliveries = [{"issue_id": issue.id, "subscriber_id": r.id, "email": r.email,
                   "status": DeliveryStatus.PENDING, "attempts": 0}
                  for r in rows
                  if not content_mod.select_for(content, matcher, r.districts or [],
                                                r.categories or []).empty]
    for chunk in range(0, len(deliveries), 2000):
        await session.execute(insert(Delivery), deliveries[chunk:chunk + 2000])
    if not deliveries:
        issue.status = IssueStatus.DONE
        issue.finished_at = now
    for note in notes:
        note.issue_id = issue.id
    await session.flush()
    await audit.record(session, actor, "newsletter.build", "newsletter_issue", issue.id,
                       period_key=period_key, recipients=len(deliveries))
    return BuildResult(issue, True, len(deliveries), warnings=report.warnings)


async def _by_key(session: AsyncSession, key: str) -> NewsletterIssue | None:
    return await session.scalar(select(NewsletterIssue).where(NewsletterIssue.period_key == key))


async def _insert_issue(session: AsyncSession, issue: NewsletterIssue) -> bool:
    """Insert under a savepoint; False when another instance built this period first."""
    try:
        async with session.begin_nested():
            session.add(issue)
            await session.flush()
    except IntegrityError:
        return False
    return True


@dataclass
class Preview:
    subject: str
    text: str
    html: str
    warnings: list[str]
    errors: list[str]
    recipient: str | None
    test_copy: Any = None  # with `test_to`: the ready message (None: the issue is empty)


async def preview(session: AsyncSession, ctx: AppContext, actor: Actor, *, email: str | None = None,
                  language: str | None = None, test_to: str | None = None) -> Preview:
    """Render the next issue as it stands now, without storing or sending anything.

    With `email`, as that subscriber would get it (their districts, categories,
    language and personal links); otherwise the whole issue in `language`. With
    `test_to`, also the same issue as a ready message to that address (`--send-test`),
    from the same gathered content, so that what is sent is what was shown.
    """
    actor.require_admin()
    test_to = normalise_address(test_to) if test_to else None
    now = ctx.now()
    content = await gather_content(session, ctx, now)
    composer = Composer(ctx)
    ref, selection = await _preview_reader(session, ctx, content, email, language,
                                           test_to or "preview@example.org")
    parts = composer.render_for(None, content, ref, selection)
    report = check_issue(ctx, content, composer)
    text, html = parts if parts is not None else ("", "")
    test_copy = (composer.build(None, content, ref, recipient=test_to, selection=selection,
                                test_copy=True) if test_to else None)
    return Preview(subject_for(ctx, content, ref.language), text, html, report.warnings,
                   report.errors, ref.email if email else None, test_copy)


async def _preview_reader(session: AsyncSession, ctx: AppContext, content: dict[str, Any],
                          email: str | None, language: str | None,
                          address: str) -> tuple[SubscriberRef, Any]:
    """Whom a preview is rendered for: that subscriber (in `language` when given), or an
    anonymous reader of the whole issue. Shared by the printed preview and the test copy,
    so that what is sent is what was shown."""
    if not email:
        ref = SubscriberRef(0, address, 0, language or ctx.settings.newsletter.language)
        return ref, content_mod.everything(content)
    row = await find_by_email(session, normalise_address(email))
    if row is None:
        raise NotFound("newsletter.no_subscriber", email=email)
    ref = SubscriberRef.of(row)
    if language:
        ref = SubscriberRef(ref.id, ref.email, ref.token_version, language, ref.districts,
                            ref.categories)
    return ref, None


@dataclass
class IssueCounts:
    id: int
    period_key: str
    subject: str
    status: str
    created_at: datetime
    counts: dict[str, int]


async def issue_status(session: AsyncSession, ctx: AppContext,
                       issue_id: int | None = None) -> list[IssueCounts]:
    """Each issue (newest first, or one) with its deliveries counted by status."""
    query = select(NewsletterIssue).order_by(NewsletterIssue.id.desc())
    if issue_id is not None:
        query = query.where(NewsletterIssue.id == issue_id)
    issues = (await session.scalars(query.limit(50))).all()
    if issue_id is not None and not issues:
        raise NotFound("newsletter.no_issue", id=issue_id)
    ids = [i.id for i in issues]
    counts: dict[int, dict[str, int]] = {i: {s.value: 0 for s in DeliveryStatus} for i in ids}
    if ids:
        for iid, status, n in (await session.execute(
                select(Delivery.issue_id, Delivery.status, func.count())
                .where(Delivery.issue_id.in_(ids)).group_by(Delivery.issue_id, Delivery.status))).all():
            counts[iid][status] = n
    return [IssueCounts(i.id, i.period_key, i.subject, i.status, i.created_at, counts[i.id])
            for i in issues]


async def resend(session: AsyncSession, ctx: AppContext, actor: Actor, issue_id: int,
                 which: str, only: Sequence[int] | None = None) -> int:
    """Put the `failed` or `unknown` deliveries of an issue back to pending (only for
    subscribers still confirmed) and reopen the issue (a paused one stays paused);
    returns how many. `only`: just these deliveries (the ones an alert offered). A
    running sender (the service) picks them up; the CLI runs one itself."""
    actor.require_admin()
    if which not in ("failed", "unknown"):
        raise ValidationFailed("error.one_of", field="which", value=which, choices="failed, unknown")
    issue = await session.get(NewsletterIssue, issue_id)
    if issue is None:
        raise NotFound("newsletter.no_issue", id=issue_id)
    confirmed = select(Subscriber.id).where(Subscriber.status == SubscriberStatus.CONFIRMED)
    chosen = [Delivery.id.in_(list(only))] if only is not None else []
    result = await session.execute(
        update(Delivery).where(Delivery.issue_id == issue_id, Delivery.status == which,
                               Delivery.subscriber_id.in_(confirmed.scalar_subquery()), *chosen)
        .values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None, claimed_by=None,
                claimed_at=None, handed_at=None)
        .execution_options(synchronize_session=False))
    count = rows_changed(result)
    if count and issue.status != IssueStatus.PAUSED:
        issue.status = IssueStatus.SENDING
        issue.finished_at = None
    await audit.record(session, actor, "newsletter.resend", "newsletter_issue", issue_id,
                       which=which, count=count)
    return count


async def resume(session: AsyncSession, ctx: AppContext, actor: Actor, issue_id: int) -> bool:
    """Resume an issue paused because too many of its first deliveries were refused; it is
    not paused automatically again. False when it was not paused (already resumed, done)."""
    actor.require_admin()
    issue = await session.get(NewsletterIssue, issue_id)
    if issue is None:
        raise NotFound("newsletter.no_issue", id=issue_id)
    result = await session.execute(
        update(NewsletterIssue).where(NewsletterIssue.id == issue_id,
                                      NewsletterIssue.status == IssueStatus.PAUSED)
        .values(status=IssueStatus.SENDING, resumed_at=ctx.now())
        .execution_options(synchronize_session=False))
    if not rows_changed(result):
        return False
    await session.refresh(issue)
    await audit.record(session, actor, "newsletter.resume", "newsletter_issue", issue_id)
    return True


@dataclass
class PeriodBuild:
    """What `build_for_period` did: `refused` names the issue already built for the period."""

    period_key: str
    built: BuildResult | None = None
    refused: NewsletterIssue | None = None


async def build_for_period(session: AsyncSession, ctx: AppContext, actor: Actor, *,
                           force: bool = False, now: datetime | None = None) -> PeriodBuild:
    """Build the issue of the current period (the latest `[newsletter] schedule` time), once.

    The one rule the scheduler and `infranet newsletter build` share, because a second
    issue in one period means every reader gets the newsletter twice (after a crash,
    `send` once built a new issue 14 s after the first). An issue of the period exists
    when one has the period's key or was built (by hand, with `force`) after the period
    began; then nothing is built and `refused` says which. `force` builds a new one anyway.
    """
    from infranet.newsletter.schedule import current_period, parse_schedule, scheduled_period_key

    now = now or ctx.now()
    trigger = parse_schedule(ctx.settings.newsletter.schedule, ctx.tz)
    moment = current_period(trigger, now, ctx.tz)
    key = scheduled_period_key(moment or now, ctx.tz)
    if force:
        key = manual_period_key(ctx)
        return PeriodBuild(key, await build_issue(session, ctx, actor, period_key=key, force=True))
    existing = await issue_of_period(session, ctx, moment or now)
    if existing is not None:
        return PeriodBuild(key, refused=existing)
    return PeriodBuild(key, await build_issue(session, ctx, actor, period_key=key))


async def issue_of_period(session: AsyncSession, ctx: AppContext,
                          moment: datetime) -> NewsletterIssue | None:
    """The issue of the period that began at scheduled time `moment`: the one with its key,
    or the latest built by hand since then."""
    from infranet.newsletter.schedule import scheduled_period_key

    key = scheduled_period_key(moment, ctx.tz)
    query = select(NewsletterIssue).where(
        (NewsletterIssue.period_key == key) | (NewsletterIssue.created_at >= moment))
    return await session.scalar(query.order_by(NewsletterIssue.id.desc()).limit(1))


def manual_period_key(ctx: AppContext) -> str:
    return "manual:" + ctx.now().astimezone(ctx.tz).strftime("%Y-%m-%dT%H:%M:%S")


async def send_pending(ctx: AppContext, *, give_up_after: float | None = None,
                       issue_ids: Sequence[int] | None = None) -> Any:
    """Recover crash leftovers (as `unknown`, admins told), then send every pending delivery."""
    from infranet.newsletter.recovery import alert_unknown, recover_interrupted
    from infranet.newsletter.sender import Sender

    async with ctx.db.transaction() as session:
        recovered = await recover_interrupted(session, ctx)
    await alert_unknown(ctx, recovered)
    return await Sender(ctx, give_up_after=give_up_after,
                        issue_ids=list(issue_ids) if issue_ids is not None else None).run()
