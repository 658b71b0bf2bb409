"""Event parsing: every form /count accepts, every rejection, the buffer format."""

from __future__ import annotations

import json
import math
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hailwhale.config import Limits
from hailwhale.events import Event, parse_batch, parse_event
from hailwhale.exceptions import InvalidEvent
from hailwhale.periods import Periods
from hailwhale.values import decode_value, parse_path

PERIODS = Periods.parse("15s:3h,1h:7d,1d:1y")
LIMITS = Limits()
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def count(encoded: bool = False, limits: Limits = LIMITS, **params: object) -> Event:
    return parse_event(params, periods=PERIODS, limits=limits, now=NOW, encoded=encoded)


def query(**params: str) -> Event:
    """The event a query string or form with these values stands for."""
    return count(encoded=True, **params)


def refused(param: str, encoded: bool = True, limits: Limits = LIMITS, **params) -> str:
    """The message of the InvalidEvent these params raise; asserts it names `param`."""
    with pytest.raises(InvalidEvent) as info:
        count(encoded=encoded, limits=limits, **params)
    assert info.value.param == param, info.value
    return info.value.message


def batch(items: object, limits: Limits = LIMITS) -> list[Event]:
    return parse_batch(items, periods=PERIODS, limits=limits, now=NOW)


def test_an_event_with_nothing_is_one_hit_overall_now():
    assert count() == Event(pk=(), paths=(), sums={"hits": 1}, uniques={}, at=NOW)


def test_unknown_params_are_refused_by_name():
    # `_`, `key` and `idempotency_key` are request parameters: ingest.py takes them out.
    assert "did you mean dimensions?" in refused("dimesions", dimesions="sales")
    assert "unknown parameter" in refused("cb", cb="[")
    assert "unknown field" in refused("dimesions", False, dimesions="sales")
    assert "a batch is a JSON array" in refused("events", False, events=[{"dimensions": "a"}])
    assert refused("_", _="1700000000123")
    long = "x" * 5000
    assert refused(long[:100] + "...", **{long: "1"})  # named, not echoed whole


# pk


@pytest.mark.parametrize(
    "text, pk",
    [
        ("Product", ("Product",)),
        ('["Product","123"]', ("Product", "123")),
        ('"[literal]"', ("[literal]",)),
        ("_", ()),
        ('["_"]', ()),
        ("", ()),
        ("[]", ()),
        ("site.com/main", ("site.com/main",)),
    ],
)
def test_pk_forms(text, pk):
    assert query(pk=text).pk == pk
    assert query(category=text).pk == pk


def test_pk_native_values():
    assert count(pk=["Product", 123, True]).pk == ("Product", "123", "true")
    assert count(pk="[not json]").pk == ("[not json]",)
    assert count(pk=None).pk == ()


@pytest.mark.parametrize(
    "text",
    ['{"a": "b"}', '["a", "_"]', "_other", '["a", null]', '["a", ""]', '["a", ["b"]]',
     json.dumps(["x"] * 9), "x" * 201, "a\x00b"],
)
def test_pk_refused(text):
    refused("pk", pk=text)
    refused("category", category=text)


# dimensions


@pytest.mark.parametrize(
    "text, paths",
    [
        ("services", [["services"]]),
        ('["site.com","site.com/main"]', [["site.com"], ["site.com", "site.com/main"]]),
        (
            '{"sales": "p42", "country": {"US": "CA"}}',
            [["sales"], ["sales", "p42"], ["country"], ["country", "US"], ["country", "US", "CA"]],
        ),
        (
            '{"n": 42, "b": true, "f": 1.5, "no": false}',
            [["n"], ["n", "42"], ["b"], ["b", "true"], ["f"], ["f", "1.5"], ["no"],
             ["no", "false"]],
        ),
        ('{"tags": ["a","b"]}', [["tags"], ["tags", "a"], ["tags", "a", "b"]]),
        ('{"a": {}, "b": [], "c": {"d": {}}}', [["a"], ["b"], ["c"], ["c", "d"]]),
        ('["a", "a"]', [["a"], ["a", "a"]]),
        ('{"x": ["_x", "other", "hits"]}', [["x"], ["x", "_x"], ["x", "_x", "other"],
                                            ["x", "_x", "other", "hits"]]),
        ('"{not a tree}"', [["{not a tree}"]]),
        ("  [spaces first]", [["  [spaces first]"]]),
        ("_", []),
        ("", []),
        ("{}", []),
        ("[]", []),
        ('["_"]', []),
        ('"_"', []),
    ],
)
def test_dimension_forms(text, paths):
    expected = tuple(tuple(path) for path in paths)
    assert query(dimensions=text).paths == expected
    assert query(dimension=text).paths == expected
    native = json.loads(text) if text.startswith(('[', '{', '"')) else text
    assert count(dimensions=native).paths == expected


