"""hailwhale/periods.py, pure: spans, buckets, windows, retention (no Redis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hailwhale.exceptions import ConfigError, InvalidQuery
from hailwhale.periods import Periods, bucket_start, parse_period, parse_span


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
