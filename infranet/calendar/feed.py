"""The feed cache: rendered VEVENTs and whole ICS feeds, kept fresh within a byte budget.

Each VEVENT is rendered once per (event id, revision, updated_at) (`infranet.calendar.
ics_writer`), kept as bytes, and a feed is assembled by concatenation. The filters
(`feed_filter`), the rows (`feed_load`) and the served feed (`feed_response`) are
their own modules; this one holds `FeedCache` alone (one class, about 400 lines).

Freshness: a feed is rebuilt when the calendar's version changes — (number of events,
max(events.updated_at), max(organisations.updated_at)), two indexed aggregates that are
the same on every instance. The version is read at most once per `check_interval`
seconds per process (and at once on a new day, when the feeds' windows move); a change
committed by this process invalidates at once.

Memory: everything the cache keeps is counted in bytes against `[calendar] feed_cache_mb`
(see `FeedCache`); filters are canonical (`parse_filter`), so equal feeds share one entry.

Validators: the identity and gzip bodies have different ETags; Last-Modified is a
calendar-wide bound that also covers events leaving a feed (see `FeedCache._last_modified`).
"""

from __future__ import annotations

import asyncio
import bisect
import gzip
import hashlib
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.event_queries import events_version
from infranet.calendar.feed_filter import FeedFilter, feed_name
from infranet.calendar.feed_load import (
    FULL_COLUMNS,
    audience_filter,
    district_names,
    feed_conditions,
    feed_rows,
    load_rows,
)
from infranet.calendar.feed_response import Feed
from infranet.calendar.ics_writer import CALENDAR_FOOTER, FeedRow, calendar_header, render_vevent
from infranet.context import AppContext
from infranet.storage.models import Event, EventStatus, Organisation
from infranet.storage.types import parse_timestamp, raw_timestamp

T = TypeVar("T")


# Rows read per step of a full build. Turning them into FeedRows costs the event loop about
# 3 ms per 250, and stretches to 2-3 times that while the worker thread renders (the two
# share the GIL): small steps keep other requests waiting little.
FULL_BUILD_CHUNK = 250

# Bytes a cached VEVENT costs beyond its text (the entry, its sort key, dates and ETag part),
# and what a cached feed costs beyond its bodies and its list of event ids. Measured with
# tracemalloc on a 20,000-event feed and rounded up.
EVENT_OVERHEAD = 400
FEED_OVERHEAD = 2048


@dataclass(slots=True)
class _Rendered:
    """One event's VEVENT as of one revision, shared by every feed that shows it."""

    revision: int
    updated_at: datetime
    key: tuple[datetime, int]  # feed order: start, then id
    tag: str  # its part of a feed's ETag, made once per change
    data: bytes

    @property
    def cost(self) -> int:
        return len(self.data) + EVENT_OVERHEAD


@dataclass
class _FeedState:
    """What one feed holds between builds, so that a change costs only the changed rows."""

    version: object
    day: date
    org_version: object
    event_count: int
    high_water: datetime | None  # max(updated_at) of the rows read at the last build
    order: array[int]  # event ids in feed order (8 bytes each, not a list of int objects)
    header: bytes
    feed: Feed
    cost: int = 0

    def measure(self) -> int:
        self.cost = (FEED_OVERHEAD + len(self.header) + self.order.itemsize * len(self.order)
                     + (len(self.feed.body) if self.feed.body is not None else 0)
                     + (len(self.feed._gzip) if self.feed._gzip is not None else 0))
        return self.cost


# Rows changed by a transaction that committed after our last read may carry an
# updated_at slightly older than what we saw (transactions here last milliseconds;
# instances' clocks are NTP-synchronised); re-reading this margin catches them.
HIGH_WATER_MARGIN = timedelta(seconds=10)
# Even without a visible version change, look for such late commits (and count the
# rows, which notices deletions) this often.
RECHECK_SECONDS = 300


