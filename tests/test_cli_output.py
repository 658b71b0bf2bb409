"""What `hailwhale` shows people: numbers without float noise, aligned tables, sparklines,
progress on a terminal only."""

from __future__ import annotations

import io
import time

import pytest

from hailwhale.cli_output import (
    Progress,
    dimensions_table,
    number,
    plotpoints_table,
    sparkline,
    table,
    totals_table,
)


@pytest.mark.parametrize("value, shown", [
    (17099.109999999986, "17099.11"),
    (0.1 + 0.2, "0.3"),
    (500, "500"),
    (500.0, "500"),
    (-0.0, "0"),
    (2**60, "1152921504606846976"),  # an integer stays exact, however large
    (-2.5, "-2.5"),
    (1234567.1234567, "1234567.123457"),  # at most 6 decimals
    (0.000123456789, "0.000123457"),  # below 1: 6 significant digits
    (123456789012.12346, "123456789012.123"),  # at most 15 significant digits
    (1e23, "100000000000000000000000"),
    (0.9999999999, "1"),
])
def test_numbers_read_without_float_noise(value, shown):
    assert number(value) == shown


def test_a_table_aligns_numbers_right_and_names_left():
    shown = table(["dimension", "total"], [["_", 3], ["sales", 17099.109999999986],
                                           ["日本", 1]])
    assert shown.splitlines() == [
        "dimension     total",
        "---------  --------",
        "_                 3",
        "sales      17099.11",
        "日本              1",  # a wide character takes two columns
    ]


def test_a_sparkline_draws_from_zero_to_the_highest_in_at_most_60_bars():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7, 0]) == "▁▃▄▅▅▆▇█▁"
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([0, 0.001, 1000]) == "▁▂█"  # anything above zero shows
    assert sparkline([-3, 0, 3]) == "▁▅█"
    long = sparkline(list(range(720)))
    assert len(long) == 60 and long[-1] == "█" and long == "".join(sorted(long))


@pytest.fixture
def tokyo(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_plotpoints_show_local_times_a_column_per_series_and_sparklines(tokyo):
    start = 1_700_000_010  # 2023-11-14 22:13:30 UTC
    answer = {"_": {"hits": [[(start + 15 * n) * 1000, n % 2] for n in range(3)]},
              '["sales","p42"]': {"dollars": [[(start + 15 * n) * 1000, 0.1 * 3 * n]
                                              for n in range(3)]}}
    lines = plotpoints_table(answer).splitlines()
    assert lines[:5] == [
        "time (JST)           _ hits  [\"sales\",\"p42\"] dollars",
        "-------------------  ------  -----------------------",
        "2023-11-15 07:13:30       0                        0",
        "2023-11-15 07:13:45       1                      0.3",
        "2023-11-15 07:14:00       0                      0.6",
    ]
    assert lines[6].split()[:5] == ["dimension", "metric", "min", "max", "last"]
    assert lines[8].split() == ["_", "hits", "0", "1", "0", "▁█▁"]
    assert lines[9].split() == ['["sales","p42"]', "dollars", "0", "0.6", "0.6", "▁▅█"]


def test_totals_are_a_table_of_dimension_by_period():
    answer = {"15s:3h": {"_": {"hits": 3, "dollars": 0.30000000000000004}},
              "1h:7d": {"_": {"hits": 30, "dollars": 7}, "sales": {"hits": 1, "dollars": 2}}}
    assert totals_table(answer).splitlines() == [
        "dimension  metric   15s:3h  1h:7d",
        "---------  -------  ------  -----",
        "_          hits          3     30",
        "_          dollars     0.3      7",
        "sales      hits          0      1",
        "sales      dollars       0      2",
    ]


def test_dimensions_are_a_table_of_children_with_their_totals():
    answer = {"period": "15s:3h", "parent": "sales", "children": [
        {"name": "p42", "key": '["sales","p42"]', "totals": {"dollars": 500, "hits": 2}},
        {"name": "p7", "key": '["sales","p7"]', "totals": {"dollars": 12.5, "hits": 1}}]}
    assert dimensions_table(answer).splitlines() == [
        "children of sales over 15s:3h",
        "name  key              dollars  hits",
        "----  ---------------  -------  ----",
        'p42   ["sales","p42"]      500     2',
        'p7    ["sales","p7"]      12.5     1',
    ]
    assert dimensions_table({**answer, "children": []}) == \
        "children of sales over 15s:3h: none active"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_at_most_ten_times_a_second_on_a_terminal():
    now = [0.0]
    err = Terminal()
    progress = Progress(err, io.StringIO(), clock=lambda: now[0])
    for n, at in enumerate([0.0, 0.05, 0.09, 0.1, 0.15, 0.31]):
        now[0] = at
        progress.update(f"step {n}")
    now[0] = 1.25
    progress.done("6 steps")
    shown = err.getvalue()
    assert shown.replace("\x1b[K", "").split("\r") == \
        ["", "step 0", "step 3", "step 5", "6 steps in 1.2 s\n"]  # cleared, then the summary


def test_progress_shows_only_its_summary_off_a_terminal():
    err = io.StringIO()
    progress = Progress(err, io.StringIO())
    for n in range(1000):
        progress.update(f"step {n}")
    progress.done("1000 steps")
    assert err.getvalue().startswith("1000 steps in ") and err.getvalue().count("\n") == 1


def test_result_lines_go_above_the_progress_line_when_both_share_the_terminal():
    screen = Terminal()
    progress = Progress(screen, screen)
    progress.update("1 of 2")
    progress.say("a: applied")
    assert screen.getvalue() == "\r1 of 2\x1b[K\r\x1b[Ka: applied\n\r1 of 2\x1b[K"
