"""Recurrence rules without storage: every rule shape expands exactly as dateutil's own
`rrulestr` does (across the DST changes of Europe/Warsaw), an endless rule up to the
horizon it is stored with, RDATEs join the series, and hostile rules are refused or cut
quickly (time and count)."""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from infranet.calendar import recurrence
from infranet.calendar.recurrence_rules import MAX_OCCURRENCES
from infranet.errors import ValidationFailed

W = ZoneInfo("Europe/Warsaw")
# Tuesday 20 October 2026, 10:00 in Warsaw: both DST changes (25.10.2026, 28.3.2027) follow.
FIRST = datetime(2026, 10, 20, 10, 0, tzinfo=W)
LATEST = datetime(2028, 10, 20, 12, 0, tzinfo=W)  # the planning horizon used below

SHAPES = [
    "FREQ=DAILY;COUNT=10",
    "FREQ=DAILY;INTERVAL=3;UNTIL=20270415T000000Z",
    "FREQ=DAILY;BYDAY=SA,SU;BYMONTH=3,10;COUNT=30",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;COUNT=20",
    "FREQ=WEEKLY;BYDAY=SU;WKST=MO;UNTIL=20270501",
    "FREQ=MONTHLY;BYDAY=2MO;COUNT=8",
    "FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20271231",
    "FREQ=MONTHLY;BYMONTHDAY=15,-1;COUNT=10",
    "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=31",  # only the months that have a 31st; no end
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=6",
    "FREQ=MONTHLY;BYDAY=TU;BYSETPOS=1,3",  # no end
    "FREQ=YEARLY;BYMONTH=3,10;BYDAY=-1SU",  # the DST days themselves; no end
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",  # leap days only; no end
    "FREQ=YEARLY;INTERVAL=1;BYMONTH=11;BYDAY=1TH;COUNT=2",
    "FREQ=DAILY",  # every day to the horizon
]


def _stored(rule: str, *, all_day: bool = False, first: datetime = FIRST) -> str:
    return recurrence.canonical_rule(rule, all_day=all_day, first_start_local=first, tz=W, latest=LATEST)


def _dateutil_starts(rule: str, dtstart: datetime) -> list[datetime]:
    """dateutil's own expansion, cut at the horizon the way an endless series is."""
    found: list[datetime] = []
    for occ in rrulestr("RRULE:" + rule, dtstart=dtstart):
        if occ > LATEST.replace(tzinfo=dtstart.tzinfo) or len(found) == MAX_OCCURRENCES:
            break
        found.append(occ)
    return found


@pytest.mark.parametrize("rule", SHAPES)
def test_timed_rules_expand_as_dateutil_does_across_dst(rule: str) -> None:
    text = _stored(rule)
    end = FIRST + timedelta(hours=2)
    spans = recurrence.expand(text, FIRST.astimezone(UTC), end.astimezone(UTC), False, W)
    expected = _dateutil_starts(recurrence.rule_part(text) or "", FIRST)
    assert [s.start for s in spans] == [occ.astimezone(UTC) for occ in expected]
    assert spans  # (the leap-day rule: its one date before the horizon, 29.2.2028)
    for span in spans:  # 10:00–12:00 local on every date, summer time or winter time
        assert (span.start.astimezone(W).hour, span.end.astimezone(W).hour) == (10, 12)
    offsets = {span.start.astimezone(W).utcoffset() for span in spans}
    if spans[-1].start > datetime(2027, 4, 1, tzinfo=UTC) and len(spans) > 12:
        assert len(offsets) == 2  # the series does cross a DST change
    assert recurrence.is_endless(text) == (recurrence.horizon_of(text) is not None)


@pytest.mark.parametrize("rule", [s for s in SHAPES if "BYSETPOS" not in s][:10])
def test_all_day_rules_expand_as_dateutil_does(rule: str) -> None:
    rule = rule.replace("UNTIL=20270415T000000Z", "UNTIL=20270415")
    text = _stored(rule, all_day=True)
    start = datetime(2026, 10, 19, 22, 0, tzinfo=UTC)  # local midnight of 20.10.2026
    end = datetime(2026, 10, 21, 22, 0, tzinfo=UTC)  # two days
    spans = recurrence.expand(text, start, end, True, W)
    expected = _dateutil_starts(recurrence.rule_part(text) or "", datetime(2026, 10, 20))
    assert [s.start.astimezone(W).date() for s in spans] == [occ.date() for occ in expected]
    for span in spans:
        local = (span.start.astimezone(W), span.end.astimezone(W))
        assert local[0].hour == local[1].hour == 0 and (local[1].date() - local[0].date()).days == 2


