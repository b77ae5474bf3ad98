"""The shape in which each package (calendar, newsletter, bot) plugs into the service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute


@dataclass
class Component:
    name: str
    routes: Sequence[BaseRoute] = field(default_factory=list)
    start: Callable[[], Awaitable[None]] | None = None
    stop: Callable[[], Awaitable[None]] | None = None
    # Extra facts for /healthz; must not raise and must not contain secrets.
    status: Callable[[], dict[str, Any]] | None = None
