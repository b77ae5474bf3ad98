"""The whole process: one asyncio loop with the HTTP server, the bot and one scheduler.

    run_service(ctx)                      `infranet run`
      prepare_database(ctx)               migrate, region, config admins, secretariat, key
      Service(ctx)
        create_scheduler(ctx)             the one APScheduler of the process
        build_components(ctx, scheduler)  network, calendar, newsletter, site, bot (below)
        schedule_jobs(...)                every job each component declares
        create_app(ctx, components)       Starlette: every component's routes, /healthz
      Service.run()                       start all, serve until SIGTERM, stop in reverse

The context (`AppContext`, made by `AppContext.create`) carries what every component
shares: settings, region, database, clock, and the explicit ways they talk:
- `ctx.changes`: change signals (`infranet/changes.py`). The calendar raises `events`, the
  network raises `people`; the feed cache and the bot's memory of speakers follow them.
- `ctx.alerts`: alerts for the admins (`admin_alerts.py`): the newsletter raises them
  (SMTP outage, unknown deliveries, a paused issue, an unreadable bounce mailbox).
- `ctx.notices`: notices for an organisation's members (`member_notices.py`): the
  calendar raises them (a followed calendar that keeps failing, conflicts it brought).
  The bot, when it runs in this process, listens to both; without it they are logged.
And one collaborator passed by hand: the bot gets the newsletter's "send what is pending
now" (`NewsletterService.kick`) for /newsletter_send and the alerts' buttons.

No component imports this module or another component's internals beyond the rules
import-linter checks (pyproject.toml).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import ipaddress
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.engine import make_url

from infranet.component import Component
from infranet.config import Settings
from infranet.context import AppContext
from infranet.http import create_app
from infranet.http_protocol import server_config
from infranet.network.members import ensure_config_admins, ensure_secretariat
from infranet.security import SecretKeyError
from infranet.storage.districts import sync_region
from infranet.storage.engine import private_dir
from infranet.storage.migrate import PG_MIGRATION_LOCK, migrate, pending

log = logging.getLogger(__name__)


class StartupError(Exception):
    """A problem that stops the service from starting, worded for the operator."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the service owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def create_scheduler(ctx: AppContext) -> AsyncIOScheduler:
    # Misfire grace of an hour and coalescing: a job missed during a restart
    # runs once when the service is back, not never and not many times.
    return AsyncIOScheduler(timezone=ctx.tz, job_defaults={
        "misfire_grace_time": 3600, "coalesce": True, "max_instances": 1})


def build_components(ctx: AppContext, scheduler: AsyncIOScheduler) -> list[Component]:
    from infranet.bot.service import build as build_bot
    from infranet.calendar.service import build as build_calendar
    from infranet.network.service import build as build_network
    from infranet.newsletter.service import NewsletterService
    from infranet.newsletter.service import component as newsletter_component
    from infranet.site.service import build as build_site

    newsletter = NewsletterService(ctx, scheduler)
    return [build_network(ctx), build_calendar(ctx), newsletter_component(newsletter),
            build_site(ctx),
            # The bot starts the newsletter's sender after /newsletter_send and its buttons.
            build_bot(ctx, scheduler, start_sending=newsletter.kick)]


def schedule_jobs(scheduler: AsyncIOScheduler, components: list[Component]) -> None:
    """Every periodic job of the process, as its component declares it, on the one scheduler
    (which runs a missed job once when the service is back, never twice at a time):
    network: the referral purge (04:15); calendar: the round of calendars followed by URL
    (every 5 min) and endless series' horizons (04:30); newsletter: the issue on
    `[newsletter] schedule` and the expiry of unconfirmed sign-ups (04:15); site: proposers
    told the outcome of their proposal (every 30 s) and forgotten 30 days later (04:40);
    bot: training deadline reminders (08:05) and, while the bot runs here, waiting items
    announced to the admins (every 3 s)."""
    for component in components:
        for job in component.jobs:
            scheduler.add_job(job.run, job.trigger, id=job.id, name=job.name, replace_existing=True)


async def prepare_database(ctx: AppContext) -> None:
    """Migrate (unless configured not to), load the region, seed config admins and the network's
    secretariat (the organisation of admins who have none), then load the
    secret key: a generated key lives in the database (shared by every instance on it), so it
    can only be read once the migrations have made its table."""
    try:
        if ctx.settings.database.migrate_on_start:
            await migrate(ctx.db)
        elif await pending(ctx.db):
            raise StartupError("the database schema is out of date: run 'infranet migrate'")
        async with ctx.db.transaction() as session:
            if ctx.db.dialect == "postgresql":
                # Instances starting together (compose, a rolling deploy) would otherwise all
                # insert the region's districts at once, and all but one fail on the unique slug.
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                      {"k": PG_MIGRATION_LOCK})
            await sync_region(session, ctx.region)
            await ensure_config_admins(session, ctx.settings.telegram.admin_ids)
            # After the admins: an admin without an organisation speaks for the secretariat.
            await ensure_secretariat(session, ctx.settings.network.secretariat_name)
        await ctx.load_secret_key()
    except StartupError:
        raise
    except SecretKeyError as exc:
        raise StartupError(str(exc)) from None
    except (OSError, ConnectionError) as exc:
        raise StartupError(f"cannot reach the database ({safe_url(ctx.db.url)}): {exc}") from None
    except Exception as exc:
        if type(exc).__module__.startswith(("sqlalchemy", "asyncpg", "sqlite3")):
            raise StartupError(
                f"cannot use the database ({safe_url(ctx.db.url)}): {exc}") from None
        raise