def test_the_canonical_form_and_what_is_refused_with_a_reason() -> None:
    assert _stored("rrule:freq=monthly;byday=-1fr;count=3") == "FREQ=MONTHLY;COUNT=3;BYDAY=-1FR"
    assert _stored("FREQ=WEEKLY;UNTIL=20270101", all_day=False) == "FREQ=WEEKLY;UNTIL=20270101T225959Z"
    endless = _stored("FREQ=WEEKLY;BYDAY=TU")
    assert endless == "FREQ=WEEKLY;BYDAY=TU\nX-HORIZON:20281020T100000Z"
    assert recurrence.rule_part(endless) == "FREQ=WEEKLY;BYDAY=TU"
    for rule, message in [
        ("FREQ=HOURLY", "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20270101", "at most one of COUNT"),
        ("FREQ=DAILY;COUNT=100000000", "COUNT must be a number from 1 to 1000"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a number from 1 to 100"),
        ("FREQ=WEEKLY;BYDAY=2MO", "numbered BYDAY (2MO) needs FREQ=MONTHLY"),
        ("FREQ=MONTHLY;BYDAY=6MO", "from 1 to 5"),
        ("FREQ=MONTHLY;BYDAY=XX", "must be a weekday"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY values must be numbers from 1 to 31"),
        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH values must be numbers from 1 to 12"),
        ("FREQ=WEEKLY;BYSETPOS=1", "BYSETPOS needs BYDAY"),
        ("FREQ=WEEKLY;BYWEEKNO=3", "BYWEEKNO is not supported"),
        ("FREQ=WEEKLY;UNTIL=20261001", "UNTIL is before the first meeting"),
        ("FREQ=WEEKLY;UNTIL=20300101", "UNTIL is too far ahead"),
        ("FREQ=WEEKLY;COUNT=3\nRDATE:20261001T080000Z", "RDATE 1.10.2026 is before the first meeting"),
        ("FREQ=WEEKLY;COUNT=3\nRDATE:20300101", "RDATE 1.1.2030 is too far ahead"),
        ("FREQ=WEEKLY;COUNT=3\nRDATE;VALUE=PERIOD:20261201T090000Z/PT1H", "periods"),
        ("FREQ=WEEKLY;COUNT=3\nEXDATE:2026-12-01", "must look like 20261224"),
        ("FREQ=WEEKLY\nRDATE:" + ",".join(
            f"{date(2026, 11, 1) + timedelta(days=n):%Y%m%d}T100000Z" for n in range(500)),
         "characters; at most 8000"),
    ]:
        with pytest.raises(ValidationFailed, match="RRULE") as info:
            _stored(rule)
        assert message in str(info.value), (rule, str(info.value))


# Rules that never give a date: dateutil would walk period after period up to the year
# 9999 looking for one (seconds of CPU each); they are refused, quickly, saying why.
NEVER = [
    ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "BYMONTHDAY=30 never falls in BYMONTH=2"),
    ("FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=4,6,9,11", "never falls in BYMONTH=4,6,9,11"),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-30", "never falls"),
    ("FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=31", "BYMONTHDAY cannot be used with FREQ=WEEKLY"),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", "BYSETPOS=6 never matches: each period gives at most 5"),
    ("FREQ=WEEKLY;BYDAY=MO,TU;BYSETPOS=3", "at most 2"),
    ("FREQ=DAILY;BYMONTH=2;BYSETPOS=2", "at most 1"),
    ("FREQ=MONTHLY;BYMONTHDAY=1,2;BYDAY=MO;BYSETPOS=-3", "at most 2"),
    ("FREQ=YEARLY;BYMONTH=1;BYDAY=1MO;BYSETPOS=2", "at most 1"),
    ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "gives no date between 20.10.2026 and 20.10.2028"),
    # Possible in themselves, impossible together or from this start (a Tuesday): found
    # by asking the rule near the year 9999 (`recurrence._gives_a_date`).
    ("FREQ=DAILY;INTERVAL=7;BYDAY=MO", "gives no date"),
    ("FREQ=DAILY;INTERVAL=14;BYDAY=MO,WE;BYMONTH=2,3", "gives no date"),
    ("FREQ=MONTHLY;BYDAY=5MO;BYMONTHDAY=1", "gives no date"),
    ("FREQ=YEARLY;BYDAY=1MO;BYMONTHDAY=20", "gives no date"),
    ("FREQ=MONTHLY;INTERVAL=12;BYMONTH=2", "gives no date"),
    ("FREQ=WEEKLY;BYDAY=TU;UNTIL=20261019T235959Z", "UNTIL is before the first meeting"),
]


@pytest.mark.parametrize(("rule", "message"), NEVER)
def test_rules_that_never_match_are_refused_quickly(rule: str, message: str) -> None:
    began = clock.perf_counter()
    with pytest.raises(ValidationFailed) as info:
        _stored(rule)
    assert message in str(info.value)
    assert clock.perf_counter() - began < 0.5


