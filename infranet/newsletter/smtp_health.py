"""Whether the SMTP server takes connections, and telling the admins when it stops and starts.

`SmtpHealth` is kept by the service across sender runs (one outage is one outage) and
read by /healthz. `announce_outage()` tells the admins once per outage and once when it
ends, across processes: `alerts.outage_changed()` flips one shared row, and only the
process whose UPDATE flipped it sends the alert.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from infranet.context import AppContext
from infranet.i18n import t
from infranet.newsletter import alerts

log = logging.getLogger(__name__)


@dataclass
class SmtpHealth:
    """Whether the SMTP server takes connections, as the senders of one process saw it last.

    Kept by the service across sender runs (so that one outage is one outage), read by
    /healthz; `alerted` remembers that the admins were told of the current outage."""

    failing_since: datetime | None = None
    error: str | None = None
    alerted: bool = False
    _started: float | None = None

    def failed(self, now: datetime, error: str) -> float:
        """Record a failed connection; returns how long (s) connections have been failing."""
        if self._started is None:
            self._started, self.failing_since = time.monotonic(), now
        self.error = error[:200]
        return time.monotonic() - self._started

    def recovered(self) -> None:
        self._started = self.failing_since = self.error = None

    @property
    def down(self) -> bool:
        return self._started is not None


async def announce_outage(ctx: AppContext, down: bool, error: str | None) -> None:
    """Tell the admins that an outage began or ended, once across processes: only the
    process whose UPDATE flips the shared flag does. Never fails the sender."""
    try:
        flipped = await alerts.outage_changed(ctx, down)
    except Exception:
        log.exception("newsletter: cannot record the SMTP outage state")
        flipped = True  # better twice than never
    if not flipped:
        return
    if down:
        await ctx.alerts.notify(t("en", "newsletter.alert_smtp_down", error=error),
                                t("pl", "newsletter.alert_smtp_down", error=error))
    else:
        await ctx.alerts.notify(t("en", "newsletter.alert_smtp_back"),
                                t("pl", "newsletter.alert_smtp_back"))
