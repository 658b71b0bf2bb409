"""The seed's Python API as written: tuple periods, datetimes, start_at in every form."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from hailwhale import HailWhale
from hailwhale.exceptions import ConfigError, InvalidQuery
from tests.servers import command_env

# The seed's own periods, verbatim.
PERIODS = [(15, 3600*3), (3600, 3600*24*7), (86400, 86400*365)]
# Near the real time (keys expire by the real clock), mid-hour and mid-bucket.
NOW = time.time() // 3600 * 3600 + 1234.5
HOUR = 3600


@pytest.fixture
def hw(redis_client) -> HailWhale:
    return HailWhale(redis=redis_client, periods=PERIODS, clock=lambda: NOW)


def test_the_seeds_example_as_written(redis_client):
    hw = HailWhale(redis=redis_client, periods=PERIODS)  # the seed's HailWhale, an instance
    hw.count(dimensions=["pageviews", "site.com", "site.com/main"], metrics={"time_on_page": 30})
    data = hw.dataset(["pageviews", "site.com"], value="time_on_page", period=PERIODS[1],
                      start_at=datetime.now() - timedelta(days=30), depth=1)
    # 30 days asked of a 7-day period: as far back as it keeps, not an error
    [(child, points)] = data.items()
    assert child == "site.com/main" and 168 <= len(points) <= 169  # 169: now on the hour
    assert points[-1][1] == 30 and sum(value for _, value in points) == 30
    stamps = [moment for moment, _ in points]
    assert all(moment.tzinfo is timezone.utc for moment in stamps)
    assert all(b - a == timedelta(hours=1) for a, b in zip(stamps, stamps[1:]))
    assert stamps[0] >= datetime.now(timezone.utc) - timedelta(days=7, seconds=5)


def test_tuple_periods_name_themselves_and_work_wherever_a_period_is_taken(hw):
    assert hw.periods.names == ["15s:3h", "1h:7d", "1d:1y"]
    hw.count(dimensions="a", metrics={"dollars": 4})
    answers = [hw.plotpoints("a", "dollars", period=spelling)
               for spelling in (PERIODS[0], list(PERIODS[0]), "15x10800", "15s:3h")]
    assert all(answer == answers[0] for answer in answers)
    assert hw.totals("a", "dollars", period=PERIODS[2]) == {"1d:1y": {"a": {"dollars": 4}}}
    assert hw.dimensions(None, "dollars", period=PERIODS[1])["period"] == "1h:7d"
    assert hw.dataset("a", "dollars", period=PERIODS[1])[-1][1] == 4
    with pytest.raises(InvalidQuery) as error:
        hw.plotpoints("a", period=(60, 3600))
    assert error.value.param == "period" and "15s:3h, 1h:7d, 1d:1y" in error.value.message
    with pytest.raises(ConfigError, match="whole number of intervals"):
        HailWhale(redis=hw.store.redis, periods=[(15, 10)])


def test_start_at_in_every_form_reads_the_same_range(hw):
    hw.count(dimensions="a", metrics={"dollars": 5}, at=NOW - 2 * HOUR)
    hw.count(dimensions="a", metrics={"dollars": 7}, at=NOW - 10 * HOUR)
    start = NOW - 3 * HOUR
    forms = [start, int(start) + 1, datetime.fromtimestamp(start),  # naive: local time
             datetime.fromtimestamp(start, timezone.utc), timedelta(hours=3), "-3h",
             "now-180m", datetime.fromtimestamp(start, timezone.utc).isoformat(),
             datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")]
    for form in forms:
        assert hw.totals("a", "dollars", start_at=form) == {"15s:3h": {"a": {"dollars": 5}}}
    assert hw.totals("a", "dollars", start_at=timedelta(hours=12)) == {
        "1h:7d": {"a": {"dollars": 12}}}
    assert hw.totals("a", "dollars", start_at="-12h", end_at=timedelta(hours=6)) == {
        "1h:7d": {"a": {"dollars": 7}}}
    points = hw.plotpoints("a", "dollars", start_at="-1d", period="1d:1y")["a"]["dollars"]
    assert len(points) == 2 and sum(value for _, value in points) == 12


@pytest.mark.parametrize("name", ["start_at", "end_at"])
@pytest.mark.parametrize("value", [object(), "yesterday", True, float("nan"), [1], b"-1h"])
def test_a_bad_time_is_an_error_naming_its_parameter(hw, name, value):
    for method in (hw.plotpoints, hw.totals, hw.dimensions):
        with pytest.raises(InvalidQuery) as error:
            method("a", **{name: value})
        assert error.value.param == name, method
    with pytest.raises(InvalidQuery) as error:
        hw.dataset("a", **{name: value})
    assert error.value.param == name


def test_a_start_at_past_what_is_kept_says_what_would_work(hw):
    with pytest.raises(InvalidQuery) as error:
        hw.plotpoints("a", period=PERIODS[1], start_at=timedelta(days=30))
    assert error.value.param == "start_at"
    assert "older than 1h:7d keeps (7 days)" in error.value.message
    assert "use period 1d:1y, or a later start_at" in error.value.message
    with pytest.raises(InvalidQuery, match="older than every period keeps"):
        hw.totals("a", start_at=timedelta(days=400))
    assert len(hw.dataset("a", start_at=timedelta(days=400))) == 365  # the seed's: cut


def test_dataset_start_at_keeps_the_points_stamped_from_it(hw):
    hw.count(dimensions="a", metrics={"dollars": 3}, at=NOW - 2 * HOUR)
    points = hw.dataset("a", "dollars", period=PERIODS[1], start_at=NOW - 2 * HOUR)
    assert [value for _, value in points] == [0, 0]  # the 2-hours-ago bucket starts before
    points = hw.dataset("a", "dollars", start_at=timedelta(hours=1))  # finest: 15s
    assert points[1][0] - points[0][0] == timedelta(seconds=15)
    points = hw.dataset("a", "dollars", period=PERIODS[1], start_at=NOW - 3 * HOUR,
                        end_at=NOW - HOUR)
    assert [value for _, value in points] == [3, 0]


# Run under another time zone: a naive datetime is the local time there.
_TOKYO = textwrap.dedent("""
    import json, sys, time
    from datetime import datetime, timedelta
    from hailwhale import HailWhale

    assert time.strftime("%z") == "+0900"
    hw = HailWhale(sys.argv[1])
    moment = datetime.now()  # naive, Tokyo time
    hw.count(dimensions="tokyo", at=moment)
    hw.count(dimensions="tokyo", metrics={"dollars": 2}, at=moment - timedelta(hours=2))
    around = dict(start_at=moment - timedelta(hours=2, minutes=1),
                  end_at=moment - timedelta(hours=1, minutes=59))
    print(json.dumps({
        "hits": hw.totals("tokyo", period="15s:3h")["15s:3h"]["tokyo"]["hits"],
        "two_hours_ago": hw.totals("tokyo", "dollars", **around),
        "stamp": hw.dataset("tokyo", start_at=moment - timedelta(minutes=1))[0][0].timestamp(),
        "now": time.time(),
    }))
    hw.close()
""")


def test_naive_datetimes_are_local_time(redis_url):
    done = subprocess.run([sys.executable, "-c", _TOKYO, redis_url], capture_output=True,
                          text=True, env=command_env(TZ="Asia/Tokyo"), timeout=60)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["hits"] == 2  # both accepted: neither read as 9 hours ahead
    assert answer["two_hours_ago"] == {"15s:3h": {"tokyo": {"dollars": 2}}}
    assert 0 < answer["now"] - answer["stamp"] <= 75  # within the minute asked, not 9 hours