def test_expansion_is_bounded_in_count_and_time() -> None:
    began = clock.perf_counter()
    # Not validated (a stored row from an older version, an importer's preview): still cut.
    start = FIRST.astimezone(UTC)
    huge = recurrence.expand("FREQ=DAILY;COUNT=100000000", start, start + timedelta(hours=1), False, W)
    assert len(huge) == MAX_OCCURRENCES
    endless = recurrence.expand("FREQ=DAILY", start, start + timedelta(hours=1), False, W)
    assert endless[-1].start <= start + recurrence.ENDLESS_WINDOW and len(endless) >= 700
    sparse = recurrence.expand("FREQ=YEARLY;COUNT=1000", start, start + timedelta(hours=1), False, W)
    assert sparse[-1].start <= start + recurrence.MAX_WINDOW and len(sparse) == 12
    # An endless daily series with a ten-year horizon stops at MAX_OCCURRENCES, and its
    # last_ends_at is then its last date, not the horizon.
    far = FIRST.replace(year=2036)
    text = recurrence.canonical_rule("FREQ=DAILY", all_day=False, first_start_local=FIRST, tz=W, latest=far)
    spans = recurrence.expand(text, start, start + timedelta(hours=1), False, W)
    assert len(spans) == MAX_OCCURRENCES
    assert recurrence.series_last_end(text, spans, start) == spans[-1].end
    weekly = _stored("FREQ=WEEKLY")
    weeks = recurrence.expand(weekly, start, start + timedelta(hours=1), False, W)
    assert recurrence.series_last_end(weekly, weeks, start) == LATEST.astimezone(UTC)
    assert clock.perf_counter() - began < 2


def test_rdates_join_the_series_and_exdates_take_them_out() -> None:
    # Weekly on Tuesdays 10:00 three times, plus Thursday 29.10 (after the DST change) and
    # a date given twice (once as a rule date).
    text = _stored("FREQ=WEEKLY;COUNT=3\nRDATE:20261029T100000,20261027\nEXDATE;VALUE=DATE:20261103")
    assert text == ("FREQ=WEEKLY;COUNT=3\nRDATE:20261027T090000Z,20261029T090000Z\n"
                    "EXDATE:20261103T090000Z")
    start = FIRST.astimezone(UTC)
    spans = recurrence.expand(text, start, start + timedelta(hours=2), False, W)
    assert [s.start.astimezone(W).strftime("%d.%m %H:%M") for s in spans] == \
        ["20.10 10:00", "27.10 10:00", "29.10 10:00"]
    assert all((s.end - s.start) == timedelta(hours=2) for s in spans)
    every = recurrence.expand_all(text, start, start + timedelta(hours=2), False, W)
    assert len(every) == 4
    assert recurrence.extra_dates(text) == {datetime(2026, 10, 27, 9, tzinfo=UTC),
                                            datetime(2026, 10, 29, 9, tzinfo=UTC)}
    # Cancelling and moving single dates keeps the RDATEs (and an endless series' horizon).
    moved = recurrence.with_exclusions(text, set(), {datetime(2026, 10, 29, 9, tzinfo=UTC)})
    assert "RDATE:" in moved and "EXDATE" not in moved and "X-MOVED:20261029T090000Z" in moved
    assert len(recurrence.expand(moved, start, start + timedelta(hours=2), False, W)) == 3
    endless = recurrence.with_exclusions(_stored("FREQ=WEEKLY"), {start}, set())
    assert recurrence.horizon_of(endless) == LATEST.astimezone(UTC)
    assert recurrence.definition(endless) == "FREQ=WEEKLY" and recurrence.definition(text) == \
        "FREQ=WEEKLY;COUNT=3\nRDATE:20261027T090000Z,20261029T090000Z"


def test_all_day_rdates() -> None:
    text = _stored("FREQ=MONTHLY;COUNT=2\nRDATE:20261224", all_day=True)
    assert text == "FREQ=MONTHLY;COUNT=2\nRDATE:20261223T230000Z"
    start = datetime(2026, 10, 19, 22, 0, tzinfo=UTC)
    spans = recurrence.expand(text, start, start + timedelta(days=1), True, W)
    assert [s.start.astimezone(W).date() for s in spans] == [date(2026, 10, 20), date(2026, 11, 20),
                                                             date(2026, 12, 24)]


def test_a_series_moved_for_a_suggestion_takes_its_dates_along() -> None:
    text = _stored("FREQ=WEEKLY;COUNT=3\nRDATE:20261022T100000\nEXDATE:20261020T100000")
    later = recurrence.shifted(text, 7, W)  # across the end of summer time (25.10)
    assert later == "FREQ=WEEKLY;COUNT=3\nRDATE:20261029T090000Z\nEXDATE:20261027T090000Z"
    start = (FIRST + timedelta(days=7)).astimezone(UTC)
    spans = recurrence.expand(later, start, start + timedelta(hours=1), False, W)
    assert [s.start.astimezone(W).strftime("%d.%m %H:%M") for s in spans] == \
        ["29.10 10:00", "03.11 10:00", "10.11 10:00"]


def test_dates_given_as_parts_of_the_rule_line() -> None:
    """As an importer may pass a file's RDATE (and EXDATE) with its RRULE."""
    text = _stored("FREQ=WEEKLY;COUNT=3;RDATE=20261029T100000,20261105;RDATE=20261112T090000Z;"
                   "EXDATE=20261027")
    assert text == ("FREQ=WEEKLY;COUNT=3\nRDATE:20261029T090000Z,20261105T090000Z,20261112T090000Z\n"
                    "EXDATE:20261027T090000Z")
    with pytest.raises(ValidationFailed, match=r"RDATE 1\.10\.2026 is before the first meeting"):
        _stored("FREQ=WEEKLY;RDATE=20261001")
