"""hailwhale/times.py, pure: times as people write them, and the window a range reads."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hailwhale.exceptions import InvalidQuery
from hailwhale.periods import Periods
from hailwhale.times import (
    TimeRange,
    choose_window,
    parse_time,
    say_span,
    short_span,
    show_time,
    to_epoch,
)

NOW = 1_700_000_007.5  # 2023-11-14T22:13:27.5Z, mid-bucket for every interval
PERIODS = Periods.parse("15s:3h,1h:7d,1d:1y")
HOUR, DAY = 3600, 86400


@pytest.mark.parametrize("text, expected", [
    ("now", NOW), (" now ", NOW),
    ("-6h", NOW - 6 * HOUR), ("-15m", NOW - 900), ("-2d", NOW - 2 * DAY),
    ("-1w", NOW - 7 * DAY), ("-1mo", NOW - 30 * DAY), ("-1y", NOW - 365 * DAY),
    ("-30s", NOW - 30), ("now-6h", NOW - 6 * HOUR), ("now - 6h", NOW - 6 * HOUR),
    ("1700000000", 1_700_000_000), ("1700000000.25", 1_700_000_000.25), ("-100", -100),
    ("2023-11-14T22:13:27Z", 1_700_000_007), ("2023-11-14T22:13:27", 1_700_000_007),
    ("2023-11-15T07:13:27+09:00", 1_700_000_007), ("2023-11-14", 1_699_920_000),
])
def test_times_as_sent(text, expected):
    assert parse_time(text, NOW, "from") == expected


@pytest.mark.parametrize("text", ["yesterday", "-6x", "-1.5h", "+6h", "6h", "nan", "inf",
                                  "1e999", "", "-", "now+", "2023-13-01"])
def test_a_time_that_is_none_says_what_is(text):
    with pytest.raises(InvalidQuery) as error:
        parse_time(text, NOW, "to")
    assert error.value.param == "to"
    assert "is not a time" in error.value.message and "-6h" in error.value.message


def test_python_times_naive_local_like_python_itself():
    naive = datetime(2023, 11, 14, 22, 13, 27)
    assert to_epoch(naive, NOW, "start_at") == naive.timestamp()  # local time
    aware = datetime(2023, 11, 14, 22, 13, 27, tzinfo=timezone.utc)
    assert to_epoch(aware, NOW, "start_at") == 1_700_000_007
    assert to_epoch(date(2023, 11, 14), NOW, "start_at") == datetime(2023, 11, 14).timestamp()
    assert to_epoch(timedelta(hours=2), NOW, "start_at") == NOW - 2 * HOUR
    assert to_epoch(1_700_000_000, NOW, "start_at") == 1_700_000_000
    assert to_epoch("-2h", NOW, "start_at") == NOW - 2 * HOUR
    assert to_epoch("2023-11-14T22:13:27", NOW, "start_at") == 1_700_000_007  # strings: UTC


@pytest.mark.parametrize("value", [object(), True, None, float("nan"), float("inf"), [1],
                                   b"-6h"])
def test_a_python_time_of_the_wrong_kind_names_the_parameter(value):
    with pytest.raises(InvalidQuery) as error:
        to_epoch(value, NOW, "start_at")
    assert error.value.param == "start_at"
    assert "datetime" in error.value.message and "timedelta" in error.value.message


def test_spans_and_times_in_messages():
    assert [short_span(s) for s in (75_000, 3 * HOUR, 7 * DAY, 365 * DAY + DAY, 0)] == [
        "20h50m", "3h", "7d", "1y1d", "0s"]
    assert [say_span(s) for s in (3 * HOUR, 7 * DAY, 365 * DAY, 60, 90)] == [
        "3 hours", "7 days", "1 year", "1 minute", "90 seconds"]
    assert show_time(NOW) == "2023-11-14T22:13:27Z"
    assert show_time(1e300) == "1e+300"


def window(start=None, end=None, period=None, max_buckets=5000, periods=PERIODS, **kw):
    wanted = periods.find(period) if period else None
    return choose_window(periods, TimeRange(start, end), NOW, max_buckets, wanted, **kw)


@pytest.mark.parametrize("back, period", [
    (HOUR, "15s:3h"), (3 * HOUR, "15s:3h"), (3 * HOUR + 1, "1h:7d"), (7 * DAY, "1h:7d"),
    (8 * DAY, "1d:1y"), (365 * DAY, "1d:1y"),
])
def test_the_finest_period_that_keeps_from_answers(back, period):
    chosen = window(NOW - back)
    assert chosen.period.name == period and chosen.ranged
    interval = chosen.period.interval
    assert chosen.buckets[0] <= NOW - back < chosen.buckets[0] + interval
    assert chosen.buckets[-1] <= NOW < chosen.buckets[-1] + interval


def test_a_range_reads_every_bucket_from_from_to_to():
    chosen = window(NOW - 2 * DAY, NOW - DAY)
    assert chosen.period.name == "1h:7d" and len(chosen.buckets) == 25
    assert chosen.buckets == list(range(chosen.buckets[0], chosen.buckets[-1] + 1, HOUR))
    assert window(NOW - HOUR, NOW + DAY).buckets == window(NOW - HOUR).buckets  # to: now at most


def test_to_alone_reads_the_periods_length_ending_there_as_far_as_kept():
    chosen = window(end=NOW - DAY)
    assert chosen.period.name == "1h:7d"
    assert chosen.buckets[-1] == (NOW - DAY) // HOUR * HOUR
    assert chosen.buckets[0] == (NOW - 7 * DAY) // HOUR * HOUR  # cut to what 1h keeps
    assert len(window(end=NOW - 2 * DAY, period="1d:1y").buckets) == 364  # now-1y to now-2d


def test_too_old_says_what_every_period_keeps_and_the_oldest_time():
    with pytest.raises(InvalidQuery) as error:
        window(NOW - 400 * DAY)
    assert error.value.param == "from"
    assert error.value.message == (
        "from (2022-10-10T22:13:27Z) is older than every period keeps (15s:3h keeps 3 hours, "
        "1h:7d 7 days, 1d:1y 1 year); the oldest you can ask is 2022-11-14T22:13:27Z (-1y)")
    with pytest.raises(InvalidQuery) as error:
        window(end=NOW - 400 * DAY)
    assert error.value.param == "to" and "to (2022-10-10" in error.value.message


def test_too_old_for_the_period_asked_names_one_that_keeps_it():
    with pytest.raises(InvalidQuery) as error:
        window(NOW - DAY, period="15s:3h")
    assert error.value.message == (
        "from (2023-11-13T22:13:27Z) is older than 15s:3h keeps (3 hours); the oldest it can "
        "answer is 2023-11-14T19:13:27Z (-3h): use period 1h:7d, or a later from")


def test_from_after_to_or_in_the_future():
    with pytest.raises(InvalidQuery) as error:
        window(NOW - HOUR, NOW - 2 * HOUR)
    assert error.value.param == "from" and error.value.message == (
        "from (2023-11-14T21:13:27Z) is after to (2023-11-14T20:13:27Z): give a from before to")
    with pytest.raises(InvalidQuery) as error:
        window(NOW + HOUR)
    assert "is in the future: a range ends at now" in error.value.message
    with pytest.raises(InvalidQuery) as error:
        window(NOW * 1000)
    assert "(from is in epoch seconds, not milliseconds)" in error.value.message
    with pytest.raises(InvalidQuery) as error:
        window(NOW + HOUR, names=("start_at", "end_at"))
    assert error.value.param == "start_at" and "give a start_at before now" in error.value.message


def test_too_many_buckets_says_what_would_work():
    fine = Periods.parse("15s:30d,1h:1y")
    assert window(NOW - 2 * DAY, periods=fine).period.name == "1h:1y"  # 15s: 11,521
    with pytest.raises(InvalidQuery) as error:
        window(NOW - 2 * DAY, period="15s:30d", periods=fine)
    assert error.value.message == (
        "this range is 11,521 buckets of 15s; at most 5000 per series "
        "(HAILWHALE_LIMIT_POINTS): use period 1h:1y, or a range of at most 20h50m")
    with pytest.raises(InvalidQuery) as error:
        window(end=NOW - DAY, period="15s:30d", periods=fine)
    assert error.value.param == "to" and error.value.message.startswith(
        "to alone reads 15s:30d's length, which is 167,041 buckets of 15s")
    # no period to offer: to alone reads 8,760 buckets of 1h:1y
    assert error.value.message.endswith(": give from too, a range of at most 20h50m")
    with pytest.raises(InvalidQuery) as error:
        window(NOW - 30 * DAY, max_buckets=10)
    assert error.value.message == (
        "this range is 31 buckets even in 1d:1y, the coarsest period that keeps it; at most "
        "10 per series (HAILWHALE_LIMIT_POINTS): ask for a range of at most 10d")


def test_a_graphs_width_prefers_a_coarser_period():
    assert window(NOW - 2 * HOUR, preferred_buckets=100).period.name == "1h:7d"
    assert window(NOW - 2 * HOUR, preferred_buckets=1000).period.name == "15s:3h"
    assert window(NOW - 200 * DAY, preferred_buckets=10).period.name == "1d:1y"  # the fewest


def test_of_periods_sharing_an_interval_the_one_whose_length_reaches_back_names_it():
    shared = Periods.parse("15s:6h,15s:1h,1h:7d")
    assert window(NOW - 1800, periods=shared).period.name == "15s:1h"
    assert window(NOW - 2 * HOUR, periods=shared).period.name == "15s:6h"


@given(back=st.floats(0, 365 * DAY), span=st.floats(0, 365 * DAY))
def test_any_kept_range_reads_exactly_its_buckets_in_the_finest_period_that_fits(back, span):
    start, end = NOW - back, NOW - back + span
    chosen = window(start, end)
    period, buckets = chosen.period, chosen.buckets
    assert buckets[0] == period.bucket(start) and buckets[-1] == period.bucket(min(end, NOW))
    assert all(b % period.interval == 0 for b in buckets) and len(buckets) <= 5000
    finer = [p for p in PERIODS.periods if p.interval < period.interval]
    assert all(start < NOW - PERIODS.retention[p.interval] for p in finer)


@pytest.mark.parametrize("text", ["-1" + "0" * 400 + "s", "-1" + "0" * 5000 + "s", "１２３",
                                  "٣"])
def test_spans_past_any_float_and_digits_not_ascii_are_not_times(text):
    """An attack review: a 400-digit span was a 500 (OverflowError), full-width digits
    were read as epoch seconds."""
    with pytest.raises(InvalidQuery) as refused:
        parse_time(text, NOW, "from")
    assert refused.value.param == "from" and "is not a time" in refused.value.message
