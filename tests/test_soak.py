"""Short soaks (bench/ for the long ones): every acknowledged event counted, exactly once.

The two-node soak sends random events and batches from Python clients; the paced
soak (the `soak` scenario of `make bench`) drives one node with wrk and checks each
series against the very requests that were answered. Speed is never asserted here.
"""

from __future__ import annotations

import json
import shutil

import pytest

from bench import pace
from bench.paced_soak import paced_soak
from bench.soak import soak
from tests.servers import lacking


def test_short_soak_counts_exactly_what_was_acknowledged():
    figures = soak(seconds=6, clients=6, seed=7)
    print(json.dumps(figures))
    assert figures["events"] > 300 and figures["requests"] > 100
    assert figures["errors"] == {} and figures["server_errors_5xx"] == 0
    assert figures["drift"] == {} and figures["totals_checked"] >= 9
    assert figures["reads"] > 0 and figures["read_errors"] == 0
    # Python servers only (workers, flushers): a leak would keep growing under load.
    assert figures["rss_mb_end"] - figures["rss_mb_warm"] < 40


def test_paced_soak_checks_every_answered_request():
    if shutil.which("wrk") is None:
        lacking("wrk is not installed (apt-get install wrk)")
    scenario = paced_soak(seconds=2, max_seconds=1, threads=4)
    figures = {name: value["median"] for name, value in scenario["figures"].items()}
    print(json.dumps(scenario["details"]))
    assert figures["lost"] == 0 and figures["doubled"] == 0
    assert figures["server_errors_5xx"] == 0 and figures["reader_not_200"] == 0
    assert figures["markers_unseen"] == 0
    phases = scenario["details"]["phases"]
    assert set(phases) == {"warm", "max", "soak"}
    for phase in phases.values():
        assert phase["acknowledged"] > 0 and phase["wrong_series"] == []
        assert 0 <= phase["in_doubt_counted"] <= phase["in_doubt"]


def _load(acked: list[int], doubt: list[int]) -> pace.Load:
    """One thread's run: requests `acked` answered 200 OK, `doubt` unanswered."""
    hits, sums = [0] * pace.SERIES, [0] * pace.SERIES
    for n in acked:
        hits[n % pace.SERIES] += 1
        sums[n % pace.SERIES] += n
    thread = {"thread": 1, "sent": len(acked) + len(doubt), "acked_hits": hits,
              "acked_n": sums, "doubt": doubt, "statuses": {}}
    return pace.Load("p", 1, 1.0, len(acked), {}, {}, [thread], 0.0)


def _counted(numbers: list[int]) -> dict[str, dict]:
    counted: dict[str, dict] = {}
    for n in numbers:
        held = counted.setdefault(pace.totals_path("p", 1, n % pace.SERIES), {"hits": 0, "n": 0})
        held["hits"] += 1
        held["n"] += n
    return counted


@pytest.mark.parametrize("store, lost, doubled, in_doubt_counted", [
    ([2, 3, 18, 34], 0, 0, 0),  # exactly the acknowledged
    ([2, 3, 18, 34, 49], 0, 0, 1),  # and the request in doubt
    ([2, 3, 18], 1, 0, 0),  # 34 lost
    ([2, 3, 18, 34, 34], 0, 1, 0),  # 34 twice: its series has no request in doubt
    ([2, 3, 18, 34, 49, 49], 0, 1, 0),  # the one in doubt, twice
    ([2, 3, 18, 18, 49], 1, 1, 1),  # 34 lost, 18 doubled: the hits agree, the sums not
])
def test_pace_check_tells_lost_from_doubled_from_in_doubt(store, lost, doubled,
                                                           in_doubt_counted):
    # series 2 holds 2, 18 and 34; 49, in doubt, is alone in series 1
    check = pace.check(_load([2, 3, 18, 34], doubt=[49]), _counted(store))
    assert (check["lost"], check["doubled"], check["in_doubt_counted"]) == (
        lost, doubled, in_doubt_counted)
    assert bool(check["wrong_series"]) == bool(lost or doubled)
