"""orjson, simplejson and json on HailWhale's three JSON hot paths; picks the library.

    .venv/bin/python bench/json_libs.py [--repeat 5]

1. `/plotpoints` answer: a depth-1 graph of 51 series x 720 points (bench/query.py's
   workload) to compact UTF-8 bytes.
2. `/count` parsing: a JSON body of one event, and of a 1000-event batch, parsed
   strictly (json and simplejson need the parse_float/parse_constant hooks that
   refuse NaN, Infinity and overflow; orjson refuses them itself).
3. The buffer's wire format: 5000 events (`Event`'s fields) written one by one, as
   `/count` pushes them, and read back one by one, as the flusher claims a batch.

Each figure is the best of `--repeat` timings (microseconds per operation); every
library must give the same value (checked) or the figure is not printed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import orjson
import simplejson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import event_params, workload  # noqa: E402

LIBS = ("orjson", "simplejson", "json")
NOW = 1_700_000_000.0


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite double")
    return value


DUMPS: dict[str, Callable[[object], bytes]] = {
    "orjson": orjson.dumps,
    "simplejson": lambda data: simplejson.dumps(
        data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(),
    "json": lambda data: json.dumps(
        data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(),
}
STRICT_LOADS: dict[str, Callable[[bytes], object]] = {
    "orjson": orjson.loads,
    "simplejson": lambda text: simplejson.loads(text, parse_float=_finite,
                                                parse_constant=_finite),
    "json": lambda text: json.loads(text, parse_float=_finite, parse_constant=_finite),
}
LOADS: dict[str, Callable[[bytes], object]] = {
    "orjson": orjson.loads, "simplejson": simplejson.loads, "json": json.loads,
}


def plotpoints_answer() -> dict:
    """51 series x 720 points of `[epoch_ms, dollars]`, as `/plotpoints` answers them."""
    rng = random.Random(3)
    start = int(NOW // 15 * 15 - 720 * 15) * 1000
    keys = ['["shop"]'] + [f'["shop","item{i}"]' for i in range(50)]
    return {key: {"dollars": [[start + 15_000 * i, rng.randint(0, 40_000) / 4]
                              for i in range(720)]} for key in keys}


def scenarios() -> dict[str, tuple[Callable[[str], Callable[[], object]], int]]:
    """name -> (library -> the operation, operations per call)."""
    answer = plotpoints_answer()
    rng = random.Random(1)
    one = json.dumps(event_params(rng, NOW)).encode()
    batch = json.dumps([event_params(rng, NOW) for _ in range(1000)]).encode()
    records = [vars(event) for event in workload(5000, NOW)]
    wire = [json.dumps(record, separators=(",", ":")).encode() for record in records]
    return {
        "/plotpoints answer (51 x 720 points, 0.7 MB)":
            (lambda lib: lambda: DUMPS[lib](answer), 1),
        "/count body, one event (strict)":
            (lambda lib: lambda: STRICT_LOADS[lib](one), 1),
        "/count body, 1000-event batch (strict)":
            (lambda lib: lambda: STRICT_LOADS[lib](batch), 1),
        "buffer write, per event (5000)":
            (lambda lib: lambda: [DUMPS[lib](record) for record in records], 5000),
        "buffer read, per event (5000)":
            (lambda lib: lambda: [LOADS[lib](text) for text in wire], 5000),
    }


def same_results(operations: dict[str, Callable[[], object]]) -> bool:
    """True when every library gives the same value (bytes compared as parsed JSON)."""
    def norm(value: object) -> object:
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            return [json.loads(item) for item in value]
        return json.loads(value) if isinstance(value, bytes) else value

    results = [norm(operation()) for operation in operations.values()]
    return all(result == results[0] for result in results)


def measure(repeat: int) -> list[tuple[str, dict[str, float]]]:
    """Microseconds per operation of each library on each scenario (best of `repeat`)."""
    rows = []
    for name, (make, per_call) in scenarios().items():
        operations = {lib: make(lib) for lib in LIBS}
        if not same_results(operations):
            raise SystemExit(f"{name}: the libraries disagree")
        figures = {}
        for lib, operation in operations.items():
            timer = timeit.Timer(operation)
            number, _ = timer.autorange()
            best = min(timer.repeat(repeat, number)) / number
            figures[lib] = best * 1e6 / per_call
        rows.append((name, figures))
    return rows


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    """A Markdown table: microseconds per operation, and each library's time over orjson's."""
    lines = ["| path | " + " | ".join(f"{lib} (µs)" for lib in LIBS) + " |",
             "|---|" + "---:|" * len(LIBS)]
    for name, figures in rows:
        cells = [f"{figures[lib]:,.1f} ({figures[lib] / figures['orjson']:.1f}x)"
                 for lib in LIBS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timings per figure (best kept)")
    args = parser.parse_args(argv)
    print(f"orjson {orjson.__version__}, simplejson {simplejson.__version__}, "
          f"json (Python {sys.version.split()[0]})")
    print(table(measure(args.repeat)))


if __name__ == "__main__":
    main()