def settle_heap() -> None:
    """Freeze what start-up built (modules, mappers, the bot Application, the region, templates):
    it lives as long as the process, and every full collection would otherwise scan it again.
    With about 150,000 such objects a full collection paused the loop for 75-150 ms, in the
    middle of somebody's chat update; frozen, about 30 ms."""
    gc.collect()
    gc.freeze()


def warn_about_settings(settings: Settings) -> None:
    """One log line for each setting that works but is probably not what production wants."""
    url = urlsplit(settings.http.public_base_url)
    if url.scheme != "https" and not _is_loopback(url.hostname or ""):
        log.warning("[http] public_base_url %s is not https: confirmation and unsubscribe links "
                    "will travel unencrypted; put a TLS proxy in front and set an https:// URL",
                    settings.http.public_base_url)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def single_instance_lock(ctx: AppContext) -> Iterator[None]:
    """One service process per SQLite file: SQLite has a single writer, and the
    newsletter sender relies on that. A second one is refused with a clear message.

    The lock file sits beside the database's real path (symlinks resolved), so the same
    file reached through a symlink, or another spelling of its path, takes the same lock."""
    if not ctx.db.is_sqlite:
        yield
        return
    database = make_url(ctx.db.url).database or ":memory:"
    if database == ":memory:":
        yield
        return
    private_dir(Path(database).parent)
    lock_path = Path(database).resolve().with_suffix(".lock")
    fh: IO[str] = os.fdopen(os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600), "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise StartupError(
            f"another infranet process already uses {database}; SQLite serves one instance. "
            "Stop the other one, or use PostgreSQL to run several.") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


async def run_service(ctx: AppContext) -> None:
    """`infranet run`: lock the database, migrate, load the secret key, then build the service
    and serve. The service is built only once the key is loaded, because the bot's webhook
    secret is derived from it when it is not configured."""
    with single_instance_lock(ctx):
        await prepare_database(ctx)
        await Service(ctx).run(prepared=True)


class Service:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.scheduler = create_scheduler(ctx)
        self.components = build_components(ctx, self.scheduler)
        schedule_jobs(self.scheduler, self.components)
        self.app = create_app(ctx, self.components)
        self.server = _Server(server_config(self.app, ctx.settings))
        self.stopping = asyncio.Event()
        self.started = asyncio.Event()

    async def run(self, *, prepared: bool = False) -> None:
        """Lock, prepare the database and serve until stopped; `prepared`: the caller has
        done the first two (see `run_service`)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        warn_about_settings(self.ctx.settings)
        with contextlib.nullcontext() if prepared else single_instance_lock(self.ctx):
            if not prepared:
                await prepare_database(self.ctx)
            await self._start()
            try:
                await self.stopping.wait()
            finally:
                await self._stop()

    async def _start(self) -> None:
        self.scheduler.start()
        self.server_task = asyncio.create_task(self.server.serve(), name="http")
        while not self.server.started:
            if self.server_task.done():
                await self.server_task
                raise StartupError(f"the HTTP server could not listen on "
                                   f"{self.ctx.settings.http.host}:{self.ctx.settings.http.port}")
            await asyncio.sleep(0.02)
        for component in self.components:
            if component.start:
                await component.start()
        settle_heap()
        log.info("infranet is running: http://%s:%s/healthz", self.ctx.settings.http.host,
                 self.server.servers[0].sockets[0].getsockname()[1] if self.server.servers else "?")
        self.started.set()

    async def _stop(self) -> None:
        """Stop taking new work, let in-flight work finish, all within the timeout."""
        log.info("stopping")
        budget = self.ctx.settings.service.shutdown_timeout_s
        self.server.should_exit = True
        for component in reversed(self.components):
            if component.stop:
                try:
                    await asyncio.wait_for(component.stop(), timeout=budget / 2)
                except Exception:
                    log.exception("component %s did not stop cleanly", component.name)
        self.scheduler.shutdown(wait=False)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self.server_task, timeout=budget / 2)
        await self.ctx.db.dispose()
        log.info("stopped")
