"""Formulas: parsing metric expressions and evaluating them per bucket.

`evaluate` takes one value per name (a window total); `evaluate_columns` takes a
column per name (one value per bucket) and gives, bucket by bucket, the numbers
`evaluate` gives, a node at a time over the whole column.
"""

import math
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hailwhale.exceptions import InvalidQuery
from hailwhale.formulas import Formula, is_metric_name, parse_metric


def value(text: str, **values: float) -> float:
    return parse_metric(text).evaluate(values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dollars/hits", 2.5),
        ("clicks/pageviews*100", 75.0),
        ("(a+b)/c", 4.0),
        ("-x", -5.0),
        ("a.b/2", 3.5),
    ],
)
def test_design_examples(text, expected):
    values = {"dollars": 10, "hits": 4, "clicks": 3, "pageviews": 4}
    values |= {"a": 10, "b": 2, "c": 3, "x": 5, "a.b": 7}
    assert parse_metric(text).evaluate(values) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a+b*c", 2 + 3 * 4),
        ("a*b+c", 2 * 3 + 4),
        ("a-b*c", 2 - 3 * 4),
        ("c/a+b", 4 / 2 + 3),
        ("a+b*c-a/a", 2 + 3 * 4 - 1),
        ("a-b-c", (2 - 3) - 4),
        ("c/a/a", (4 / 2) / 2),
        ("c/a*b", (4 / 2) * 3),
        ("a-b+c", (2 - 3) + 4),
        ("(a+b)*c", (2 + 3) * 4),
        ("a-(b-c)", 2 - (3 - 4)),
        ("c/(a*a)", 4 / (2 * 2)),
        ("((a))", 2),
        ("2*(3+(4-1))", 12),
        ("-a*b", -6),
        ("-(a+b)", -5),
        ("a*-b", -6),
        ("a--b", 5),
        ("a-+b", -1),
        ("+a", 2),
        ("--a", 2),
        ("---a", -2),
        ("-a-b", -5),
        (" a  *\tb ", 6),
    ],
)
def test_precedence_associativity_and_signs(text, expected):
    assert value(text, a=2, b=3, c=4) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("2E2", 200.0),
        ("1.5e-1", 0.15),
        ("25e+1", 250.0),
        ("007", 7.0),
    ],
)
def test_numbers(text, expected):
    formula = parse_metric(text)
    assert formula.names == ()
    assert formula.evaluate({}) == expected


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("a/b", {"a": 5, "b": 0}),
        ("a/0", {"a": 5}),
        ("0/0", {}),
        ("a/(b-b)", {"a": 5, "b": 3}),
        ("a/b*100", {"a": 5, "b": 0}),
        ("-a/b", {"a": 5, "b": 0}),
        ("a/missing", {"a": 5}),
    ],
)
def test_division_by_zero_is_zero(text, values):
    assert parse_metric(text).evaluate(values) == 0.0


def test_division_by_zero_inside_a_larger_expression():
    assert value("1 + a/b", a=5, b=0) == 1.0
    assert value("c + a/b*100 - 1", a=5, b=0, c=10) == 9.0
    assert value("(a/b + c) / (b/b + 2)", a=1, b=0, c=6) == 3.0


def test_missing_names_count_zero():
    assert value("a+b", a=3) == 3.0
    assert value("clicks/pageviews*100") == 0.0
    assert value("x") == 0.0


def test_results_are_floats_and_never_negative_zero():
    result = value("a", a=3)
    assert result == 3.0 and isinstance(result, float)
    assert isinstance(value("a+b", a=1, b=2), float)
    assert math.copysign(1, value("-x")) == 1
    assert math.copysign(1, value("0*-1")) == 1


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1e308*10", {}),
        ("a*a", {"a": 1e200}),
        ("a-a", {"a": math.inf}),
        ("a+1", {"a": math.nan}),
        ("-a", {"a": -math.inf}),
    ],
)
def test_results_that_are_not_finite_are_zero(text, values):
    assert parse_metric(text).evaluate(values) == 0.0


def test_a_bare_name_is_a_formula():
    formula = parse_metric("pageviews")
    assert isinstance(formula, Formula)
    assert formula.text == "pageviews"
    assert formula.names == ("pageviews",)
    assert formula.evaluate({"pageviews": 42, "other": 1}) == 42
    assert formula.is_name
    assert not any(parse_metric(text).is_name for text in ("5", "a+b", "(a)", "-a", "a*1"))


