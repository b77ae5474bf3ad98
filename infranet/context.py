"""What every business function may need: settings, region, database, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from infranet.config import Settings
from infranet.region import Region, load_region
from infranet.storage.database import Database
from infranet.storage.types import utcnow


@dataclass
class AppContext:
    settings: Settings
    region: Region
    db: Database
    secret_key: bytes
    clock: Callable[[], datetime] = field(default=utcnow)

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
        from infranet.security import load_or_create_secret_key

        region = load_region(settings.region.districts_file)
        db = Database(settings.database.url, echo=settings.database.echo,
                      pool_size=settings.database.pool_size)
        key = secret_key if secret_key is not None else load_or_create_secret_key(settings)
        return cls(settings=settings, region=region, db=db, secret_key=key)
