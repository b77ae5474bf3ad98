"""One wall-clock rule per question: what a person typed, and where a series' occurrence falls."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from infranet.calendar import recurrence
from infranet.calendar.wallclock import (
    all_day_span,
    local_midnight,
    occurrence_to_utc,
    repeated_times,
    to_utc,
)
from infranet.errors import ValidationFailed

WARSAW = ZoneInfo("Europe/Warsaw")


def test_a_typed_time_in_the_spring_gap_is_refused_with_the_next_valid_time() -> None:
    with pytest.raises(ValidationFailed) as info:
        to_utc(date(2027, 3, 28), time(2, 30), WARSAW)
    assert info.value.key == "wallclock.dst_gap"
    assert "03:30" in info.value.localized("pl") and "28.3.2027" in info.value.localized("pl")


def test_a_weekly_series_keeps_its_hour_and_moves_past_the_gap_as_rfc_5545_says() -> None:
    # First occurrence a week before the change, at a time that exists; the next one falls
    # into the gap and, nobody having typed it, is read with the offset before the gap.
    first = datetime(2027, 3, 21, 2, 30, tzinfo=WARSAW).astimezone(UTC)
    end = datetime(2027, 3, 21, 3, 30, tzinfo=WARSAW).astimezone(UTC)
    spans = recurrence.expand("FREQ=WEEKLY;COUNT=3", first, end, False, WARSAW)
    local_starts = [s.start.astimezone(WARSAW).strftime("%d.%m %H:%M") for s in spans]
    assert local_starts == ["21.03 02:30", "28.03 03:30", "04.04 02:30"]
    assert occurrence_to_utc(datetime(2027, 3, 28, 2, 30), WARSAW) == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)


def test_the_repeated_autumn_hour_is_its_first_occurrence_in_both_rules() -> None:
    typed = to_utc(date(2027, 10, 31), time(2, 30), WARSAW)
    assert typed == occurrence_to_utc(datetime(2027, 10, 31, 2, 30), WARSAW)
    assert typed == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)  # still summer time (+2)
    assert repeated_times(typed, typed, WARSAW)


def test_a_local_day_begins_at_local_midnight_in_utc() -> None:
    assert local_midnight(date(2027, 7, 1), WARSAW) == datetime(2027, 6, 30, 22, 0, tzinfo=UTC)
    assert local_midnight(date(2027, 1, 1), WARSAW) == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)


def test_an_all_day_span_ends_at_the_midnight_after_its_last_day() -> None:
    start, end = all_day_span(date(2027, 10, 30), date(2027, 10, 31), WARSAW)
    assert start == datetime(2027, 10, 29, 22, 0, tzinfo=UTC)  # summer time
    assert end == datetime(2027, 10, 31, 23, 0, tzinfo=UTC)  # winter time: 49 hours in all
    assert (end - start).total_seconds() == 49 * 3600
