"""What every business function may need: settings, region, database, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from infranet.admin_alerts import AdminAlerts
from infranet.changes import Changes
from infranet.config import Settings
from infranet.member_notices import MemberNotices
from infranet.region import Region, load_region
from infranet.storage.database import Database
from infranet.storage.types import utcnow


@dataclass
class AppContext:
    settings: Settings
    region: Region
    db: Database
    clock: Callable[[], datetime] = field(default=utcnow)
    # Set by `load_secret_key()` once the schema is migrated (the generated key lives in the
    # database), or given to `create()` by tests and tools; kept out of repr() and logs.
    key: bytes | None = field(default=None, repr=False)
    # Alerts for the admins: components notify, the bot (when it runs here) listens.
    alerts: AdminAlerts = field(default_factory=AdminAlerts, repr=False)
    # Change signals: components say what changed, this process's caches forget it.
    changes: Changes = field(default_factory=Changes, repr=False)
    # News for an organisation's members: components tell, the bot (when it runs here) sends.
    notices: MemberNotices = field(default_factory=MemberNotices, repr=False)

    @property
    def secret_key(self) -> bytes:
        if self.key is None:
            raise RuntimeError("the secret key is not loaded yet: start-up loads it after the "
                               "migrations (infranet.app.prepare_database)")
        return self.key

    async def load_secret_key(self) -> bytes:
        """Load the signing key (configured, else the database's); see infranet.security."""
        from infranet.security import load_secret_key

        if self.key is None:
            self.key = await load_secret_key(self.settings, self.db)
        return self.key

    @property
    def tz(self) -> tzinfo:
        return self.settings.tz

    @property
    def data_dir(self) -> Path:
        return self.settings.service.data_dir

    def now(self) -> datetime:
        return self.clock()

    @classmethod
    def create(cls, settings: Settings, *, secret_key: bytes | None = None) -> AppContext:
        """A context whose secret key is `secret_key`, or (None) loaded at start-up by
        `prepare_database()`, after the migrations that create its table."""
        region = load_region(settings.region.districts_file)
        db = Database(settings.database.url, echo=settings.database.echo,
                      pool_size=settings.database.pool_size)
        return cls(settings=settings, region=region, db=db, key=secret_key)