def test_dimension_prefixes_are_deduplicated_in_first_seen_order():
    paths = count(dimensions={"1": "x", 1: ["y"], "z": 1}).paths
    assert paths == (("1",), ("1", "x"), ("1", "y"), ("z",), ("z", "1"))


def test_native_strings_are_names_not_json():
    assert count(dimensions='["a"]').paths == (('["a"]',),)
    assert count(dimensions=None).paths == ()


@pytest.mark.parametrize(
    "text",
    [
        '{"a": null}', '["a", null]', "[null]", '{"": "x"}', '["a", ""]', '{"a": ""}',
        '{"a": "_"}', '["_", "a"]', '{"_": "a"}', '{"_other": 1}', '["a", "_other"]', "_other",
        '["a", ["b"]]', '["a", {"b": "c"}]', "a\x01b", "a\x7fb", "\x00", '["\\ud800"]',
        "x" * 201, json.dumps({"x" * 201: 1}), json.dumps(["x"] * 9),
        '{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":"i"}}}}}}}}',
        json.dumps({f"k{i}": 1 for i in range(33)}),  # 66 prefixes
        "[", '{"a": ', '["a",]', '["a", NaN]', "[1e400]", "[" * 100_000,
    ],
)
def test_dimensions_refused(text):
    assert refused("dimensions", dimensions=text)
    assert refused("dimension", dimension=text)


def test_dimension_limits_are_inclusive():
    assert len(query(dimensions=json.dumps(["x"] * 8)).paths) == 8
    assert len(query(dimensions=json.dumps({f"k{i}": 1 for i in range(32)})).paths) == 64
    assert query(dimensions="x" * 200).paths == (("x" * 200,),)


def test_limits_are_configurable():
    small = Limits(name_length=3, path_depth=2, prefixes=3, metrics=1)
    assert count(dimensions={"a": "b", "c": {}}, metrics={"x": 1}, limits=small)
    assert "at most 2 names" in refused("pk", False, small, pk=["a", "b", "c"])
    assert "2 names deep" in refused("dimensions", False, small, dimensions=["a", "b", "c"])
    assert "more than 3" in refused("dimensions", False, small, dimensions={"a": "b", "c": "d"})
    assert "over 3" in refused("dimensions", False, small, dimensions="abcd")
    assert "more than 1 metrics" in refused("metrics", False, small, metrics=["x", "y"])


def test_native_refusals_and_deep_nesting():
    deep: object = "leaf"
    for _ in range(50_000):
        deep = {"a": deep}
    refused("dimensions", False, dimensions=deep)
    refused("dimensions", False, dimensions=["a", math.nan])
    refused("dimensions", False, dimensions=["a", 10**5000])
    refused("dimensions", False, dimensions=[object()])
    refused("pk", False, pk={"a": "b"})


# metrics


@pytest.mark.parametrize(
    "text, sums",
    [
        ("clicks", {"hits": 1, "clicks": 1}),
        ('"clicks"', {"hits": 1, "clicks": 1}),
        ('["clicks", "views", "clicks"]', {"hits": 1, "clicks": 2, "views": 1}),
        ('{"dollars": 200}', {"hits": 1, "dollars": 200}),
        ('{"dollars": -2.5, "a.b_c": 0}', {"hits": 1, "dollars": -2.5, "a.b_c": 0}),
        ('{"hits": 5, "x": 1}', {"hits": 5, "x": 1}),
        ('{"hits": 0}', {"hits": 0}),
        ('["hits", "hits"]', {"hits": 2}),
        ('{"_x": 9007199254740992, "y": -9007199254740992}',
         {"hits": 1, "_x": 2**53, "y": -(2**53)}),
        ("", {"hits": 1}),
        ("[]", {"hits": 1}),
        ("{}", {"hits": 1}),
    ],
)
def test_metric_forms(text, sums):
    assert query(metrics=text).sums == sums
    assert query(metric=text).sums == sums
    assert query(metrics=text).uniques == {}


