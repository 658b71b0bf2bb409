"""A short soak (bench/soak.py for the long one): two Hail nodes under concurrent
random load while a reader polls; every acknowledged event counted, exactly."""

from __future__ import annotations

import json

from bench.soak import soak


def test_short_soak_counts_exactly_what_was_acknowledged():
    figures = soak(seconds=6, clients=6, seed=7)
    print(json.dumps(figures))
    assert figures["events"] > 300 and figures["requests"] > 100
    assert figures["errors"] == {} and figures["server_errors_5xx"] == 0
    assert figures["drift"] == {} and figures["totals_checked"] >= 9
    assert figures["reads"] > 0 and figures["read_errors"] == 0
    # Python servers only (workers, flushers): a leak would keep growing under load.
    assert figures["rss_mb_end"] - figures["rss_mb_warm"] < 40