def test_columns_bucket_by_bucket():
    formula = parse_metric("dollars/hits*100 - -refunds")
    columns = {"dollars": [10, 0, 5, 3], "hits": [4, 0, 0, 3], "refunds": [1, 2, 3, 0.5]}
    assert formula.evaluate_columns(columns, 4) == [251.0, 2.0, 3.0, 100.5]
    assert formula.evaluate_columns({}, 3) == [0.0, 0.0, 0.0]  # missing names count 0
    assert parse_metric("hits").evaluate_columns({"hits": [1, 2]}, 2) == [1.0, 2.0]


@pytest.mark.parametrize(("text", "expected"), [("5", 5.0), ("2*3-1", 5.0), ("1/0", 0.0),
                                                ("-0", 0.0), ("1e308*10", 0.0)])
def test_a_formula_without_names_is_the_same_in_every_bucket(text, expected):
    assert parse_metric(text).names == ()
    assert parse_metric(text).evaluate_columns({}, 3) == [expected] * 3
    assert parse_metric(text).evaluate_columns({}, 0) == []


def test_columns_that_are_not_finite_or_negative_zero_are_zero():
    columns = {"a": [1e200, math.inf, math.nan, 0, 2], "b": [1e200, 1, 1, 1, 0]}
    result = parse_metric("-(a*b)").evaluate_columns(columns, 5)
    assert result == [0.0] * 5
    assert [math.copysign(1, value) for value in result] == [1] * 5
    assert parse_metric("a/b").evaluate_columns(columns, 5) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_a_long_formula_over_many_buckets():
    # The 194-character `hits+hits+...` that once pinned a server worker.
    text = "+".join(["hits"] * 39)
    assert len(text) == 194
    formula = parse_metric(text)
    buckets = list(range(720))
    assert formula.evaluate_columns({"hits": buckets}, 720) == [39.0 * b for b in buckets]
    assert formula.evaluate({"hits": 3}) == 3 * 39


def test_names_first_seen_order_without_duplicates():
    assert parse_metric("b/a + a*b - c.d").names == ("b", "a", "c.d")
    assert parse_metric("(x)/(x)").names == ("x",)
    assert parse_metric("1 + 2").names == ()


def test_text_is_stripped():
    assert parse_metric("  a + b \n").text == "a + b"
    assert parse_metric("a + b") == parse_metric(" a + b")


@pytest.mark.parametrize("text", ["a", "_a", "a.b", "A_1.x2", "a.", "hits"])
def test_is_metric_name(text):
    assert is_metric_name(text)


@pytest.mark.parametrize("text", ["", "1a", ".a", "a/b", "a b", "-a", "(a)", "a$", "é"])
def test_is_not_metric_name(text):
    assert not is_metric_name(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("  \t", "empty"),
        ("a +", "ends too early"),
        ("a/", "ends too early"),
        ("-", "ends too early"),
        ("(a", "'(' at position 1 is never closed"),
        ("((a)", "'(' at position 1 is never closed"),
        ("a*(b+(c", "'(' at position 6 is never closed"),
        ("(a+", "'(' at position 1 is never closed"),
        ("a)", "')' at position 2 has no matching '('"),
        ("(a))", "')' at position 4 has no matching '('"),
        (")", "')' at position 1 has no matching '('"),
        ("()", "unexpected ')' at position 2"),
        ("a b", "unexpected 'b' at position 3: expected an operator"),
        ("2a", "unexpected 'a' at position 2"),
        ("a (b)", "unexpected '(' at position 3"),
        ("(a b)", "unexpected 'b' at position 4: expected an operator or ')'"),
        ("1.2.3", "unexpected '.3' at position 4"),
        ("a ** b", "unexpected '*' at position 4"),
        ("*a", "unexpected '*' at position 1"),
        ("a $ b", "unexpected '$' at position 3"),
        ("a^2", "unexpected '^' at position 2"),
        ("a,b", "unexpected ',' at position 2"),
        ("f(a)", "unexpected '(' at position 2"),
        ("1e999", "too large"),
        ("a/.", "unexpected '.' at position 3"),
    ],
)
def test_errors_say_what_is_wrong(text, message):
    with pytest.raises(InvalidQuery) as caught:
        parse_metric(text)
    assert caught.value.param == "metrics"
    assert message in caught.value.message


