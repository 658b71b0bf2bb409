"""StatsD and DogStatsD lines into events (hail/statsd_lines.py): pure, no Redis."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hail.statsd_lines import INVALID, MALFORMED, UNSUPPORTED, LineReader, Refusal
from hailwhale.config import Limits
from hailwhale.events import Event, parse_event
from hailwhale.exceptions import InvalidEvent
from hailwhale.periods import DEFAULT_PERIODS, Periods

PERIODS = Periods.parse(DEFAULT_PERIODS)
NOW = 1_700_000_000.25


def reader() -> LineReader:
    return LineReader(PERIODS, Limits())


def events(line: bytes | str) -> list[Event] | Refusal:
    return reader().events(line.encode() if isinstance(line, str) else line, NOW)


def expected(**params: object) -> Event:
    """The event /count makes of the same params, received at NOW."""
    return parse_event(params, periods=PERIODS, limits=Limits(), now=NOW, encoded=False)


def refused(line: bytes | str) -> Refusal:
    got = events(line)
    assert isinstance(got, Refusal), f"{line!r} was accepted: {got}"
    return got


# -- the mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "metrics"), [
    ("clicks:1|c", {"clicks": 1}),
    ("clicks:3|c|@0.1", {"clicks": 30}),  # value / rate, integral: an exact integer
    ("clicks:1|c|@0.5", {"clicks": 2}),
    ("dollars:2.5|c", {"dollars": 2.5}),
    ("dollars:-4|c", {"dollars": -4}),
    ("dollars:+4|c", {"dollars": 4}),
    ("dollars:.5|c", {"dollars": 0.5}),
    ("dollars:1e3|c", {"dollars": 1000}),
    ("big:9007199254740992|c", {"big": 2**53}),  # the bound itself is accepted
    ("api.latency:120|ms", {"api.latency": 120, "api.latency.count": 1}),
    ("api.latency:120|ms|@0.25", {"api.latency": 120, "api.latency.count": 4}),
    ("api.size:512|h|@0.5", {"api.size": 512, "api.size.count": 2}),
    ("api.size:0.75|d", {"api.size": 0.75, "api.size.count": 1}),
    ("hits:5|c", {"hits": 5}),  # an event that sets hits itself, as /count's
])
def test_counters_and_timers_add_up_as_the_design_maps_them(line, metrics):
    assert events(line) == [expected(metrics=metrics)]
    assert events(line)[0].at == NOW


def test_a_set_counts_distinct_ids():
    assert events("users:alice|s") == [expected(metrics={"users": {"unique": "alice"}})]
    assert events("users:42|s") == [expected(metrics={"users": {"unique": "42"}})]


def test_tags_are_dimensions_and_the_pk_tag_the_pk():
    got = events("dollars:5|c|#sales:p42,country:US,beta,pk:shop")
    assert got == [expected(pk="shop", metrics={"dollars": 5},
                            dimensions={"sales": "p42", "country": "US", "beta": []})]
    assert got[0].paths == (("sales",), ("sales", "p42"), ("country",), ("country", "US"),
                            ("beta",))


def test_a_tag_given_twice_with_two_values_counts_under_both():
    [event] = events("x:1|c|#role:web,role:db")
    assert event.paths == (("role",), ("role", "web"), ("role", "db"))


def test_a_tag_value_keeps_its_colons():
    [event] = events("x:1|c|#url:http://site.com/a")
    assert event.paths == (("url",), ("url", "http://site.com/a"))


def test_dogstatsd_multi_value_lines_are_one_event_per_value():
    got = events("api.t:1:2.5:3|h|@0.5")
    assert got == [expected(metrics={"api.t": value, "api.t.count": 2})
                   for value in (1, 2.5, 3)]


def test_dogstatsd_timestamps_are_the_events_time():
    five_hours_ago = int(NOW) - 5 * 3600
    [event] = events(f"x:1|c|T{five_hours_ago}")
    assert event == expected(metrics={"x": 1}, at=five_hours_ago)
    assert event.intervals == (3600, 86400)  # outside 15s:3h's window, as /count decides


def test_a_timestamp_is_judged_at_each_arrival():
    lines = reader()
    soon = int(NOW) + 400  # more than 5 minutes ahead: refused now, not in 2 minutes
    assert lines.events(f"x:1|c|T{soon}".encode(), NOW).reason == INVALID
    assert lines.events(f"x:1|c|T{soon}".encode(), NOW + 120)[0].at == soon


def test_fields_dogstatsd_skips_are_skipped():
    assert events("x:1|c|c:3f6e11a0|#a:b|card:high|e:it-false") == [
        expected(metrics={"x": 1}, dimensions={"a": "b"})]


def test_a_carriage_return_ends_a_line_like_a_newline():
    assert events(b"x:1|c\r") == events(b"x:1|c")


def test_the_same_line_twice_reads_the_same():
    lines = reader()
    first = lines.events(b"x:2|ms|@0.5|#a:b", NOW)
    assert lines.events(b"x:2|ms|@0.5|#a:b", NOW) == first
    assert lines.events(b"x:3|ms|@0.5|#a:b", NOW) == [
        expected(metrics={"x": 3, "x.count": 2}, dimensions={"a": "b"})]


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "reason", "says"), [
    ("temperature:21|g", UNSUPPORTED, "gauges are not counted"),
    ("_e{5,4}:title|text", UNSUPPORTED, "events are not counted"),
    ("_sc|db|0", UNSUPPORTED, "service checks"),
    ("x:1|z", UNSUPPORTED, "type 'z'"),
    ("x:1", MALFORMED, "name:value|type"),
    ("x|c", MALFORMED, "name:value|type"),
    ("x:|c", MALFORMED, "not a number"),
    ("x:nan|c", MALFORMED, "not a number"),
    ("x:inf|c", MALFORMED, "not a number"),
    ("x:1_000|c", MALFORMED, "not a number"),
    ("x: 1|c", MALFORMED, "not a number"),
    ("x:\u0663|c", MALFORMED, "not a number"),  # an Arabic-Indic 3: digits are ASCII
    ("x:0x10|c", MALFORMED, "not a number"),
    ("x:1|c|@0", MALFORMED, "sample rate"),
    ("x:1|c|@-0.5", MALFORMED, "sample rate"),
    ("x:1|c|@1.5", MALFORMED, "sample rate"),
    ("x:1|c|@nan", MALFORMED, "sample rate"),
    ("x:1|c|@", MALFORMED, "sample rate"),
    ("x:1|c|Tyesterday", MALFORMED, "timestamp"),
    ("x:9007199254740993|c", INVALID, "out of range"),
    ("x:-9007199254740993|c", INVALID, "out of range"),
    ("x:1e400|c", INVALID, "out of range"),
    ("x:" + "9" * 10_000 + "|c", INVALID, "out of range"),
    ("x:1e16|c|@0.5", INVALID, "out of range"),  # in range, not once divided by the rate
    ("x:1|ms|@1e-300", INVALID, "out of range"),  # its count, 1 / rate, is not
    ("x:1|c|T1", INVALID, "timestamp"),  # outside every window
    ("api-latency:1|c", INVALID, "metric name 'api-latency'"),
    ("1abc:1|c", INVALID, "metric name"),
    (":1|c", INVALID, "metric name"),
    ("caf\u00e9:1|c", INVALID, "metric name"),
    ("x" * 201 + ":1|c", INVALID, "over 200"),
    ("x:1|c|#_:a", INVALID, "_ means overall"),
    ("x:1|c|#_other", INVALID, "reserved"),
    ("x:1|c|#a:b\u202e", INVALID, "U+202E"),
    ("x:1|c|#:b", INVALID, "empty"),
    ("x:1|c|#pk:a,pk:b", INVALID, "pk tag is given twice"),
    ("hits:alice|s", INVALID, "hits is always a sum"),
    ("users:|s", INVALID, "unique id"),
    ("users:" + "u" * 201 + "|s", INVALID, "over 200"),
])
def test_a_bad_line_is_refused_with_its_reason(line, reason, says):
    refusal = refused(line)
    assert refusal.reason == reason
    assert says in refusal.message


def test_a_line_that_is_not_utf8_is_malformed():
    assert refused(b"x:1|c|#a:\xff\xfe").reason == MALFORMED


def test_ten_thousand_tags_are_refused_at_once():
    line = "x:1|c|#" + ",".join(f"t{n}:v" for n in range(10_000))
    started = time.perf_counter()
    refusal = refused(line)
    assert refusal.reason == INVALID and "prefixes" in refusal.message
    assert len(refusal.line) < 200  # the log shows a line cut short
    assert time.perf_counter() - started < 5  # no quadratic blow-up (generous: not a timing)


def test_the_limits_of_count_hold_for_statsd():
    limits = Limits(prefixes=4, names_bytes=64)
    lines = LineReader(PERIODS, limits)
    assert isinstance(lines.events(b"x:1|c|#a:1,b:2", NOW), list)
    assert lines.events(b"x:1|c|#a:1,b:2,c:3", NOW).reason == INVALID  # 6 prefixes
    long = b"x:1|c|#" + b"n" * 70
    assert "bytes" in lines.events(long, NOW).message


# -- batches -----------------------------------------------------------------------------


def test_a_batch_counts_its_good_lines_and_each_bad_one_by_reason():
    lines = [b"a:1|c", b"", b"g:1|g", b"b:2|ms\r", b"bad", b"c-d:1|c", b"u:x|s", b"x:1:2|c",
             b"\xff"]
    reading = reader().read(lines, NOW)
    assert reading.accepted == 4  # a, b, u, x (x's two values are two events of one line)
    assert dict(reading.refused) == {UNSUPPORTED: 1, MALFORMED: 2, INVALID: 1}
    assert reading.received == 8  # the empty line is no line
    assert [Event.from_json(text) for text in reading.events] == [
        expected(metrics={"a": 1}), expected(metrics={"b": 2, "b.count": 1}),
        expected(metrics={"u": {"unique": "x"}}), expected(metrics={"x": 1}),
        expected(metrics={"x": 2})]
    assert [r.line for r in reading.refusals] == ["g:1|g", "bad", "c-d:1|c", "\\xff"]


def test_a_batch_keeps_the_first_refusals_only():
    reading = reader().read([b"bad"] * 50, NOW, keep=3)
    assert reading.refused[MALFORMED] == 50 and len(reading.refusals) == 3


def test_the_json_is_what_event_to_json_writes():
    lines = reader()
    for line in (b"x:1|c|#a:b,pk:p", b"t:2.5|ms|@0.5", b"u:id|s|#z", b"hits:3|h"):
        [text] = lines.read([line], NOW).events
        event = Event.from_json(text)
        assert text == event.to_json()


# -- the same events as /count, whatever the line -----------------------------------------

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,20}", fullmatch=True)
SEGMENTS = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Cf", "Zl"],
                                 exclude_characters=",|:#\n\r"), min_size=1, max_size=12
                   ).filter(lambda s: s not in ("_", "_other"))
VALUES = st.one_of(st.integers(-(2**40), 2**40),
                   st.integers(-(2**20), 2**20).map(lambda n: n / 64))
RATES = st.sampled_from([1, 0.5, 0.25, 0.1, 0.125])


@given(name=NAMES, value=VALUES, rate=RATES, kind=st.sampled_from(["c", "ms", "h", "d"]),
       tags=st.dictionaries(SEGMENTS.filter(lambda s: s != "pk"), st.none() | SEGMENTS,
                            max_size=5),
       pk=st.none() | SEGMENTS)
def test_a_line_counts_what_count_counts_for_the_same_event(name, value, rate, kind, tags, pk):
    line = f"{name}:{value!r}|{kind}"
    if rate != 1:
        line += f"|@{rate}"
    spelled = [key if tag is None else f"{key}:{tag}" for key, tag in tags.items()]
    if pk is not None:
        spelled.append(f"pk:{pk}")
    if spelled:
        line += "|#" + ",".join(spelled)
    if kind == "c":
        metrics = {name: value / rate}
    else:
        metrics = {name: value, f"{name}.count": 1 / rate}
    try:
        want: list[Event] | str = [expected(pk=pk, metrics=metrics, dimensions={
            key: [] if tag is None else tag for key, tag in tags.items()})]
    except InvalidEvent as error:  # what /count refuses, StatsD refuses
        want = error.message
    got = events(line)
    if isinstance(want, str):
        assert isinstance(got, Refusal) and got.reason == INVALID
    else:
        assert got == want


@given(st.binary(max_size=300))
def test_no_bytes_break_the_reader(line):
    got = reader().read(line.split(b"\n"), NOW)
    assert got.received == len([part for part in line.split(b"\n") if part])
    for text in got.events:
        Event.from_json(text)


def test_what_the_reader_remembers_stays_small_whatever_the_lines():
    """Long lines, multi-value lines and long tags are not remembered: an attack review
    held 78 MB after 20 distinct 64 KB lines (10,000 of them would have been 39 GB)."""
    import tracemalloc

    lines = reader()
    padded = b":".join([b"0" * 590 + b"1"] * 100)  # 100 values, 59 KB
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(40):
        lines.read([b"m%d:" % n + padded + b"|d"], time.time())
        lines.read([b"t:1|c|#" + b"k%d:" % n + b"v" * 60_000], time.time())  # long lines
        lines.read([b"u%d:1|c|#k:" % n + b"v" * 60_000], time.time())  # long shapes
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert kept < 512 * 1024, f"{kept:,} bytes kept"  # 4.9 MB when every line was kept
