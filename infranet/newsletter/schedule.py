"""The newsletter's cron schedule, read the way crontab users mean it.

APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0 (and
7), so `from_crontab("0 8 * * 1")` would fire on Tuesdays. Numeric weekdays
in `[newsletter] schedule` are therefore translated to names first.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _weekday_names(field: str) -> str:
    """crontab day-of-week numbers (0/7 = Sunday) to names, keeping ranges and steps."""
    def name(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if number > 7:
            raise ValueError(f"day of week {number} is out of range 0-7")
        return _DAY_NAMES[number]

    parts = []
    for part in field.split(","):
        base, slash, step = part.partition("/")
        parts.append(re.sub(r"\d+", name, base) + (slash + step if slash else ""))
    return ",".join(parts)


def parse_schedule(expression: str, tz: tzinfo) -> CronTrigger:
    """"minute hour day month day_of_week" in the region's zone; raises ValueError."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"[newsletter] schedule {expression!r} must have five fields: "
                         "minute hour day month day_of_week (e.g. '0 8 * * mon')")
    minute, hour, day, month, dow = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_weekday_names(dow), timezone=tz)


def current_period(trigger: CronTrigger, now: datetime, tz: tzinfo) -> datetime | None:
    """The latest scheduled time at or before `now` (looking back up to 400 days)."""
    for days in (1 / 24, 1, 8, 32, 400):
        fire = trigger.get_next_fire_time(None, now - timedelta(days=days))
        last = None
        while fire is not None and fire <= now:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if last is not None:
            return last
    return None


def scheduled_period_key(moment: datetime, tz: tzinfo) -> str:
    """One key per scheduled run: two instances firing for it build it once."""
    return "scheduled:" + moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")