def test_errors_name_the_param():
    with pytest.raises(InvalidQuery) as caught:
        parse_metric("a+", param="metric")
    assert caught.value.param == "metric"


def test_length_limit():
    assert parse_metric("a" * 200).names == ("a" * 200,)
    with pytest.raises(InvalidQuery, match="201 characters long, over the limit of 200"):
        parse_metric("a" * 201)
    with pytest.raises(InvalidQuery, match="limit of 10"):
        parse_metric("a+b+c+d+e+f", max_length=10)
    with pytest.raises(InvalidQuery, match="limit"):
        parse_metric("a" + "+a" * 1000)


def test_long_flat_formulas_are_linear_and_never_recurse_deeply():
    formula = parse_metric("a" + "+a" * 5_000, max_length=20_000)
    assert formula.evaluate({"a": 1}) == 5_001
    assert parse_metric("-" * 10_001 + "a", max_length=20_000).evaluate({"a": 1}) == -1
    formula = parse_metric("1" + "*a/a" * 3_000, max_length=20_000)
    assert formula.evaluate({"a": 3}) == pytest.approx(1)


def test_nesting_limit():
    assert value("(" * 16 + "a" + ")" * 16, a=4) == 4
    with pytest.raises(InvalidQuery, match="'\\(' at position 17 nests over 16 deep"):
        parse_metric("(" * 17 + "a" + ")" * 17)
    with pytest.raises(InvalidQuery, match="nests over 2 deep"):
        parse_metric("a*(b+(c-(d)))", max_depth=2)
    with pytest.raises(InvalidQuery, match="nests over 0 deep"):
        parse_metric("(a)", max_depth=0)
    with pytest.raises(InvalidQuery, match="never closed"):
        parse_metric("(((((((((")
    for text in ["(" * 10_000, "(-" * 5_000, "(" * 10_000 + "a" + ")" * 10_000]:
        with pytest.raises(InvalidQuery, match="nests over 16 deep"):
            parse_metric(text, max_length=30_000)


def test_a_max_depth_that_risks_recursion_errors_is_a_programming_error():
    text = "(" * 100 + "a" + ")" * 100
    assert parse_metric(text, max_length=201, max_depth=100).names == ("a",)
    with pytest.raises(ValueError):
        parse_metric("a", max_depth=101)


# Random well-formed expressions, checked against exact arithmetic.

NAMES = ["a", "b", "c.d", "x_1"]
# Dyadic literals only, so a division-free float subexpression is exact.
NUMBERS = ["0", "1", "2", "3", "7", "10", "0.5", ".25", "1e2", "2.5e-1", "3."]
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}

leaves = st.one_of(
    st.sampled_from(NUMBERS).map(lambda text: ("number", text)),
    st.sampled_from(NAMES).map(lambda name: ("name", name)),
)


def wrap(children):
    return st.one_of(
        st.tuples(st.sampled_from(["-", "+", "()"]), children),
        st.tuples(st.sampled_from("+-*"), children, children),
    )


# A denominator has no division of its own, so it is computed exactly in
# floats and is zero exactly when the Fraction result is: otherwise 1/49*49-1,
# about -1e-16 in floats, would divide where the exact reference gives 0.
denominators = st.recursive(leaves, wrap, max_leaves=6)
expressions = st.recursive(
    leaves,
    lambda children: wrap(children) | st.tuples(st.just("/"), children, denominators),
    max_leaves=12,
)


def render(tree, space: str) -> tuple[str, int]:
    """Text of `tree` with the parentheses precedence needs, and its precedence."""
    if tree[0] in ("number", "name"):
        return tree[1], 4
    if tree[0] == "()":
        return "(" + render(tree[1], space)[0] + ")", 4
    if len(tree) == 2:
        text, precedence = render(tree[1], space)
        return tree[0] + (text if precedence >= 3 else f"({text})"), 3
    op, left, right = tree
    left_text, left_precedence = render(left, space)
    right_text, right_precedence = render(right, space)
    if left_precedence < PRECEDENCE[op]:
        left_text = f"({left_text})"
    if right_precedence <= PRECEDENCE[op]:  # left-associative: a-(b-c) keeps its ()
        right_text = f"({right_text})"
    return f"{left_text}{space}{op}{space}{right_text}", PRECEDENCE[op]


