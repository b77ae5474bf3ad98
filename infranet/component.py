"""The shape in which each component (network, calendar, newsletter, bot) plugs into the
service: its HTTP routes, start and stop, its facts for /healthz, and its periodic jobs,
which `infranet.app` puts on the process's one scheduler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from starlette.routing import BaseRoute


@dataclass(frozen=True)
class Job:
    """Periodic work a component asks for. Daily jobs run outside 02:00-03:00 local time,
    the hour the clocks change, and must be idempotent in the database: with several
    instances each runs its own scheduler."""

    id: str
    name: str
    trigger: BaseTrigger
    run: Callable[[], Awaitable[object]]


@dataclass
class Component:
    name: str
    routes: Sequence[BaseRoute] = field(default_factory=list)
    start: Callable[[], Awaitable[None]] | None = None
    stop: Callable[[], Awaitable[None]] | None = None
    # Extra facts for /healthz; must not raise and must not contain secrets.
    status: Callable[[], dict[str, Any]] | None = None
    jobs: Sequence[Job] = ()
