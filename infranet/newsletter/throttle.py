"""How fast the sender may go: the overall rate limit and the per-domain slow-down.

`RateLimiter` spaces messages of all workers to `[smtp] max_rate` per second.
`DomainThrottle` pauses a recipient domain that answered 4xx (or 421): the pause
doubles on each refusal and halves on each success, while other domains go on at
full speed. Both are per process, in memory: a restarted sender starts at full speed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


class RateLimiter:
    """At most `rate` messages per second across all workers (0 = unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next_at)
        self.next_at = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass
class DomainState:
    interval: float
    blocked_until: float


class DomainThrottle:
    """A domain that answered 4xx (or 421) is paused, the pause doubling on each
    refusal and halving on each success; other domains go on at full speed."""

    def __init__(self, base: float, cap: float = 900.0) -> None:
        self.base, self.cap = base, cap
        self.states: dict[str, DomainState] = {}

    def blocked(self) -> list[str]:
        now = time.monotonic()
        return [d for d, s in self.states.items() if s.blocked_until > now]

    def refused(self, domain: str) -> None:
        state = self.states.get(domain)
        interval = min(self.cap, state.interval * 2 if state else self.base)
        self.states[domain] = DomainState(interval, time.monotonic() + interval)

    def accepted(self, domain: str) -> None:
        state = self.states.get(domain)
        if state is None:
            return
        state.interval /= 2
        if state.interval < self.base / 4:
            del self.states[domain]
        else:
            state.blocked_until = time.monotonic() + state.interval / 2

    def next_unblock(self) -> float | None:
        times = [s.blocked_until for s in self.states.values()]
        return min(times) if times else None