def exact(tree, values) -> tuple[Fraction, Fraction]:
    """Exact value of `tree`, and the same over absolute values (bounds float error)."""
    kind = tree[0]
    if kind == "number":
        number = Fraction(tree[1])
        return number, abs(number)
    if kind == "name":
        number = Fraction(values.get(tree[1], 0))
        return number, abs(number)
    if len(tree) == 2:
        number, bound = exact(tree[1], values)
        return (-number if kind == "-" else number), bound
    (left, left_bound), (right, right_bound) = exact(tree[1], values), exact(tree[2], values)
    if kind == "+":
        return left + right, left_bound + right_bound
    if kind == "-":
        return left - right, left_bound + right_bound
    if kind == "*":
        return left * right, left_bound * right_bound
    if right == 0:
        return Fraction(0), Fraction(0)
    return left / right, left_bound / abs(right)


def names_in(tree) -> list[str]:
    if tree[0] == "name":
        return [tree[1]]
    if tree[0] == "number":
        return []
    return [name for child in tree[1:] for name in names_in(child)]


@given(
    expressions,
    st.dictionaries(st.sampled_from(NAMES), st.integers(-9, 9)),
    st.sampled_from(["", " "]),
)
def test_evaluation_matches_exact_arithmetic(tree, values, space):
    text, _ = render(tree, space)
    formula = parse_metric(text, max_length=10_000)
    expected, bound = exact(tree, values)
    result = formula.evaluate(values)
    assert isinstance(result, float)
    assert abs(Fraction(result) - expected) <= Fraction(1, 10**12) * (1 + bound)
    if "/" not in text:
        assert result == expected
    assert formula.names == tuple(dict.fromkeys(names_in(tree)))


@given(
    expressions,
    st.lists(st.dictionaries(st.sampled_from(NAMES), st.integers(-9, 9) | st.sampled_from(
        [0.5, -0.0, 1e300, -1e300, math.inf, math.nan])), min_size=1, max_size=5),
    st.sampled_from(["", " "]),
)
@example(("number", "5"), [{}, {"a": 1}], "")  # no names: the same value in every bucket
@example(("-", ("name", "a")), [{"a": 0}, {}], "")  # never -0.0
@example(("/", ("name", "a"), ("name", "b")), [{"a": 1, "b": 0}, {"a": 1e300, "b": 1e-300}], "")
def test_columns_are_evaluate_bucket_by_bucket(tree, buckets, space):
    formula = parse_metric(render(tree, space)[0], max_length=10_000)
    columns = {name: [bucket.get(name, 0) for bucket in buckets] for name in NAMES}
    expected = [formula.evaluate(bucket) for bucket in buckets]
    result = formula.evaluate_columns(columns, len(buckets))
    assert result == expected
    assert all(math.copysign(1, v) == 1 for v in result if v == 0)
    missing = {name: column for name, column in columns.items() if name != "a"}
    assert formula.evaluate_columns(missing, len(buckets)) == [
        formula.evaluate({**bucket, "a": 0}) for bucket in buckets]


# ASCII and a few look-alikes (Arabic and fullwidth digits, Unicode spaces), not
# all of Unicode: hypothesis takes seconds to build its table of that.
ANY_CHARACTER = [chr(code) for code in range(128)] + list("é٣１\u2003\u00a0İß\U0001f40b")
any_text = st.text(alphabet=st.sampled_from(ANY_CHARACTER), max_size=40)
formula_text = st.text(alphabet="ab.19e()+-*/ _", max_size=40)


@given(any_text | formula_text, st.integers(0, 4))
def test_any_text_parses_or_raises_invalid_query(text, max_depth):
    try:
        formula = parse_metric(text, max_length=30, max_depth=max_depth)
    except InvalidQuery as error:
        assert error.param == "metrics" and error.message
        return
    result = formula.evaluate({"a": 3, "b": 0, "a.b": -1.5, "e": 1e300})
    assert isinstance(result, float) and math.isfinite(result)
