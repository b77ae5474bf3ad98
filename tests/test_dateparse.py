"""Dates and hours as people type them into the chat (pure: no database, no clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from infranet.calendar.dateparse import MAX_INPUT, local_today, parse_date, parse_days
from infranet.calendar.dateparse_hours import ALL_DAY, Hours, parse_hours, repeated_note
from infranet.calendar.dateparse_when import make_span, parse_sessions, parse_when
from infranet.calendar.wallclock import local_midnight, to_utc
from infranet.errors import ValidationFailed

WARSAW = ZoneInfo("Europe/Warsaw")
TODAY = date(2026, 11, 23)  # a Monday


def refused(call, *args, **kwargs) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        call(*args, **kwargs)
    return info.value


# --- single days ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("5.12.2026", date(2026, 12, 5)),
    ("05.12.2026", date(2026, 12, 5)),
    ("5.12.26", date(2026, 12, 5)),
    ("5/12/2026", date(2026, 12, 5)),
    ("5. 12. 2026", date(2026, 12, 5)),
    ("5.12.2026 r.", date(2026, 12, 5)),
    ("5.12", date(2026, 12, 5)),
    ("5.12.", date(2026, 12, 5)),
    ("2026-12-05", date(2026, 12, 5)),
    ("  2026-12-05  ", date(2026, 12, 5)),
    ("5 grudnia", date(2026, 12, 5)),
    ("5 grudnia 2026", date(2026, 12, 5)),
    ("5 Grudnia 2026", date(2026, 12, 5)),
    ("5 grudzień", date(2026, 12, 5)),
    ("5 gru", date(2026, 12, 5)),
    ("5 gru. 2026", date(2026, 12, 5)),
    ("5 XII 2026", date(2026, 12, 5)),
    ("5 października", date(2027, 10, 5)),
    ("5 pazdziernika 2027", date(2027, 10, 5)),
    ("1 maja", date(2027, 5, 1)),
    ("5 Dec", date(2026, 12, 5)),
    ("5 December 2026", date(2026, 12, 5)),
    ("5th of December", date(2026, 12, 5)),
    ("Dec 5", date(2026, 12, 5)),
    ("Dec 5, 2026", date(2026, 12, 5)),
    ("December 5th", date(2026, 12, 5)),
    ("sobota 5 grudnia", date(2026, 12, 5)),
    ("sob. 5.12", date(2026, 12, 5)),
    ("5.12.2026 (sobota)", date(2026, 12, 5)),
    ("Saturday, 5 December 2026", date(2026, 12, 5)),
])
def test_written_dates(text: str, expected: date) -> None:
    assert parse_date(text, TODAY) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("dziś", TODAY), ("dzis", TODAY), ("dzisiaj", TODAY), ("Dzisiaj", TODAY), ("today", TODAY),
    ("jutro", TODAY + timedelta(1)), ("tomorrow", TODAY + timedelta(1)),
    ("pojutrze", TODAY + timedelta(2)), ("the day after tomorrow", TODAY + timedelta(2)),
    ("za 3 dni", TODAY + timedelta(3)), ("in 10 days", TODAY + timedelta(10)),
    ("za tydzień", TODAY + timedelta(7)),
    ("piątek", date(2026, 11, 27)), ("Piątek", date(2026, 11, 27)), ("w piątek", date(2026, 11, 27)),
    ("pt", date(2026, 11, 27)), ("pt.", date(2026, 11, 27)), ("friday", date(2026, 11, 27)),
    ("Friday", date(2026, 11, 27)), ("on Friday", date(2026, 11, 27)), ("fri", date(2026, 11, 27)),
    ("w ten piątek", date(2026, 11, 27)), ("this friday", date(2026, 11, 27)),
    ("we wtorek", date(2026, 11, 24)), ("w środę", date(2026, 11, 25)), ("sr", date(2026, 11, 25)),
    ("w sobotę", date(2026, 11, 28)), ("w niedzielę", date(2026, 11, 29)),
    ("czw", date(2026, 11, 26)), ("nd", date(2026, 11, 29)),
    # the same weekday as today is next week's, never today
    ("poniedziałek", date(2026, 11, 30)), ("monday", date(2026, 11, 30)), ("pon", date(2026, 11, 30)),
])
def test_relative_days(text: str, expected: date) -> None:
    assert parse_date(text, TODAY) == expected


def test_year_is_guessed_forward() -> None:
    december = date(2026, 12, 20)
    assert parse_date("10.01", december) == date(2027, 1, 10)
    assert parse_date("10 stycznia", december) == date(2027, 1, 10)
    assert parse_date("Jan 10", december) == date(2027, 1, 10)
    assert parse_date("24.12", december) == date(2026, 12, 24)
    assert parse_date("20.12", december) == december


def test_recent_date_without_year_is_reported_as_past() -> None:
    error = refused(parse_date, "20.11", TODAY)
    assert error.key == "dateparse.past"
    pl, en = error.localized("pl"), error.localized("en")
    assert "20.11.2026" in pl and "minęła" in pl and "23.11.2026" in pl and "24.11.2026" in pl
    assert "has passed" in en


def test_29_february_without_year_is_the_next_leap_day() -> None:
    assert parse_date("29.02", TODAY) == date(2028, 2, 29)
    assert parse_date("29 lutego", date(2028, 1, 5)) == date(2028, 2, 29)


def test_past_dates_allowed_when_asked() -> None:
    assert parse_date("20.11", TODAY, allow_past=True) == date(2026, 11, 20)
    assert parse_date("1.1.2020", TODAY, allow_past=True) == date(2020, 1, 1)
    assert parse_date("10.01", date(2026, 12, 20), allow_past=True) == date(2027, 1, 10)


def test_explicit_past_year_is_refused() -> None:
    error = refused(parse_date, "1.1.2020", TODAY)
    assert error.key == "dateparse.past"
    assert "1.1.2020" in error.localized("en")


@pytest.mark.parametrize(("text", "days", "example"), [
    ("31.11.2026", 30, "30.11.2026"),
    ("31 listopada 2026", 30, "30.11.2026"),
    ("29.02.2027", 28, "28.2.2027"),
    ("2027-02-30", 28, "28.2.2027"),
    ("31.04", 30, "30.4.2027"),
    ("0.12.2026", 31, "1.12.2026"),
])
def test_day_that_does_not_exist(text: str, days: int, example: str) -> None:
    error = refused(parse_date, text, TODAY)
    assert error.key == "dateparse.no_such_day"
    pl = error.localized("pl")
    assert f"ma {days} dni" in pl and example in pl
    assert f"has {days} days" in error.localized("en")


def test_month_that_does_not_exist() -> None:
    error = refused(parse_date, "5.13.2026", TODAY)
    assert error.key == "dateparse.bad_month"
    assert "13" in error.localized("pl") and "1–12" in error.localized("en")


@pytest.mark.parametrize("text", [
    "abc", "5", "5 grudniaa", "32.", "12/2026", "2026", "5.12.20266", "jutro jutro", "przedwczoraj",
    "10:00", "<b>5.12</b>", "5.12 & 6.12",
])
def test_unreadable_dates_show_examples(text: str) -> None:
    error = refused(parse_date, text, TODAY)
    assert error.key == "dateparse.unreadable_date"
    pl, en = error.localized("pl"), error.localized("en")
    assert text.strip() in pl and "5.12.2026" in pl and "jutro" in pl
    assert "5 Dec" in en and "tomorrow" in en


def test_empty_and_overlong_input() -> None:
    assert refused(parse_date, "   ", TODAY).key == "dateparse.empty"
    error = refused(parse_date, "5" * (MAX_INPUT + 1), TODAY)
    assert error.key == "dateparse.too_long"
    assert str(MAX_INPUT) in error.localized("pl") and str(MAX_INPUT + 1) in error.localized("en")


def test_next_weekday_is_ambiguous_and_both_dates_are_shown() -> None:
    for text in ("przyszły piątek", "w przyszły piątek", "next friday", "następny piątek"):
        error = refused(parse_date, text, TODAY)
        assert error.key == "dateparse.ambiguous"
        assert "27.11.2026" in error.localized("pl") and "4.12.2026" in error.localized("pl")


def test_slash_dates_are_ambiguous_in_english_only() -> None:
    assert parse_date("05/12/2026", TODAY, lang="pl") == date(2026, 12, 5)
    error = refused(parse_date, "05/12/2026", TODAY, lang="en")
    assert error.key == "dateparse.ambiguous"
    assert "5 December" in error.localized("en") and "12 May" in error.localized("en")
    # no doubt when one number cannot be a month, or with dots
    assert parse_date("25/12/2026", TODAY, lang="en") == date(2026, 12, 25)
    assert parse_date("5.12.2026", TODAY, lang="en") == date(2026, 12, 5)


def test_weekday_written_beside_a_wrong_date() -> None:
    error = refused(parse_date, "piątek 5.12.2026", TODAY)
    assert error.key == "dateparse.weekday_mismatch"
    assert "sobota" in error.localized("pl") and "piątek" in error.localized("pl")
    en = refused(parse_date, "Friday 5.12.2026", TODAY, lang="en").localized("en")
    assert "Saturday" in en and "Friday" in en


# --- ranges of days -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "first", "last"), [
    ("5-7.12.2026", date(2026, 12, 5), date(2026, 12, 7)),
    ("5–7.12.2026", date(2026, 12, 5), date(2026, 12, 7)),
    ("5-7.12", date(2026, 12, 5), date(2026, 12, 7)),
    ("5.12-7.12", date(2026, 12, 5), date(2026, 12, 7)),
    ("5.12-7.12.2026", date(2026, 12, 5), date(2026, 12, 7)),
    ("5.12.2026 - 7.12.2026", date(2026, 12, 5), date(2026, 12, 7)),
    ("2026-12-05 - 2026-12-07", date(2026, 12, 5), date(2026, 12, 7)),
    ("2026-12-05/2026-12-07".replace("/", " do "), date(2026, 12, 5), date(2026, 12, 7)),
    ("5-7 grudnia", date(2026, 12, 5), date(2026, 12, 7)),
    ("5 - 7 grudnia 2026", date(2026, 12, 5), date(2026, 12, 7)),
    ("od 5 do 7 grudnia", date(2026, 12, 5), date(2026, 12, 7)),
    ("od 5.12 do 7.12", date(2026, 12, 5), date(2026, 12, 7)),
    ("Dec 5-7", date(2026, 12, 5), date(2026, 12, 7)),
    ("from 5 Dec to 7 Dec", date(2026, 12, 5), date(2026, 12, 7)),
    ("30.11-2.12", date(2026, 11, 30), date(2026, 12, 2)),
    ("30-2.12", date(2026, 11, 30), date(2026, 12, 2)),
    ("30.12-2.01", date(2026, 12, 30), date(2027, 1, 2)),
    ("30.12.2026-2.01.2027", date(2026, 12, 30), date(2027, 1, 2)),
    ("pon-pt", date(2026, 11, 30), date(2026, 12, 4)),
    ("pt-pon", date(2026, 11, 27), date(2026, 11, 30)),
    ("jutro-pojutrze", date(2026, 11, 24), date(2026, 11, 25)),
    ("5.12", date(2026, 12, 5), date(2026, 12, 5)),
    ("jutro", date(2026, 11, 24), date(2026, 11, 24)),
    ("the day after tomorrow", date(2026, 11, 25), date(2026, 11, 25)),
])
def test_date_ranges(text: str, first: date, last: date) -> None:
    assert parse_days(text, TODAY) == (first, last)


def test_reversed_range() -> None:
    error = refused(parse_days, "7.12.2026-5.12.2026", TODAY)
    assert error.key == "dateparse.range_reversed"
    assert "5.12.2026" in error.localized("pl") and "7.12.2026" in error.localized("pl")
    assert "5-7.12.2026" in error.localized("en")


def test_range_errors_name_the_problem() -> None:
    assert refused(parse_days, "5-31.11.2026", TODAY).key == "dateparse.no_such_day"
    assert refused(parse_days, "1.1.2020-3.1.2020", TODAY).key == "dateparse.past"
    assert refused(parse_days, "5-7-9.12", TODAY).key == "dateparse.unreadable_date"
    assert refused(parse_days, "5-", TODAY).key == "dateparse.unreadable_date"
    assert refused(parse_days, "5-7", TODAY).key == "dateparse.unreadable_date"


# --- hours -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "start", "end"), [
    ("10:00-14:00", time(10), time(14)),
    ("10:00 - 14:00", time(10), time(14)),
    ("10-14", time(10), time(14)),
    ("10.00–14.00", time(10), time(14)),
    ("10.00—14.30", time(10), time(14, 30)),
    ("9:15-9:45", time(9, 15), time(9, 45)),
    ("od 10 do 14", time(10), time(14)),
    ("od 10:30 do 14", time(10, 30), time(14)),
    ("godz. 10-14", time(10), time(14)),
    ("from 10 to 14", time(10), time(14)),
    ("10am-2pm", time(10), time(14)),
    ("10 am - 2 pm", time(10), time(14)),
    ("1-3pm", time(13), time(15)),
    ("10-2pm", time(10), time(14)),
    ("12pm-1pm", time(12), time(13)),
    ("0:00-1:00", time(0), time(1)),
])
def test_hours(text: str, start: time, end: time) -> None:
    assert parse_hours(text) == Hours(start, end)


@pytest.mark.parametrize("text", ["cały dzień", "Cały dzień", "caly dzien", "całodniowe", "all day",
                                  "All-day", "whole day"])
def test_all_day(text: str) -> None:
    hours = parse_hours(text)
    assert hours == ALL_DAY and hours.all_day and hours.label() == ""


def test_until_midnight() -> None:
    hours = parse_hours("20:00-24:00")
    assert hours.ends_next_day and hours.label() == "20:00–24:00"
    span = make_span(date(2026, 12, 5), date(2026, 12, 5), hours, WARSAW)
    assert span.end == datetime(2026, 12, 5, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "key"), [
    ("14-10", "dateparse.end_before_start"),
    ("10:00-10:00", "dateparse.end_before_start"),
    ("22:00-02:00", "dateparse.end_before_start"),
    ("25:00-26:00", "dateparse.bad_time"),
    ("10:60-11:00", "dateparse.bad_time"),
    ("10-24:30", "dateparse.bad_time"),
    ("24:00-24:00", "dateparse.bad_time"),
    ("13pm-14pm", "dateparse.bad_time"),
    ("10:00", "dateparse.no_end_time"),
    ("od 10", "dateparse.no_end_time"),
    ("rano", "dateparse.unreadable_time"),
    ("10-14-16", "dateparse.unreadable_time"),
    ("", "dateparse.unreadable_time"),
])
def test_bad_hours(text: str, key: str) -> None:
    error = refused(parse_hours, text)
    assert error.key == key
    assert "10:00-14:00" in error.localized("pl") or "10:00-12:00" in error.localized("pl")


def test_end_before_start_names_both_times() -> None:
    error = refused(parse_hours, "14:30-10")
    assert "14:30" in error.localized("pl") and "10:00" in error.localized("pl")
    assert "must come after" in error.localized("en")


# --- wall clock to UTC, DST ------------------------------------------------------------------


def test_winter_and_summer_offsets() -> None:
    assert to_utc(date(2026, 12, 5), time(10), WARSAW) == datetime(2026, 12, 5, 9, tzinfo=UTC)
    assert to_utc(date(2026, 7, 5), time(10), WARSAW) == datetime(2026, 7, 5, 8, tzinfo=UTC)


def test_time_in_spring_gap_is_refused_with_a_suggestion() -> None:
    # 29 March 2026: 02:00 CET becomes 03:00 CEST
    error = refused(to_utc, date(2026, 3, 29), time(2, 30), WARSAW)
    assert error.key == "wallclock.dst_gap"
    pl, en = error.localized("pl"), error.localized("en")
    assert "02:30" in pl and "29.3.2026" in pl and "Europe/Warsaw" in pl and "03:30" in pl
    assert "does not exist" in en
    # the edges of the gap exist
    assert to_utc(date(2026, 3, 29), time(1, 59), WARSAW) == datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    assert to_utc(date(2026, 3, 29), time(3, 0), WARSAW) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_time_in_autumn_fold_is_the_first_occurrence() -> None:
    # 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice
    moment = to_utc(date(2026, 10, 25), time(2, 30), WARSAW)
    assert moment == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert to_utc(date(2026, 10, 25), time(3, 0), WARSAW) == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


def test_the_repeated_autumn_hour_is_named_with_the_length_it_makes() -> None:
    """31.10.2027 02:30 happens twice in Warsaw: the first is taken, and the note says so
    and how long the event is; an hour outside the fold needs no note."""
    day = date(2027, 10, 31)
    span = make_span(day, day, parse_hours("02:30-03:30"), WARSAW)
    assert span.duration == timedelta(hours=2)  # first 02:30 (UTC+2) to 03:30 (UTC+1)
    note = repeated_note(span.start, span.end, WARSAW, "pl")
    assert note is not None and "02:30" in note and "dwa razy" in note and "2 h 00 min" in note
    english = repeated_note(span.start, span.end, WARSAW, "en")
    assert english is not None and "twice" in english and "UTC+2" in english
    spring = make_span(date(2027, 3, 28), date(2027, 3, 28), parse_hours("01:00-03:30"), WARSAW)
    assert repeated_note(spring.start, spring.end, WARSAW, "pl") is None
    plain = make_span(day, day, parse_hours("10-14"), WARSAW)
    assert repeated_note(plain.start, plain.end, WARSAW, "pl") is None


def test_span_across_the_dst_change_is_real_length() -> None:
    span = make_span(date(2026, 10, 25), date(2026, 10, 25), parse_hours("1:00-4:00"), WARSAW)
    assert span.duration == timedelta(hours=4)
    span = make_span(date(2026, 3, 29), date(2026, 3, 29), parse_hours("1:00-4:00"), WARSAW)
    assert span.duration == timedelta(hours=2)


def test_all_day_spans_are_local_midnights() -> None:
    span = make_span(date(2026, 12, 5), date(2026, 12, 7), ALL_DAY, WARSAW)
    assert span.all_day
    assert span.start == datetime(2026, 12, 4, 23, tzinfo=UTC)
    assert span.end == datetime(2026, 12, 7, 23, tzinfo=UTC)
    # the day of the spring change is 23 hours long
    span = make_span(date(2026, 3, 29), date(2026, 3, 29), ALL_DAY, WARSAW)
    assert span.duration == timedelta(hours=23)


def test_midnight_skipped_by_dst_starts_the_day_when_it_begins() -> None:
    # Chile moved clocks forward at 24:00 on 2 September 2023 -> 3 September began at 01:00.
    santiago = ZoneInfo("America/Santiago")
    start = local_midnight(date(2023, 9, 3), santiago)
    assert start.astimezone(santiago).date() == date(2023, 9, 3)
    assert start.astimezone(santiago).hour == 1


def test_multi_day_span_with_hours_runs_from_first_start_to_last_end() -> None:
    span = make_span(date(2026, 12, 5), date(2026, 12, 7), parse_hours("9-17"), WARSAW)
    assert span.start == datetime(2026, 12, 5, 8, tzinfo=UTC)
    assert span.end == datetime(2026, 12, 7, 16, tzinfo=UTC)


def test_local_today_uses_the_region_zone() -> None:
    assert local_today(datetime(2026, 12, 4, 23, 30, tzinfo=UTC), WARSAW) == date(2026, 12, 5)
    assert local_today(datetime(2026, 12, 4, 22, 30, tzinfo=UTC), WARSAW) == date(2026, 12, 4)


# --- date with hours at once ---------------------------------------------------------------


def test_when_with_and_without_hours() -> None:
    when = parse_when("5.12 10-14", TODAY)
    assert (when.first, when.last, when.hours) == (date(2026, 12, 5), date(2026, 12, 5),
                                                    Hours(time(10), time(14)))
    assert parse_when("5.12.2026, 10:00-14:00", TODAY).hours == Hours(time(10), time(14))
    assert parse_when("jutro od 10 do 12", TODAY).hours == Hours(time(10), time(12))
    assert parse_when("piątek cały dzień", TODAY).hours == ALL_DAY
    when = parse_when("5-7.12.2026 cały dzień", TODAY)
    assert when.is_range and when.hours == ALL_DAY
    when = parse_when("Dec 5-7", TODAY)
    assert (when.first, when.last, when.hours) == (date(2026, 12, 5), date(2026, 12, 7), None)
    assert parse_when("5.12", TODAY).hours is None


def test_when_with_a_start_time_only_asks_for_the_end() -> None:
    for text in ("5.12 10:00", "5.12.2026, 10.00", "jutro o 10:30"):
        error = refused(parse_when, text, TODAY)
        assert error.key == "dateparse.no_end_time"
        assert "-" in error.localized("pl")
    # a date whose last part only looks like a time is still read as a date
    assert parse_when("5 gru 2026", TODAY).first == date(2026, 12, 5)


def test_when_passes_on_hour_errors() -> None:
    assert refused(parse_when, "5.12 14-10", TODAY).key == "dateparse.end_before_start"
    assert refused(parse_when, "31.11.2026 10-14", TODAY).key == "dateparse.no_such_day"


# --- session lists -----------------------------------------------------------------------------


def _local(span) -> tuple[str, str]:
    return (span.start.astimezone(WARSAW).strftime("%d.%m %H:%M"),
            span.end.astimezone(WARSAW).strftime("%d.%m %H:%M"))


def test_session_list_shares_the_trailing_hours() -> None:
    spans = parse_sessions("5.12, 12.12, 19.12 10:00-14:00", TODAY, WARSAW)
    assert [_local(s) for s in spans] == [("05.12 10:00", "05.12 14:00"), ("12.12 10:00", "12.12 14:00"),
                                          ("19.12 10:00", "19.12 14:00")]


def test_session_list_with_own_hours_and_separators() -> None:
    spans = parse_sessions("12.12 9-13; 5.12 10-14\n19.12", TODAY, WARSAW)
    assert [_local(s) for s in spans] == [("05.12 10:00", "05.12 14:00"), ("12.12 09:00", "12.12 13:00"),
                                          ("19.12 10:00", "19.12 14:00")]
    spans = parse_sessions("5.12 i 12.12 od 10 do 12", TODAY, WARSAW)
    assert len(spans) == 2 and all(_local(s)[0].endswith("10:00") for s in spans)


def test_session_list_in_english_with_commas_inside_dates() -> None:
    spans = parse_sessions("Dec 5, 2026, Dec 12, 2026 9am-1pm", TODAY, WARSAW, lang="en")
    assert [_local(s) for s in spans] == [("05.12 09:00", "05.12 13:00"), ("12.12 09:00", "12.12 13:00")]


def test_range_of_days_as_sessions() -> None:
    spans = parse_sessions("5-7.12.2026 10:00-14:00", TODAY, WARSAW)
    assert [_local(s)[0] for s in spans] == ["05.12 10:00", "06.12 10:00", "07.12 10:00"]
    whole = parse_sessions("5-7.12.2026", TODAY, WARSAW)
    assert len(whole) == 1 and whole[0].all_day and whole[0].duration == timedelta(days=3)


def test_sessions_without_hours_are_all_day() -> None:
    spans = parse_sessions("5.12, 12.12", TODAY, WARSAW)
    assert [s.all_day for s in spans] == [True, True]


@pytest.mark.parametrize(("text", "key"), [
    ("", "dateparse.no_sessions"),
    (" , ; ", "dateparse.no_sessions"),
    ("5.12, 5.12 10-14", "dateparse.sessions_overlap"),
    ("5.12 10-14, 5.12 12-16", "dateparse.sessions_overlap"),
    ("5.12, 31.12.2026, 31.11.2026 10-14", "dateparse.no_such_day"),
    ("5.12, abc, 12.12", "dateparse.unreadable_date"),
    ("5.12, 12.12 14-10", "dateparse.end_before_start"),
    ("1.1.2026, 12.12", "dateparse.past"),
    ("1.1.2027-31.3.2027 10-12", "dateparse.too_many_sessions"),
    ("29.3.2026 2:00-2:30", "wallclock.dst_gap"),
])
def test_bad_session_lists(text: str, key: str) -> None:
    error = refused(parse_sessions, text, date(2026, 3, 1), WARSAW) if key == "wallclock.dst_gap" \
        else refused(parse_sessions, text, TODAY, WARSAW)
    assert error.key == key
    assert error.localized("pl") != error.localized("en")


def test_overlap_names_the_sessions() -> None:
    message = refused(parse_sessions, "5.12 10-14, 5.12 12-16", TODAY, WARSAW).localized("pl")
    assert "5.12.2026" in message and "nakładają" in message


def test_every_message_is_short_and_plain() -> None:
    """Messages go to Telegram as escaped text: short, no markup of their own."""
    samples = [
        refused(parse_date, "31.11.2026", TODAY), refused(parse_date, "x" * 40, TODAY),
        refused(parse_hours, "14-10"), refused(parse_days, "7.12.2026-5.12.2026", TODAY),
        refused(to_utc, date(2026, 3, 29), time(2, 30), WARSAW), refused(parse_date, "next fri", TODAY),
    ]
    for error in samples:
        for lang in ("pl", "en"):
            text = error.localized(lang)
            assert 20 < len(text) < 300 and "<" not in text.replace("<b>", "")
