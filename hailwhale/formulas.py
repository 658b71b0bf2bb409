"""Formulas: metrics that are arithmetic over other metrics, like `dollars/hits`.

A formula is parsed once into a small tree of tuples, and the tree is compiled
once into nested closures that evaluate it over whole columns (one value per
bucket), so a graph costs one pass per node of the formula over its buckets:
time linear in the formula's length per bucket, whatever names repeat. It is
never `eval`-ed. Grammar, with the usual precedence, left-associative:

    expression := term (('+' | '-') term)*
    term       := factor (('*' | '/') factor)*
    factor     := ('+' | '-')* (number | name | '(' expression ')')

Evaluation is in floats and always returns floats: a missing name counts 0,
division by zero gives 0, and a result that is not finite (overflow, or an inf
or NaN value) gives 0, as does -0.0. Rounding is float rounding: `1/49*49` is
0.9999999999999999. With `empty_null`, a value that a division by zero made
(`dollars/hits` over a bucket without hits, and anything computed from it) is
None instead: no value rather than a 0 that reads as one. So is a NaN left by
an overflow (`1e308*10-1e308*10`), which has no value either.

Parsing is linear in the length of the text. Parentheses nest at most
`max_depth` deep and a run of signs folds into one node, so neither the parser
nor the evaluator recurses deeper than a few frames per level of parentheses.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NoReturn

from hailwhale.exceptions import InvalidQuery

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op>[-+*/()])|(?P<bad>.))",
    re.DOTALL,
)

# A caller's max_depth above this could reach Python's recursion limit.
_DEPTH_LIMIT = 100

# A compiled node's value: a float (a constant part) or a column of floats.
_Value = float | list[float]
_Compiled = Callable[[Mapping[str, Any]], _Value]


def is_metric_name(text: str) -> bool:
    """Whether `text` is a plain metric name rather than a formula."""
    return NAME.fullmatch(text) is not None


@dataclass(frozen=True)
class Formula:
    """A parsed metric: a bare name or arithmetic over names and numbers."""

    text: str
    names: tuple[str, ...]
    _tree: tuple[Any, ...] = field(repr=False, compare=False)
    _compiled: _Compiled = field(init=False, repr=False, compare=False)
    _compiled_nan: _Compiled = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", _compile(self._tree, _OPERATORS))
        # Division by zero gives NaN, which every later operation carries to the result.
        object.__setattr__(self, "_compiled_nan", _compile(self._tree, _NAN_OPERATORS))

    @property
    def is_name(self) -> bool:
        """Whether this is a bare metric name, whose values are the stored ones as they are."""
        return len(self.names) == 1 and self.text == self.names[0]

    def evaluate(self, values: Mapping[str, float], empty_null: bool = False) -> float | None:
        """The formula's value for `values`, name -> number; missing names count 0.

        With `empty_null`, None where a division by zero leaves no value (else 0).
        """
        compiled = self._compiled_nan if empty_null else self._compiled
        result = compiled({name: float(values.get(name, 0)) for name in self.names})
        return _finished(result, empty_null)  # type: ignore[arg-type]

    def evaluate_columns(
        self, columns: Mapping[str, Sequence[float]], size: int, empty_null: bool = False,
    ) -> list[float | None]:
        """The formula per bucket: `columns` holds each name's `size` values, in bucket order.

        The same numbers as `evaluate` bucket by bucket, computed a node at a time over
        the whole column (missing names count 0 in every bucket).
        """
        floats = {
            name: list(map(float, columns[name])) if name in columns else [0.0] * size
            for name in self.names
        }
        result = (self._compiled_nan if empty_null else self._compiled)(floats)
        if isinstance(result, float):  # no name in it: a constant
            result = [result] * size
        return [_finished(value, empty_null) for value in result]


def _finished(value: float, empty_null: bool) -> float | None:
    """A result as answered: inf and -0.0 (from `-x` with x missing) give 0, and so
    does NaN, unless `empty_null` asks for None where a value is missing."""
    if value != value:
        return None if empty_null else 0.0
    return value if value and math.isfinite(value) else 0.0


def parse_metric(
    text: str, *, max_length: int = 200, max_depth: int = 16, param: str = "metrics"
) -> Formula:
    """Parse a metric name or formula; InvalidQuery(param, ...) says what is wrong."""
    if not 0 <= max_depth <= _DEPTH_LIMIT:
        raise ValueError(f"max_depth must be 0 to {_DEPTH_LIMIT}, not {max_depth}")
    text = text.strip()
    if not text:
        raise InvalidQuery(param, "metric is empty")
    if len(text) > max_length:
        raise InvalidQuery(
            param, f"metric is {len(text)} characters long, over the limit of {max_length}"
        )
    parser = _Parser(text, max_depth, param)
    tree = parser.parse()
    return Formula(text, tuple(parser.names), tree)


def _tokenize(text: str, param: str) -> list[tuple[str, str, int]]:
    """Tokens of `text` as (kind, text, 1-based position)."""
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match is not None and match.lastgroup is not None  # `bad` takes any
        kind = match.lastgroup
        if kind == "bad":
            raise InvalidQuery(
                param,
                f"unexpected {match.group(kind)!r} at position {match.start(kind) + 1}"
                f" in {text!r}: a formula has numbers, metric names, + - * / and ()",
            )
        tokens.append((kind, match.group(kind), match.start(kind) + 1))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens of one formula."""

    def __init__(self, text: str, max_depth: int, param: str):
        self.text = text
        self.max_depth = max_depth
        self.param = param
        self.tokens = _tokenize(text, param)
        self.index = 0
        self.names: dict[str, None] = {}  # an ordered set
        self.open: list[int] = []  # positions of the '(' not yet closed

    def parse(self) -> tuple[Any, ...]:
        tree = self.expression()
        if self.index < len(self.tokens):
            self.unexpected("an operator")
        return tree

    def fail(self, message: str) -> NoReturn:
        raise InvalidQuery(self.param, f"{message} in {self.text!r}")

    def unexpected(self, expected: str) -> NoReturn:
        """Fail on the token at `self.index`, or on the end of the text."""
        if self.index == len(self.tokens):
            if self.open:
                self.fail(f"'(' at position {self.open[-1]} is never closed")
            self.fail(f"formula ends too early: expected {expected}")
        _, token, pos = self.tokens[self.index]
        if token == ")" and not self.open:
            self.fail(f"')' at position {pos} has no matching '('")
        self.fail(f"unexpected {token!r} at position {pos}: expected {expected}")

    def take_op(self, ops: str) -> str | None:
        if self.index < len(self.tokens):
            kind, token, _ = self.tokens[self.index]
            if kind == "op" and token in ops:
                self.index += 1
                return token
        return None

    def expression(self) -> tuple[Any, ...]:
        return self.chain("+-", self.term)

    def term(self) -> tuple[Any, ...]:
        return self.chain("*/", self.factor)

    def chain(self, ops: str, operand: Any) -> tuple[Any, ...]:
        # Runs of one precedence stay flat: `a+a+...+a` is one node, not a deep tree.
        first = operand()
        rest = []
        while (op := self.take_op(ops)) is not None:
            rest.append((op, operand()))
        return ("ops", first, tuple(rest)) if rest else first

    def factor(self) -> tuple[Any, ...]:
        negative = False
        while (sign := self.take_op("+-")) is not None:
            negative ^= sign == "-"
        if self.index == len(self.tokens) or self.tokens[self.index][1] in "*/)":
            self.unexpected("a number, a metric name or '('")
        kind, token, pos = self.tokens[self.index]  # a number, a name or "("
        self.index += 1
        if kind == "number":
            number = float(token)
            if not math.isfinite(number):
                self.fail(f"number {token} at position {pos} is too large")
            node: tuple[Any, ...] = ("number", number)
        elif kind == "name":
            self.names[token] = None
            node = ("name", token)
        else:
            if len(self.open) == self.max_depth:
                self.fail(f"'(' at position {pos} nests over {self.max_depth} deep")
            self.open.append(pos)
            node = self.expression()
            if self.take_op(")") is None:
                self.unexpected("an operator or ')'")
            self.open.pop()
        return ("negative", node) if negative else node