class FeedCache:
    """Per-process cache of rendered VEVENTs and of whole feeds, within a byte budget.

    A feed's first build reads all its rows; later builds (after any change) read only the
    rows with `updated_at` above the last high-water mark (an indexed range), re-render
    those, and re-assemble the feed from cached VEVENT bytes. A new day (the feed window
    moves), fewer events than before (a deletion) or an organisation change rebuild fully.

    Memory: the VEVENT bytes (shared by all feeds), each feed's list of event ids and its
    identity and gzip bodies all count against `max_bytes` (`[calendar] feed_cache_mb`).
    Over the budget, the least recently used feeds are dropped, then the VEVENTs no kept feed
    shows. A feed whose body would take more than half the budget keeps no body: each
    response is assembled from the VEVENT bytes and streamed. The feed being served always
    stays, so the budget should hold the VEVENTs of the largest feed (about 1 kB per event).
    Filters come canonical from `parse_filter`, so equal feeds share one entry.
    """

    def __init__(self, ctx: AppContext, *, check_interval: float = 1.0,
                 max_bytes: int | None = None, cpu: Executor | None = None) -> None:
        self.ctx = ctx
        self.cpu = cpu  # renders and compresses; None: asyncio's default executor
        self.check_interval = check_interval
        self.max_bytes = (ctx.settings.calendar.feed_cache_mb * 2**20 if max_bytes is None
                          else max_bytes)
        self._events: dict[int, _Rendered] = {}
        self._event_bytes = 0
        self._states: OrderedDict[FeedFilter, _FeedState] = OrderedDict()
        self._feed_bytes = 0
        self._version: tuple[Any, ...] | None = None
        self._modified: tuple[tuple[Any, ...], datetime] | None = None
        self._checked_at = float("-inf")
        self._checked_local = -1
        self._count = 0
        self._count_tick = -1
        self._lock = asyncio.Lock()
        self.builds = 0
        self.full_builds = 0
        self.evictions = 0

    @property
    def size(self) -> int:
        """Bytes the cache holds, as counted against `max_bytes`."""
        return self._event_bytes + self._feed_bytes

    @property
    def feeds(self) -> int:
        return len(self._states)

    async def _offload(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.cpu, work)

    async def version(self) -> tuple[Any, ...]:
        local = self.ctx.changes.events.generation
        if (self._version is not None and local == self._checked_local
                and time.monotonic() - self._checked_at < self.check_interval
                and self._version[4] == self.ctx.now().date()):  # a new day moves the windows
            return self._version
        tick = int(time.time() // RECHECK_SECONDS)
        with_count = tick != self._count_tick
        async with self.ctx.db.read() as session:
            max_id, events_max, orgs_max, count = await events_version(session, with_count=with_count)
        if count is not None:
            self._count, self._count_tick = count, tick
        self._version = (self._count, max_id, events_max, orgs_max, self.ctx.now().date(), tick)
        self._checked_at, self._checked_local = time.monotonic(), local
        return self._version

    async def get(self, flt: FeedFilter) -> Feed:
        version = await self.version()
        state = self._states.get(flt)
        if state is not None and state.version == version:
            self._states.move_to_end(flt)
            return state.feed
        async with self._lock:
            state = self._states.get(flt)
            if state is not None and state.version == version:
                self._states.move_to_end(flt)
                return state.feed
            state = await self._build(flt, version, state)
            self._store(flt, state)
            return state.feed

    async def gzipped(self, feed: Feed) -> bytes:
        """The gzip body of a feed that keeps its body; kept (and counted) while the feed is."""
        if feed._gzip is not None:
            return feed._gzip
        assert feed.body is not None, "a streamed feed is compressed while it streams"
        body = feed.body
        data = await self._offload(lambda: gzip.compress(body, 6, mtime=0))
        state = self._states.get(feed.key)
        if state is not None and state.feed is feed and feed._gzip is None:
            feed._gzip = data
            before = state.cost
            self._feed_bytes += state.measure() - before
            if not self._lock.locked():  # a build in progress holds rows no feed lists yet;
                self._enforce(feed.key)  # it enforces the budget when it stores its feed
        return data

    def _store(self, flt: FeedFilter, state: _FeedState) -> None:
        old = self._states.pop(flt, None)
        if old is not None:
            self._feed_bytes -= old.cost
        self._states[flt] = state
        self._feed_bytes += state.measure()
        self._enforce(flt)

    def _enforce(self, keep: FeedFilter) -> None:
        """Drop the least recently used feeds (never `keep`, the one being served) and the
        VEVENTs only they showed, until the cache is within its budget."""
        evicted = False
        while self.size > self.max_bytes and len(self._states) > 1:
            victim = next(iter(self._states))
            if victim == keep:
                self._states.move_to_end(keep)
                continue
            self._feed_bytes -= self._states.pop(victim).cost
            self.evictions += 1
            evicted = True
        shown = sum(len(st.order) for st in self._states.values())
        if evicted or len(self._events) > shown + 1000:
            self._prune()

    def _prune(self) -> None:
        """Forget rendered VEVENTs no cached feed shows (evicted feeds, events that left every
        window), in place: streamed feeds read this dict when they respond."""
        used: set[int] = set()
        for st in self._states.values():
            used.update(st.order)
        for i in [i for i in self._events if i not in used]:
            self._event_bytes -= self._events.pop(i).cost

    def _remember(self, entries: Iterable[_Rendered]) -> None:
        events = self._events
        for entry in entries:
            old = events.get(entry.key[1])
            if old is not None:
                self._event_bytes -= old.cost
            events[entry.key[1]] = entry
            self._event_bytes += entry.cost

    def _stale(self, rows: Iterable[FeedRow]) -> list[FeedRow]:
        return [r for r in rows if (hit := self._events.get(r.id)) is None
                or hit.revision != r.revision or hit.updated_at != r.updated_at]

    def _renderer(self) -> Callable[[Sequence[FeedRow]], list[_Rendered]]:
        """What a worker thread runs: rows to cache entries, VEVENT bytes and all."""
        tz, tzid, organizer = self.ctx.tz, str(self.ctx.tz), self.ctx.settings.http.public_base_url

        def work(todo: Sequence[FeedRow]) -> list[_Rendered]:
            return [_Rendered(r.revision, r.updated_at, (r.starts_at, r.id),
                              f"{r.id}.{r.revision}.{r.updated_at.timestamp()}",
                              render_vevent(r, tz, tzid, organizer)) for r in todo]

        return work

    async def _render(self, rows: Sequence[FeedRow]) -> None:
        todo = self._stale(rows)
        if not todo:
            return
        work = self._renderer()
        self._remember(await self._offload(partial(work, todo)) if len(todo) > 50 else work(todo))

    async def _load_and_render(self, session: AsyncSession, flt: FeedFilter,
                               now: datetime) -> list[FeedRow]:
        """A full build's rows, rendered while the next rows are still being read: the
        database streams in chunks and each chunk is rendered in a worker thread. Between two
        chunks the event loop runs other requests (see FULL_BUILD_CHUNK)."""
        ctx = self.ctx
        conditions = await feed_conditions(session, ctx, flt, now)
        names = await district_names(session, ctx)
        query = (select(*FULL_COLUMNS)
                 .outerjoin(Organisation, Organisation.id == Event.organisation_id).where(*conditions))
        work = self._renderer()
        rows: list[FeedRow] = []
        jobs: list[asyncio.Future[list[_Rendered]]] = []
        result = await session.stream(query)
        async for part in result.partitions(FULL_BUILD_CHUNK):
            chunk = audience_filter(feed_rows(part, names), flt)
            rows.extend(chunk)
            todo = self._stale(chunk)
            if todo:
                jobs.append(asyncio.ensure_future(self._offload(partial(work, todo))))
        for job in jobs:
            self._remember(await job)
            await asyncio.sleep(0)  # a finished job's await does not yield
        rows.sort(key=attrgetter("starts_at", "id"))
        return rows

    async def _last_modified(self, session: AsyncSession, version: tuple[Any, ...],
                             now: datetime) -> datetime:
        """When any feed last changed, at the latest: the last change to any event or
        organisation, or the last moment an event left the feeds' windows (a cancellation
        older than the keep window, an end older than the past window).

        Calendar-wide on purpose: an event moved out of a feed's area or period is no longer
        among the feed's rows, and neither this process (after a restart or an eviction) nor
        another instance can know it was there. A wider bound makes `If-Modified-Since`
        answer 200 more often than needed, never 304 over a stale feed; ETags stay exact."""
        if self._modified is not None and self._modified[0] == version:
            return self._modified[1]
        settings = self.ctx.settings.calendar
        past = timedelta(days=settings.feed_past_days)
        keep = timedelta(days=settings.cancelled_keep_days)
        ended = await session.scalar(select(func.max(raw_timestamp(Event.last_ends_at)))
                                     .where(Event.last_ends_at < now - past))
        cancelled = await session.scalar(select(func.max(raw_timestamp(Event.cancelled_at))).where(
            Event.status == EventStatus.CANCELLED, Event.cancelled_at < now - keep,
            Event.last_ends_at >= now - past - keep))
        _count, _max_id, events_max, orgs_max, _day, _tick = version
        moments = [m for m in (events_max, orgs_max) if m is not None]
        if ended is not None:
            moments.append(parse_timestamp(ended) + past)
        if cancelled is not None:
            moments.append(parse_timestamp(cancelled) + keep)
        # Never after this moment (the Date header's clock, or a test's clock ahead of it).
        modified = min(max(moments, default=now), max(now, datetime.now(UTC))).replace(microsecond=0)
        self._modified = (version, modified)
        return modified

    def _assemble(self, order: array[int], header: bytes) -> list[bytes]:
        events = self._events
        return [header, *[events[i].data for i in order], CALENDAR_FOOTER]

    async def _build(self, flt: FeedFilter, version: tuple[Any, ...],
                     old: _FeedState | None) -> _FeedState:
        ctx = self.ctx
        now = ctx.now()
        count, _max_id, _events_max, orgs_max, today, _tick = version
        self.builds += 1
        full = (old is None or old.day != today or old.org_version != orgs_max
                or count < old.event_count or old.high_water is None)
        if old is not None and old.org_version != orgs_max:
            # Organiser names/contacts are inside the VEVENTs; every other feed is stale too
            # (its versions differ) and rebuilds fully before it is served again.
            self._events.clear()
            self._event_bytes = 0
        changed: set[int] = set()
        async with ctx.db.read() as session:
            if full:
                self.full_builds += 1
                rows = await self._load_and_render(session, flt, now)
                high_water = max((r.updated_at for r in rows), default=None)
            else:
                assert old is not None and old.high_water is not None
                since = old.high_water - HIGH_WATER_MARGIN
                touched = (await session.execute(
                    select(Event.id, Event.updated_at).where(Event.updated_at > since))).all()
                changed = {i for i, _ in touched}
                ids = sorted(changed)
                rows = []
                for start in range(0, len(ids), 500):  # by primary key: no plan can go astray
                    rows += await load_rows(session, ctx, flt, now,
                                            extra=[Event.id.in_(ids[start:start + 500])])
                rows.sort(key=attrgetter("starts_at", "id"))
                high_water = max([old.high_water, *(u for _, u in touched)])
            modified = await self._last_modified(session, version, now)
        if full or old is None:
            order = array("q", [r.id for r in rows])  # in feed order already
        else:
            events = self._events
            kept = [i for i in old.order if i not in changed]
            keys = [events[i].key for i in kept]
            await self._render(rows)
            for r in rows:
                pos = bisect.bisect(keys, (r.starts_at, r.id))
                keys.insert(pos, (r.starts_at, r.id))
                kept.insert(pos, r.id)
            order = array("q", kept)
        header = calendar_header(ctx, feed_name(ctx, flt), now)
        events = self._events
        digest = hashlib.blake2b(header, digest_size=16)
        # A VEVENT's tag is its event's revision; the organiser's name and published contacts
        # inside it change with the organisations' version, which the ETag must follow too.
        digest.update(f"{orgs_max.isoformat() if orgs_max else ''};".encode())
        digest.update(",".join([events[i].tag for i in order]).encode())
        etag = '"' + digest.hexdigest() + '"'
        size = len(header) + sum(len(events[i].data) for i in order) + len(CALENDAR_FOOTER)
        if old is not None and old.feed.etag == etag:
            body, gzipped = old.feed.body, old.feed._gzip  # nothing visible changed: keep them
        elif size + size // 8 <= self.max_bytes // 2:  # a gzip body is about 1/8 of it
            body, gzipped = b"".join(self._assemble(order, header)), None
        else:
            body, gzipped = None, None
        if old is not None and old.feed.etag != etag and modified <= old.feed.last_modified:
            # Changed within the second of the last change (HTTP dates count whole seconds).
            modified = old.feed.last_modified + timedelta(seconds=1)
        feed = Feed(key=flt, etag=etag, last_modified=modified, count=len(order), size=size, body=body,
                    _parts=None if body is not None else lambda: self._assemble(order, header),
                    _gzip=gzipped)
        return _FeedState(version=version, day=today, org_version=orgs_max, event_count=count,
                          high_water=high_water, order=order, header=header, feed=feed)