def test_metric_values_keep_their_type_and_exact_value():
    text = '{"a": 200, "b": 0.1, "c": 1e-300, "d": 1.0, "e": 123456789.12345678}'
    sums = query(metrics=text).sums
    assert sums == {"hits": 1, "a": 200, "b": 0.1, "c": 1e-300, "d": 1.0, "e": 123456789.12345678}
    assert [type(sums[name]) for name in "abcd"] == [int, float, float, float]


def test_unique_metrics_count_distinct_ids():
    event = query(metrics='{"visitors": {"unique": "user-42"}, "n": {"unique": 42}, "dollars": 5}')
    assert event.uniques == {"visitors": "user-42", "n": "42"}
    assert event.sums == {"hits": 1, "dollars": 5}
    assert count(metrics={"f": {"unique": 1.5}}).uniques == {"f": "1.5"}


def test_metric_count_limit_counts_names_not_the_automatic_hits():
    names = [f"m{i}" for i in range(32)]
    assert len(count(metrics=names + names).sums) == 33
    assert "more than 32" in refused("metrics", False, metrics=names + ["one_more"])
    assert len(query(metrics="x" * 200).sums) == 2


@pytest.mark.parametrize(
    "text",
    [
        '{"x": true}', '{"x": "200"}', '{"x": null}', '{"x": [1]}', '{"x": NaN}',
        '{"x": Infinity}', '{"x": -Infinity}', '{"x": 1e400}', '{"x": 9223372036854775808}',
        '{"x": -9223372036854775809}', "1abc", "a-b", "a b", ".a", "dollars/hits", "é",
        "[1]", '[["a"]]', "[null]", '{"a b": 1}', '{"": 1}', "x" * 201,
        '{"hits": {"unique": "u"}}', '{"v": {"unique": ""}}', '{"v": {"unique": null}}',
        '{"v": {"unique": true}}', '{"v": {"unique": ["a"]}}', '{"v": {"unique": "u", "x": 1}}',
        '{"v": {}}', '{"v": {"unique": "\\udc00"}}', '{"x": ', "[" * 100_000,
    ],
)
def test_metrics_refused(text):
    assert refused("metrics", metrics=text)
    assert refused("metric", metric=text)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "1", 42, {"x": 2**64}])
def test_native_metric_values_refused(value):
    refused("metrics", False, metrics=value if value == 42 else {"x": value})


# at


@pytest.mark.parametrize(
    "value, at",
    [
        ("1699999990", NOW - 10),
        ("1699999990.25", NOW - 9.75),
        (" 1.69999999e9 ", 1.69999999e9),
        ("2023-11-14T22:13:00", NOW - 20),
        ("2023-11-14T22:13:00Z", NOW - 20),
        ("2023-11-14T23:13:00+01:00", NOW - 20),
        ("2023-11-14T22:13:00.5", NOW - 19.5),
        ("2023-11-14 17:13:20", NOW - 5 * 3600),  # old: lands in the 1h and 1d periods
        ('"2023-11-14T22:13:00Z"', NOW - 20),
        (str(int(NOW) + 300), NOW + 300),
        ("", NOW),
    ],
)
def test_at_forms(value, at):
    assert query(at=value).at == at


def test_at_native_numbers():
    assert count(at=1_699_999_990).at == NOW - 10
    assert count(at=NOW - 0.5).at == NOW - 0.5
    assert isinstance(count(at=int(NOW)).at, float)
    assert count(at=None).at == NOW


