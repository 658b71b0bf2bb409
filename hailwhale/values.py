"""Names, paths, times and values as clients spell them: strict JSON and query strings.

Pure. Event parsing (hailwhale/events.py) and queries (whale/queries.py) both
read names and paths through these checks; bad input raises InvalidEvent naming
the parameter as the client spelled it.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import datetime, timezone
from typing import TypeGuard

import orjson

from hailwhale.config import Limits
from hailwhale.exceptions import InvalidEvent
from hailwhale.keys import OVERALL, Path

OTHER = "_other"  # where the cardinality guard counts what is past a limit
# Unicode categories Cc (control characters), Cs (surrogates) and Cf (invisible format
# and bidi controls: U+200B, U+202E, U+FEFF, tag characters...), as one class: a
# category lookup per character costs several times the regex on every name. The Cf
# ranges are Unicode 15.1's (a superset of the 13 and 14 of Python 3.10 and 3.11);
# tests/test_events.py checks the class against the running Python's own table.
_FORBIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff"  # Cc, Cs
    "\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"  # Cf
)
_ASCII_CONTROL = re.compile("[\x00-\x1f\x7f]")  # the same class, on ASCII: 3x as fast
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_KINDS = {"Cc": "a control character", "Cs": "a lone surrogate",
          "Cf": "an invisible format or bidi control character"}


# A run of 19 digits: every digit spelled 0, then one search (25x a regex's speed on a
# batch body, which the regex scanned for a sixth of Hail's time per event).
_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19


def loads(text: str | bytes, param: str) -> object:
    """Strict JSON: no NaN or Infinity, no overflow to infinity, no crash on deep nesting.

    orjson refuses all of these itself (and lone surrogates). It reads an integer
    past 64 bits as a float, though, which would silently change a name spelled by
    a long number: text with a 19-digit run goes to the standard library instead,
    which keeps integers exact (the hooks refuse what orjson refuses).
    """
    if _LONG_DIGITS in (text if isinstance(text, bytes) else text.encode()).translate(_AS_ZEROS):
        try:
            return json.loads(text, parse_float=_finite_float, parse_constant=_finite_float)
        except RecursionError:
            raise InvalidEvent(param, "JSON nested too deeply") from None
        except ValueError as error:
            raise InvalidEvent(param, f"malformed JSON: {error}") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        if str(error).startswith("depth limit exceeded"):
            raise InvalidEvent(param, "JSON nested too deeply") from None
        raise InvalidEvent(param, f"malformed JSON: {error}") from None


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite double")
    return value


def decode_value(text: str, param: str = "value") -> object:
    """A query-string value: JSON if it starts with `[`, `{` or `"`, else the plain string."""
    if not text.startswith(("[", "{", '"')):
        return text
    try:
        return loads(text, param)
    except InvalidEvent as error:
        hint = 'a value starting with [, { or " is read as JSON (send a plain name as "...")'
        raise InvalidEvent(param, f"{error.message}; {hint}") from None


def parse_path(value: object, param: str, limits: Limits) -> Path:
    """The path a query reads (pk or parent dimension): a name or a JSON list of names.

    `_other`, where the cardinality guard counts what is past a limit, is readable
    here like any name; only events may not write it.
    """
    if isinstance(value, str):
        value = decode_value(value, param)
    return to_path(param, None if is_empty(value) else value, limits, query=True)



def to_path(param: str, value: object, limits: Limits, query: bool = False) -> Path:
    if value is None or value in (OVERALL, [OVERALL], (OVERALL,)):
        return ()
    if isinstance(value, dict):
        raise InvalidEvent(param, "a path is a name or a JSON list of names, not a JSON object")
    items = value if isinstance(value, (list, tuple)) else [value]
    if len(items) > limits.path_depth:
        raise InvalidEvent(param, f"a path has at most {limits.path_depth} names, not {len(items)}")
    return tuple(segment(item, param, limits, query) for item in items)


def segment(value: object, param: str, limits: Limits, query: bool = False) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        raise InvalidEvent(param, "null is not a name; use a string, or leave that branch out")
    elif (text := spell_number(value)) is None:
        raise InvalidEvent(param, f"expected a name, found {show(value)} (a list is one path: "
                                  "it holds names only)")
    text = check_name(text, param, limits, "name")
    if text == OVERALL:
        raise InvalidEvent(param, "_ means overall on its own; it cannot be part of a path")
    if text == OTHER and not query:
        raise InvalidEvent(param, "_other is reserved for children past the limit; rename it")
    return text


def check_name(text: str, param: str, limits: Limits, what: str) -> str:
    """`text` in NFC (so "café" is one name however it was typed), if it is a valid name."""
    if not text:
        raise InvalidEvent(param, f"empty {what}s are not allowed")
    bad = (_ASCII_CONTROL if text.isascii() else _FORBIDDEN).search(text)
    if bad is not None:
        char = bad.group()
        kind = _KINDS.get(unicodedata.category(char), "a control character")
        raise InvalidEvent(param, f"{what} {show(text)} holds U+{ord(char):04X}, {kind}; "
                                  "remove it")
    text = unicodedata.normalize("NFC", text)
    if len(text) > limits.name_length:
        raise InvalidEvent(param, f"{what} {show(text)} is over {limits.name_length} characters")
    return text


def is_number(value: object) -> TypeGuard[int | float]:
    """True for an int or a finite float, not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def spell_number(value: object) -> str | None:
    """The JSON spelling of an int or finite float; None for others and absurd ints."""
    if not is_number(value) or (isinstance(value, int) and value.bit_length() > 4096):
        return None
    return int.__repr__(value) if isinstance(value, int) else float.__repr__(value)


def is_empty(value: object) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and not value)


def show(value: object) -> str:
    """A short description of `value` for an error message, safe for any input."""
    if isinstance(value, str):
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    if isinstance(value, (dict, list, tuple)):
        return "a JSON object" if isinstance(value, dict) else "a JSON list"
    if isinstance(value, int) and value.bit_length() >= 200:
        return "a very large number"
    if value is None or isinstance(value, bool):
        return orjson.dumps(value).decode()
    return repr(value)[:60]


def parse_time(text: str) -> float:
    """Epoch seconds of a numeric string or an ISO 8601 time (UTC if no zone)."""
    if _NUMBER.fullmatch(text):
        return float(text)
    # Python 3.10 reads no `Z`: spelled as the offset it means
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def iso(t: float) -> str:
    """Time `t` in ISO 8601, to the second, in UTC (`Z`)."""
    return datetime.fromtimestamp(math.floor(t), timezone.utc).isoformat().replace("+00:00", "Z")
