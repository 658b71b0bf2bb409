"""hailwhale/periods.py, pure: spans, buckets, windows, retention (no Redis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hailwhale.exceptions import ConfigError, InvalidQuery
from hailwhale.periods import (
    Period,
    Periods,
    Window,
    bucket_start,
    parse_period,
    parse_span,
    span_name,
    to_period,
)


@pytest.mark.parametrize("text, seconds", [
    ("15s", 15), ("1m", 60), ("3h", 10800), ("7d", 604800), ("2w", 1209600),
    ("1mo", 2592000), ("1y", 31536000), (" 5 m ", 300),
])
def test_spans_in_graphite_units(text, seconds):
    assert parse_span(text) == seconds


@pytest.mark.parametrize("text", ["15", "1x", "h", "-1h", "1.5h", "15s:3h"])
def test_bad_spans_are_refused(text):
    with pytest.raises(ValueError):
        parse_span(text)


def test_periods_in_both_spellings_and_their_windows():
    period = parse_period("15s:3h")
    assert (period.interval, period.length, period.buckets) == (15, 10800, 720)
    legacy = parse_period("15x10800")
    assert (legacy.interval, legacy.length) == (15, 10800)
    window = period.window(1_000_000_007.0)
    assert len(window) == 720 and window[-1] == 1_000_000_005 and window[-1] - window[0] == 719 * 15


@pytest.mark.parametrize("text", ["15s", "0s:1h", "1h:90m", "7s:10s", "1h:30m"])
def test_impossible_periods_are_refused(text):
    with pytest.raises(ValueError):
        parse_period(text)


@given(t=st.floats(0, 4e9), interval=st.sampled_from([1, 15, 60, 3600, 86400]))
def test_a_bucket_holds_its_time_and_starts_at_a_multiple_of_the_interval(t, interval):
    start = bucket_start(t, interval)
    assert start % interval == 0 and start <= t < start + interval


def test_retention_is_the_longest_length_of_an_interval_and_windows_follow():
    periods = Periods.parse("15s:3h,15s:6h,1h:7d")
    assert periods.retention == {15: 21600, 3600: 604800}
    assert periods.longest == 604800 and periods.intervals == (15, 3600)
    now = 1_000_000_000.0
    assert periods.intervals_holding(now - 5 * 3600, now) == [15, 3600]
    assert periods.intervals_holding(now - 7 * 3600, now) == [3600]
    assert periods.intervals_holding(now - 8 * 86400, now) == []


def test_find_by_name_or_by_equal_spelling_and_say_what_exists():
    periods = Periods.parse(["15s:3h", "1h:7d"])
    assert periods.find(None).name == "15s:3h"
    assert periods.find("3600x604800").name == "1h:7d"
    with pytest.raises(InvalidQuery) as error:
        periods.find("1d:1y")
    assert error.value.param == "period" and "15s:3h, 1h:7d" in error.value.message
    with pytest.raises(ConfigError):
        Periods.parse("")


def test_spans_are_named_in_the_largest_unit_that_divides_them():
    assert [span_name(s) for s in (15, 60, 10800, 604800, 2592000, 31536000, 90)] == [
        "15s", "1m", "3h", "7d", "30d", "1y", "90s"]


def test_the_seeds_tuple_periods_and_every_other_spelling():
    seed = [(15, 3600 * 3), (3600, 3600 * 24 * 7), (86400, 86400 * 365)]
    periods = Periods.parse(seed)
    assert periods.names == ["15s:3h", "1h:7d", "1d:1y"]
    assert Periods.parse((15, 10800)).names == ["15s:3h"]  # one pair is one period
    assert Periods.parse(["15x10800", [3600, 604800], parse_period("1d:1y")]).names == [
        "15x10800", "1h:7d", "1d:1y"]
    for spelling in ((3600, 604800), [3600, 604800], "3600x604800", "1h:7d", " 1h:7d"):
        assert periods.find(spelling).name == "1h:7d"
    with pytest.raises(InvalidQuery) as error:
        periods.find((60, 3600))
    assert error.value.message == ("unknown period (60, 3600); configured periods: "
                                   "15s:3h, 1h:7d, 1d:1y")


@pytest.mark.parametrize("spec", [[(15, 10)], [(0, 10)], [(15, "3h")], [(True, 10)], [15],
                                  [(15, 30, 45)], 42])
def test_impossible_tuple_periods_are_refused(spec):
    with pytest.raises(ConfigError):
        Periods.parse(spec)


def test_a_period_of_no_known_shape_says_which_to_give():
    with pytest.raises(ValueError, match=r"give one like '15s:3h', '15x10800' or \(15, 10800\)"):
        to_period((15, 30, 45))
    with pytest.raises(ValueError, match=r"period \(15, 10\): the length must be a whole"):
        to_period((15, 10))


@given(start=st.floats(0, 4e9), buckets=st.floats(0, 1000),
       interval=st.sampled_from([1, 15, 60, 3600, 86400]))
def test_a_range_window_holds_every_bucket_from_start_to_end(start, buckets, interval):
    period, span = Period(interval, interval, "x"), buckets * interval
    window = period.range_window(start, start + span)
    assert window[0] == bucket_start(start, interval)
    assert window[-1] == bucket_start(start + span, interval)
    assert len(window) == period.count_buckets(start, start + span)
    assert all(b - a == interval for a, b in zip(window, window[1:]))


def test_a_bucket_is_kept_while_its_retention_after_it_ends_has_not_passed():
    periods = Periods.parse("15s:3h,1h:7d")
    now = 1_000_000_000.0
    assert periods.reach(15, now) == now - 10800
    assert periods.reach(3600, now) == now - 7 * 86400
    assert Window.latest(periods.find(None), now).buckets == periods.find(None).window(now)
