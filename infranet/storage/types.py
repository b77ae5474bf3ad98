"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String, type_coerce
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both engines.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so values are
    stored as naive UTC and made aware again on the way out. Naive input is
    refused: a naive datetime in this code base is a bug, not local time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def raw_timestamp(column: Any) -> Any:
    """A UTCDateTime column selected without per-value result processing, for paths that read
    thousands of rows (feeds, series); `parse_timestamp` turns the value into an aware UTC
    datetime on either engine."""
    return type_coerce(column, String()).label(column.key)


def unindexed(column: Any) -> Any:
    """`column + 0`: the same values, but a test on it chooses no index (on SQLite and
    PostgreSQL alike), so that the planner reads the index of the query's other terms."""
    return column + 0


def parse_timestamp(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite: naive UTC text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if value.tzinfo is UTC:  # asyncpg: already aware UTC
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
