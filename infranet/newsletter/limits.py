"""Abuse limits on subscription requests.

Anyone may type any address into the form or the bot, so without limits the
service could be made to mail-bomb a stranger's inbox, or be flooded by one client.

- Per address, shared by every instance because it lives in the subscriber row:
  at most one confirmation e-mail per `[newsletter] confirm_cooldown_minutes`,
  and after `confirm_daily_max` of them in a row none until a day has passed
  since the last. A request held back is answered exactly like one that sent
  mail (the answer never tells whether an address is known) and is only logged,
  with the address masked.
- Per client on every state-changing web form: a token bucket per IP address in this
  process (`form_burst`, refilled at `form_per_minute`); beyond it the form answers 429.
  The sign-up form has one bucket, the forms behind signed links (confirm, preferences,
  unsubscribe) another (see `infranet.newsletter.web`).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from infranet.config import NewsletterSettings
from infranet.storage.models import Subscriber

DAY = timedelta(days=1)
COOLDOWN = "cool-down"
DAILY_CAP = "daily cap"
MAX_CLIENTS = 10_000  # buckets kept; the least recently seen go first (they restart full)


def confirmation_hold(row: Subscriber, now: datetime, settings: NewsletterSettings) -> str | None:
    """Why no confirmation e-mail may go to this subscriber now (COOLDOWN or DAILY_CAP),
    or None when one may."""
    last = row.confirm_sent_at
    if last is None:
        return None
    since = now - last
    if since < timedelta(minutes=settings.confirm_cooldown_minutes):
        return COOLDOWN
    if since < DAY and (row.confirm_sends or 0) >= settings.confirm_daily_max:
        return DAILY_CAP
    return None


def record_confirmation(row: Subscriber, now: datetime) -> None:
    """Count a confirmation e-mail about to be sent; a day without one starts the count again,
    so no run of e-mails closer than a day apart is longer than `confirm_daily_max`."""
    last = row.confirm_sent_at
    fresh = last is None or now - last >= DAY
    row.confirm_sends = 1 if fresh else (row.confirm_sends or 0) + 1
    row.confirm_sent_at = now


def mask_address(email: str) -> str:
    """"a***@example.org": enough for an operator to tell log lines apart, not to read the address."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"


def client_key(host: str | None) -> str:
    """The unit a client is counted by: an IPv4 address, or the /64 network of an IPv6 one
    (a single subscriber line usually gets a whole /64, so counting single IPv6 addresses
    would let one client rotate through them)."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]  # not an address (a test client, a Unix socket): counted as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class ClientLimiter:
    """A token bucket per client, in this process only: `burst` requests at once, then
    `per_minute` on average. Memory stays bounded at `max_clients` buckets; dropping one
    only forgets a client's recent requests."""

    def __init__(self, burst: int, per_minute: float, *, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = float(burst)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at); oldest first

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def retry_after(self, host: str | None) -> int:
        """Take a token for this client: 0 when the request may go on, else the whole
        seconds (at least 1) after which it may, for the Retry-After header."""
        if not self.enabled:
            return 0
        now = self.clock()
        key = client_key(host)
        previous = self._buckets.pop(key, None)
        tokens = self.burst if previous is None else min(
            self.burst, previous[0] + (now - previous[1]) * self.rate)
        wait = 0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[key] = (tokens, now)  # re-inserted last: the most recently seen
        while len(self._buckets) > self.max_clients:
            del self._buckets[next(iter(self._buckets))]
        return wait