@pytest.mark.parametrize(
    "value",
    ["yesterday", "nan", "inf", "-inf", "1e400", "0", str(NOW + 301), "2020-01-01T00:00:00Z",
     "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "[1]", '{"a": 1}', "[", "1_000",
     "1700000000ms"],
)
def test_at_refused(value):
    refused("at", at=value)


@pytest.mark.parametrize("value", [True, math.nan, math.inf, 10**400, [NOW], NOW - 400 * 86400])
def test_native_at_refused(value):
    refused("at", False, at=value)


def test_at_refusal_gives_the_accepted_range():
    message = refused("at", at=str(NOW + 301))
    assert "2022-11-15T00:00:00Z" in message and "2023-11-14T22:18:20Z" in message
    assert "1668470400" in message and "1700000300" in message
    assert "accepted range" in refused("at", at="2020-01-01")


# names: one spelling, nothing invisible, a bounded budget

WIDE = "\U0001F600"  # 4 bytes of UTF-8, the most a character takes


def test_names_are_nfc_so_one_name_has_one_spelling():
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    assert query(dimensions=json.dumps({"city": nfd})).paths == (("city",), ("city", nfc))
    assert count(dimensions={nfd: nfd}, pk=[nfd]).paths == ((nfc,), (nfc, nfc))
    assert count(pk=nfd).pk == count(pk=nfc).pk == (nfc,)
    assert count(dimensions=[nfc, nfd]).paths == ((nfc,), (nfc, nfc))
    # the length counts the normalized name: 400 code points of NFD are 200 of NFC
    assert count(dimensions="e\u0301" * 200).paths == (("\u00e9" * 200,),)
    # and a name NFC makes longer (U+0958 is two code points in NFC) can pass the limit
    assert "over 200 characters" in refused("dimensions", False, dimensions="\u0958" * 150)


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\ufeff", "\U000e0041", "\U000e0001",
                                  "\u2066", "\u00ad", "\u200d", "\u061c"])
def test_format_and_bidi_controls_are_refused_like_control_characters(char):
    name = f"pay{char}pal"
    for param, value in [("pk", name), ("dimensions", name), ("dimensions", {name: "a"}),
                         ("dimensions", {"a": name}), ("category", [name])]:
        message = refused(param, False, **{param: value})
        assert f"U+{ord(char):04X}" in message and "format or bidi control" in message
    assert refused("dimensions", dimensions=json.dumps(["a", name]))


def test_forbidden_characters_are_categories_cc_cs_and_cf_exactly():
    """The one compiled class agrees with this Python's Unicode table, character by character."""
    roomy = Limits(name_length=sys.maxunicode, names_bytes=8 * sys.maxunicode)
    allowed = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Cf"):
            with pytest.raises(InvalidEvent):
                count(dimensions=["a" + char])
        elif category != "Cn":  # unassigned: the class may hold later Unicode's Cf
            allowed.append(char)
    allowed.remove("_")
    assert count(dimensions=["".join(allowed)], limits=roomy).paths


def test_names_budget_counts_utf8_bytes_of_pk_dimensions_and_metrics():
    pk = [WIDE * 200] * 5  # 4000 bytes
    assert count(pk=pk, dimensions="x" * 64, metrics=["m" * 32]).pk == tuple(pk)  # 4096
    assert "over 4096 bytes" in refused("metrics", False, pk=pk, dimensions="x" * 64,
                                        metrics=["m" * 33])
    assert "over 4096 bytes" in refused("dimensions", False, pk=pk, dimensions="x" * 97)
    assert refused("pk", False, pk=[WIDE * 200] * 6)
    assert refused("category", False, category=[WIDE * 200] * 6)
    # each name once, as the event holds it: a prefix does not repeat its parent's bytes
    tree = {"é" * 100: {"x" * 200: {"y" * 200: "z" * 200}}}  # 200 + 600 bytes
    assert len(count(pk=pk[:4], dimensions=tree).paths) == 4  # 3200 + 800
    # the automatic hits costs nothing; a hits the client names does
    assert count(pk=pk, dimensions="x" * 96).sums == {"hits": 1}
    assert refused("metrics", False, pk=pk, dimensions="x" * 92, metrics={"hits": 2, "a": 1})


def test_names_budget_is_configurable():
    small = Limits(names_bytes=10)
    assert count(dimensions={"abc": "def"}, metrics=["ghij"], limits=small)
    assert refused("metrics", False, small, dimensions={"abc": "def"}, metrics=["ghijk"])
    assert refused("dimensions", False, small, dimensions={"abc": "é" * 4})