def _compile(node: tuple[Any, ...],
             operators: Mapping[str, Callable[[float, float], float]]) -> _Compiled:
    """A function of {name: value or column} computing `node` with `operators`.

    Recursion follows the parentheses (at most _DEPTH_LIMIT deep, a few frames each):
    a flat run like `a+a+...+a` is one node whose operands are applied in a loop.
    """
    kind = node[0]
    if kind == "number":
        number = node[1]
        return lambda values: number
    if kind == "name":
        name = node[1]
        return lambda values: values[name]
    if kind == "negative":
        inner = _compile(node[1], operators)
        return lambda values: _apply1(operator.neg, inner(values))
    first = _compile(node[1], operators)
    rest = [(operators[op], _compile(operand, operators)) for op, operand in node[2]]

    def chain(values: Mapping[str, Any]) -> _Value:
        result = first(values)
        for function, operand in rest:
            result = _apply2(function, result, operand(values))
        return result

    return chain


def _apply1(function: Callable[[float], float], value: _Value) -> _Value:
    if isinstance(value, float):
        return function(value)
    return list(map(function, value))


def _apply2(function: Callable[[float, float], float], left: _Value, right: _Value) -> _Value:
    """`function` bucket by bucket; a constant side stands for every bucket."""
    if isinstance(left, float):
        if isinstance(right, float):
            return function(left, right)
        return list(map(function, repeat(left, len(right)), right))
    if isinstance(right, float):
        return list(map(function, left, repeat(right, len(left))))
    return list(map(function, left, right))


def _divide(numerator: float, denominator: float) -> float:
    """`numerator / denominator`, or 0 when the denominator is 0."""
    return numerator / denominator if denominator != 0 else 0.0


def _divide_or_nan(numerator: float, denominator: float) -> float:
    """`numerator / denominator`, or NaN (no value) when the denominator is 0."""
    return numerator / denominator if denominator != 0 else math.nan


_OPERATORS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
}
_NAN_OPERATORS = {**_OPERATORS, "/": _divide_or_nan}
