"""Fetching the followed calendars: the periodic round, one source now, backoff, and telling
the organisation's members what they need to know.

A round (`refresh_due`, the calendar's job every few minutes) claims the active sources that
are due in one short write transaction (pushing their `next_fetch_at` past a lease, with
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so that two instances never fetch one source
twice), fetches them a few at a time with the conditional headers from the last answer
(`infranet.web.fetch`: public addresses only, a size cap, a timeout), and then records what
happened: every fetch that imports nothing in one write transaction, each
import in one of its own:

- 304, or a body whose SHA-256 is the one last imported: nothing to import;
- a changed body: imported through `source_sync.sync_source`, in the transaction that also
  records the fetch (a refused file rolls the import back and counts as a failure);
- a failure (the fetcher's `FetchFailed`, a file the import refuses): `failures` + 1 and
  the next try after `backoff()`.

Each source is fetched every `[sources] interval_minutes`; after failures the wait doubles,
at most a day. The members of the organisation are told (`ctx.notices`, the bot when it
runs) once when a source has failed `FAILURES_TOLD` times in a row, once when it works
again after that, and of the new conflicts an import found. Whether to tell is decided in
the transaction that records the fetch (`failure_notified`), so telling happens once
whichever instance fetched.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import or_, select, update

from infranet.calendar.ics_conflicts import notices_for_others
from infranet.calendar.ics_read import decode_text
from infranet.calendar.source_sync import SyncReport, prepare_source, sync_source, write_ahead
from infranet.calendar.sources import get_source
from infranet.context import AppContext
from infranet.errors import InfranetError, ValidationFailed
from infranet.i18n import numeric_date
from infranet.storage.actors import Actor
from infranet.storage.models import CalendarSource, SourceStatus
from infranet.web.fetch import Fetched, Fetcher, FetchFailed

log = logging.getLogger(__name__)

BATCH = 100  # sources claimed by one transaction of a round
CONCURRENCY = 8  # fetches in flight at once
MAX_BATCHES = 20  # a round ends after this many batches; the rest waits for the next one
LEASE = timedelta(minutes=30)  # a claimed source not recorded by then (a crash) is due again
FAILURES_TOLD = 3
MAX_WAIT = timedelta(days=1)
MAX_CONFLICTS_TOLD = 10

State = Literal["imported", "unchanged", "not_modified", "failed", "gone"]


@dataclass(frozen=True)
class Claim:
    """What one fetch needs, read in the claiming transaction (no ORM object crosses it)."""

    id: int
    url: str
    etag: str | None
    last_modified: str | None
    content_hash: str | None


@dataclass
class Outcome:
    """What became of one source in a round or a check."""

    source_id: int
    name: str
    state: State
    report: SyncReport | None = None
    failure: FetchFailed | InfranetError | None = None
    failures: int = 0
    next_fetch_at: Any = None
    notices: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def error(self, lang: str) -> str:
        return self.failure.localized(lang) if self.failure is not None else ""


def backoff(interval: timedelta, failures: int) -> timedelta:
    """The wait before the next fetch: the interval while it works; after the n-th failure in
    a row, interval x 2^(n-1) (a blip costs one interval), at most a day."""
    if failures <= 0:
        return interval
    return min(interval * 2 ** min(failures - 1, 20), max(MAX_WAIT, interval))


def decode(body: bytes, content_type: str | None) -> str | None:
    """The calendar's text: in the charset its server names, else UTF-8 (a BOM dropped);
    None when it is neither. (Other encodings are the importer's to detect.)"""
    charset = None
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    for encoding in dict.fromkeys(c for c in (charset, "utf-8-sig") if c):
        try:
            text = body.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8")
                               else encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        return text
    return decode_text(body)  # Windows-1250 or ISO-8859-2, as Polish calendars may be


def fetcher_for(ctx: AppContext) -> Fetcher:
    settings = ctx.settings.sources
    return Fetcher(max_bytes=settings.max_bytes, timeout=settings.timeout_seconds,
                   allow_private=settings.allow_private)


async def refresh_due(ctx: AppContext, *, fetcher: Fetcher | None = None) -> list[Outcome]:
    """Fetch every active source that is due and record what happened (see the module's
    docstring); never raises for one source's trouble. `fetcher`: a configured one (tests);
    by default one made from `[sources]`, closed at the end."""
    own = fetcher is None
    active = fetcher or fetcher_for(ctx)
    outcomes: list[Outcome] = []
    try:
        for _batch in range(MAX_BATCHES):
            claims = await _claim_due(ctx)
            outcomes.extend(await _fetch_and_record(ctx, active, claims))
            if len(claims) < BATCH:
                break
    finally:
        if own:
            await active.aclose()
    if outcomes:
        states = Counter(outcome.state for outcome in outcomes)
        log.info("calendar sources: %d fetched (%s)", len(outcomes),
                 ", ".join(f"{count} {state}" for state, count in sorted(states.items())))
    return outcomes


async def check_source(ctx: AppContext, actor: Actor, source_id: int, *,
                       fetcher: Fetcher | None = None) -> Outcome:
    """Fetch one source now, whenever it is due, and record it as a round would."""
    async with ctx.db.read() as session:
        source = await get_source(session, source_id)
        actor.require_org(source.organisation_id)
        if source.url is None:
            raise ValidationFailed("sources.no_url", id=source.id)
        claim = Claim(source.id, source.url, source.etag, source.last_modified, source.content_hash)
    own = fetcher is None
    active = fetcher or fetcher_for(ctx)
    try:
        outcomes = await _fetch_and_record(ctx, active, [claim])
    finally:
        if own:
            await active.aclose()
    if not outcomes:  # recording it failed (logged): say so rather than report nothing
        raise InfranetError()
    return outcomes[0]


async def _claim_due(ctx: AppContext) -> list[Claim]:
    now = ctx.now()
    async with ctx.db.transaction() as session:
        due = (select(CalendarSource.id)
               .where(CalendarSource.status == SourceStatus.ACTIVE, CalendarSource.url.is_not(None),
                      or_(CalendarSource.next_fetch_at.is_(None), CalendarSource.next_fetch_at <= now))
               .order_by(CalendarSource.next_fetch_at, CalendarSource.id).limit(BATCH)
               .with_for_update(skip_locked=True))
        ids = list((await session.scalars(due)).all())
        if not ids:
            return []
        await session.execute(update(CalendarSource).where(CalendarSource.id.in_(ids))
                              .values(next_fetch_at=now + LEASE))
        rows = await session.execute(
            select(CalendarSource.id, CalendarSource.url, CalendarSource.etag,
                   CalendarSource.last_modified, CalendarSource.content_hash)
            .where(CalendarSource.id.in_(ids)).order_by(CalendarSource.id))
        return [Claim(id_, url, etag, modified, digest)
                for id_, url, etag, modified, digest in rows if url]


@dataclass
class _Fetch:
    """One fetch's result, with what it means before anything is written."""

    claim: Claim
    result: Fetched | FetchFailed
    failure: FetchFailed | InfranetError | None = None
    text: str | None = None
    digest: str | None = None

    @property
    def imports(self) -> bool:
        return self.failure is None and self.text is not None and self.digest != self.claim.content_hash


def _prepare(claim: Claim, result: Fetched | FetchFailed) -> _Fetch:
    fetch = _Fetch(claim, result)
    if isinstance(result, FetchFailed):
        fetch.failure = result
    elif not result.not_modified:
        fetch.digest = hashlib.sha256(result.body).hexdigest()
        fetch.text = decode(result.body, result.content_type)
        if fetch.text is None:
            fetch.failure = InfranetError("sources.not_text")
    return fetch


async def _fetch_and_record(ctx: AppContext, fetcher: Fetcher, claims: list[Claim]) -> list[Outcome]:
    """Fetch a few at a time; record every fetch that imports nothing (304, the same body, a
    failure) in one transaction, and each import in a transaction of its own."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(claim: Claim) -> Fetched | FetchFailed:
        async with limit:
            return await fetcher.get(claim.url, etag=claim.etag, last_modified=claim.last_modified)

    results = await asyncio.gather(*(one(claim) for claim in claims))
    fetches = [_prepare(claim, result) for claim, result in zip(claims, results, strict=True)]
    outcomes: list[Outcome] = []
    quick = [fetch for fetch in fetches if not fetch.imports]
    if quick:
        try:
            outcomes.extend(await _record_quick(ctx, quick))
        except Exception:  # one round's trouble never stops the next
            log.exception("calendar sources %s: could not record the fetches",
                          [fetch.claim.id for fetch in quick])
    for fetch in fetches:
        if fetch.imports:
            try:
                outcomes.append(await _import(ctx, fetch))
            except Exception:  # one source's trouble never ends the round
                log.exception("calendar source %s: could not record the fetch", fetch.claim.id)
    for outcome in outcomes:
        for key, params in outcome.notices:
            await ctx.notices.tell_organisation(params.pop("organisation_id"), key, **params)
    order = {claim.id: index for index, claim in enumerate(claims)}
    return sorted(outcomes, key=lambda outcome: order.get(outcome.source_id, 0))


async def _record_quick(ctx: AppContext, fetches: list[_Fetch]) -> list[Outcome]:
    outcomes = []
    async with ctx.db.transaction() as session:
        rows = await session.scalars(select(CalendarSource).where(
            CalendarSource.id.in_([fetch.claim.id for fetch in fetches])))
        sources = {source.id: source for source in rows}
        for fetch in fetches:
            source = _followed(sources.get(fetch.claim.id), fetch.claim)
            if source is None:
                outcomes.append(Outcome(fetch.claim.id, "", "gone"))
            elif fetch.failure is not None:
                outcome = Outcome(source.id, source.name, "failed", failure=fetch.failure)
                _failed(ctx, source, fetch.failure, outcome)
                outcomes.append(outcome)
            else:
                assert isinstance(fetch.result, Fetched)
                outcome = Outcome(source.id, source.name,
                                  "not_modified" if fetch.result.not_modified else "unchanged")
                _worked(ctx, source, fetch.result, fetch.digest, outcome)
                outcomes.append(outcome)
    return outcomes


async def _import(ctx: AppContext, fetch: _Fetch) -> Outcome:
    """A changed calendar imported in the transaction that records its fetch; a file the
    import refuses rolls that back and is recorded as a failure in a second one."""
    assert isinstance(fetch.result, Fetched) and fetch.text is not None
    failure: InfranetError
    try:
        # Read and checked before the transaction: the write lock is not held meanwhile.
        plan = await prepare_source(ctx, fetch.claim.id, fetch.text)
        ahead = await write_ahead(ctx, fetch.claim.id, plan)  # SQLite, a big calendar
        async with ctx.db.transaction() as session:
            source = _followed(await session.get(CalendarSource, fetch.claim.id), fetch.claim)
            if source is None:
                return Outcome(fetch.claim.id, "", "gone")
            outcome = Outcome(source.id, source.name, "unchanged")
            if source.content_hash != fetch.digest:  # (else imported meanwhile, by a check)
                outcome.state = "imported"
                outcome.report = (ahead if ahead is not None
                                  else await sync_source(session, ctx, source, fetch.text, plan=plan))
            _worked(ctx, source, fetch.result, fetch.digest, outcome)
            return outcome
    except InfranetError as exc:  # the import refused the file: rolled back, a failure
        failure = exc
    except Exception as exc:
        log.exception("calendar source %s: the import failed", fetch.claim.id)
        failure = InfranetError("sources.import_failed", detail=type(exc).__name__)
    async with ctx.db.transaction() as session:
        source = _followed(await session.get(CalendarSource, fetch.claim.id), fetch.claim)
        if source is None:
            return Outcome(fetch.claim.id, "", "gone")
        outcome = Outcome(source.id, source.name, "failed", failure=failure)
        _failed(ctx, source, failure, outcome)
        return outcome


def _followed(source: CalendarSource | None, claim: Claim) -> CalendarSource | None:
    if source is None or source.status != SourceStatus.ACTIVE or source.url != claim.url:
        return None  # removed (or re-pointed) while we fetched: nothing of this fetch applies
    return source


def _interval(ctx: AppContext) -> timedelta:
    return timedelta(minutes=ctx.settings.sources.interval_minutes)


def _worked(ctx: AppContext, source: CalendarSource, result: Fetched, digest: str | None,
            outcome: Outcome) -> None:
    now = ctx.now()
    source.last_fetched_at = source.last_ok_at = now
    source.etag = (result.etag or None) and result.etag[:500]
    source.last_modified = (result.last_modified or None) and result.last_modified[:100]
    if digest is not None:
        source.content_hash = digest
    source.failures, source.last_error = 0, None
    source.next_fetch_at = outcome.next_fetch_at = now + _interval(ctx)
    if source.failure_notified:
        source.failure_notified = False
        outcome.notices.append(("sources.recovered", _about(source)))
    conflicts = outcome.report.conflicts if outcome.report else []
    if conflicts:
        items = "\n".join(f"• {c.title} ({numeric_date(c.starts_at.astimezone(ctx.tz).date())}): "
                          f"{c.other_title}, {c.other_organisation}"
                          for c in conflicts[:MAX_CONFLICTS_TOLD])
        if len(conflicts) > MAX_CONFLICTS_TOLD:
            items += f"\n… (+{len(conflicts) - MAX_CONFLICTS_TOLD})"
        outcome.notices.append(("sources.conflicts", {**_about(source), "items": items}))
        # ... and the other organisations hear of it, as when a member keeps a clashing date.
        name = source.organisation.name if source.organisation else source.name
        for org_id, key, params in notices_for_others(ctx, name, conflicts):
            outcome.notices.append((key, {"organisation_id": org_id, **params}))


def _failed(ctx: AppContext, source: CalendarSource, failure: FetchFailed | InfranetError | None,
            outcome: Outcome) -> None:
    now = ctx.now()
    source.last_fetched_at = now
    source.failures += 1
    source.last_error = failure.localized("en")[:500] if failure is not None else None
    source.next_fetch_at = outcome.next_fetch_at = now + backoff(_interval(ctx), source.failures)
    outcome.failures = source.failures
    if source.failures >= FAILURES_TOLD and not source.failure_notified:
        source.failure_notified = True
        outcome.notices.append(("sources.failing", {**_about(source), "count": source.failures,
                                                    "error": failure}))


def _about(source: CalendarSource) -> dict[str, Any]:
    return {"organisation_id": source.organisation_id, "name": source.name, "id": source.id,
            "url": source.url or ""}