def test_unique_ids_are_nfc_and_at_most_200_characters():
    assert count(metrics={"v": {"unique": WIDE * 200}}).uniques == {"v": WIDE * 200}
    assert count(metrics={"v": {"unique": "e\u0301" * 200}}).uniques == {"v": "\u00e9" * 200}
    assert count(metrics={"v": {"unique": "cafe\u0301"}}) == count(
        metrics={"v": {"unique": "caf\u00e9"}})
    assert "over 200 characters" in refused("metrics", False, metrics={"v": {"unique": "u" * 201}})
    assert refused("metrics", False, metrics={"v": {"unique": "u" * 2**20}})
    assert refused("metrics", False, metrics={"v": {"unique": 10**200}})
    small = Limits(unique_id_length=3)
    assert count(metrics={"v": {"unique": 123}}, limits=small).uniques == {"v": "123"}
    assert refused("metrics", False, small, metrics={"v": {"unique": 1234}})


def test_query_paths_read_other_which_events_cannot_write():
    assert parse_path("_other", "dimensions", LIMITS) == ("_other",)
    assert parse_path('["user", "_other"]', "dimensions", LIMITS) == ("user", "_other")
    assert parse_path(["_other"], "pk", LIMITS) == ("_other",)
    assert parse_path("cafe\u0301", "pk", LIMITS) == ("caf\u00e9",)
    for bad in ('["a", "_"]', "a\u202eb", "x" * 201):
        with pytest.raises(InvalidEvent):
            parse_path(bad, "dimensions", LIMITS)
    assert refused("dimensions", dimensions='["user", "_other"]')
    assert refused("pk", pk="_other")


# aliases, shapes, JSON


@pytest.mark.parametrize(
    "name, alias", [("pk", "category"), ("dimensions", "dimension"), ("metrics", "metric")]
)
def test_a_name_and_its_alias_together_are_refused(name, alias):
    assert alias in refused(alias, **{name: "a", alias: "b"})
    assert alias in refused(alias, **{name: "", alias: ""})


def test_an_event_must_be_an_object():
    for value in (["a"], "a", 1, None):
        with pytest.raises(InvalidEvent) as info:
            parse_event(value, periods=PERIODS, limits=LIMITS, now=NOW, encoded=False)
        assert info.value.param == "event"


def test_decode_value():
    assert decode_value("plain") == "plain"
    assert decode_value("") == ""
    assert decode_value(" [1]") == " [1]"
    assert decode_value('"[x]"') == "[x]"
    assert decode_value('[1, 2.5, "a"]') == [1, 2.5, "a"]
    assert decode_value('{"a": {"b": null}}') == {"a": {"b": None}}
    for bad in ("[", "{'a': 1}", "[NaN]", "[Infinity]", "[1e400]", '"unterminated', "[" * 10**5):
        with pytest.raises(InvalidEvent):
            decode_value(bad)


# batches


def test_batch_of_native_events():
    events = batch([{}, {"dimensions": ["a", "b"], "metrics": {"x": 0.1}, "at": NOW - 1}])
    assert events[0] == count()
    assert events[1].paths == (("a",), ("a", "b")) and events[1].sums == {"hits": 1, "x": 0.1}
    assert events[1].at == NOW - 1
    assert batch([{"dimensions": "[x]"}])[0].paths == (("[x]",),)  # native: not decoded


def test_batch_refusals_name_the_event_and_keep_the_param():
    items = [{}, {}, {"metrics": {"x": "1"}}, {"dimensions": {"a": None}}]
    with pytest.raises(InvalidEvent) as info:
        batch(items)
    assert info.value.param == "metrics" and info.value.message.startswith("event 2: ")
    with pytest.raises(InvalidEvent) as info:
        batch([{}, {}, {}, "not an event"])
    assert info.value.param == "event" and info.value.message.startswith("event 3: ")
    with pytest.raises(InvalidEvent) as info:
        batch([{}, {"category": "a", "pk": "b"}])
    assert info.value.param == "category" and "event 1: " in info.value.message


@pytest.mark.parametrize("items", [[], {}, "[{}]", None, [{}] * 1001])
def test_batch_shape_refused(items):
    with pytest.raises(InvalidEvent) as info:
        batch(items)
    assert info.value.param == "batch"


def test_batch_size_is_inclusive_and_configurable():
    assert len(batch([{}] * 1000)) == 1000
    with pytest.raises(InvalidEvent):
        batch([{}] * 3, Limits(batch=2))


# buffer format


def test_json_round_trip_is_exact_and_compact():
    event = query(
        pk='["Product", "123"]',
        dimensions='{"país": {"São Paulo": 1}}',
        metrics='{"a": 0.1, "b": 1e-300, "c": 9007199254740991, "d": -0.0, "e": 5e-324, '
        '"f": 4503599627370495.5, "u": {"unique": "ü-1"}}',
        at="1699999999.123456789",
    )
    text = event.to_json()
    assert " " not in text.replace("São Paulo", "")
    back = Event.from_json(text)
    assert back == event == Event.from_json(text.encode())
    assert [type(v) for v in back.sums.values()] == [int, float, float, int, float, float, float]
    assert math.copysign(1, back.sums["d"]) == -1
    assert isinstance(back.pk, tuple) and all(isinstance(p, tuple) for p in back.paths)


@pytest.mark.parametrize(
    "text", ["", "[", "[]", "{}", '{"pk": [1], "paths": [], "sums": {}, "uniques": {}, "at": 1}',
             '{"pk": [], "paths": [], "sums": {"x": "1"}, "uniques": {}, "at": 1}', "[" * 10**5]
)
def test_from_json_refuses_what_to_json_cannot_write(text):
    with pytest.raises(InvalidEvent):
        Event.from_json(text)


# properties

names = st.sampled_from(["", "_", "_other", "hits", "unique", "a", "b.c", "1x", "x" * 201])
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | names
    | st.floats(NOW - 10**6, NOW + 10**3)
)
jsonish = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=4) | names, kids,
                                                              max_size=5),
    max_leaves=15,
)
keys = st.sampled_from(["pk", "category", "dimensions", "dimension", "metrics", "metric", "at",
                        "other"])
texts = st.text(max_size=12) | jsonish.map(json.dumps) | st.sampled_from(["[", '{"a":', "[NaN]"])


def _invariants(event: Event, limits: Limits = LIMITS) -> None:
    assert len(set(event.paths)) == len(event.paths) <= limits.prefixes
    for path in event.paths:
        assert 0 < len(path) <= limits.path_depth and path[:-1] in (*event.paths, ())
    assert "hits" in event.sums and "hits" not in event.uniques
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in event.sums.values())
    assert math.isfinite(event.at) and Event.from_json(event.to_json()) == event


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(keys, jsonish, max_size=5))
def test_native_params_give_an_event_or_invalid_event(params):
    try:
        event = count(**params)
    except InvalidEvent as error:
        assert error.param in (*ALL_PARAMS, "event", "other")
    else:
        _invariants(event)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(keys, texts, max_size=5))
def test_encoded_params_give_an_event_or_invalid_event(params):
    try:
        event = query(**params)
    except InvalidEvent as error:
        assert error.param in (*ALL_PARAMS, "other")
    else:
        _invariants(event)


@settings(max_examples=20, deadline=None)
@given(jsonish | st.lists(st.dictionaries(keys, jsonish, max_size=4), max_size=4))
def test_any_batch_gives_events_or_invalid_event(items):
    try:
        events = batch(items)
    except InvalidEvent:
        pass
    else:
        assert len(events) == len(items)
        for event in events:
            _invariants(event)


plain = jsonish.filter(
    lambda value: not isinstance(value, (type(None), bool))
    and not (isinstance(value, float) and not math.isfinite(value))
)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(keys, plain, max_size=4))
def test_a_query_string_means_what_the_same_json_body_means(params):
    # Top-level null, booleans, NaN and Infinity differ by design: in a query string
    # `null`, `true`, `NaN` or `Infinity` is a plain name.
    try:
        texts = {name: json.dumps(value) for name, value in params.items()}
    except ValueError:  # an int too long to print
        return
    outcomes = []
    for parse in (lambda: count(**params), lambda: query(**texts)):
        try:
            outcomes.append(parse())
        except InvalidEvent as error:
            outcomes.append(error.param)
    assert outcomes[0] == outcomes[1]


ALL_PARAMS = ("pk", "category", "dimensions", "dimension", "metrics", "metric", "at")
