"""whale/writes.py, pure: a rollup as bounded script calls (no Redis)."""

from __future__ import annotations

import random

import pytest

from hailwhale.config import Limits
from hailwhale.events import parse_batch
from hailwhale.keys import key_slot
from tests.hail_helpers import make_store, random_events
from whale.writes import pieces

NOW = 1_795_000_007.5


def ops(piece) -> dict[str, list[tuple[str, tuple]]]:
    """A piece's ops by command, as apply.lua reads them."""
    _, keys, args = piece
    out: dict[str, list] = {}
    k, i = 0, 0
    while i < len(args):
        command, arity, count = args[i], int(args[i + 1]), int(args[i + 2])
        i += 3
        for _ in range(count):
            out.setdefault(command, []).append((keys[k], tuple(args[i:i + arity])))
            k += 1
            i += arity
    assert k == len(keys)
    return out


@pytest.fixture
def rollup(fake_redis):
    store = make_store(fake_redis, "hw", NOW)
    return store.rollup(random_events(random.Random(1), 300, NOW), NOW)


def never_sent(key: str, at: int) -> bool:
    return False


@pytest.mark.parametrize("cluster", [False, True])
def test_small_pieces_hold_every_op_once_and_each_key_in_one_piece(rollup, cluster):
    whole = [op for piece in pieces(rollup, cluster, never_sent) for op in
             sum(ops(piece).values(), [])]
    split = pieces(rollup, cluster, never_sent, max_args=200)
    assert len(split) > 10
    assert all(len(keys) + len(args) <= 200 + 16 for _, keys, args in split)
    seen: dict[str, int] = {}
    for n, piece in enumerate(split):
        by_command = ops(piece)
        for command, entries in by_command.items():
            for key, _ in entries:
                assert seen.setdefault(key, n) == n, "a key's ops span two pieces"
                if cluster:
                    assert key_slot(key) == piece[0]
        expired = [key for key, _ in by_command.get("EXPIREAT", [])]
        written = {key for c, entries in by_command.items() if c != "EXPIREAT"
                   for key, _ in entries}
        assert set(expired) <= written  # EXPIREAT with its key, after it
        assert list(by_command)[-1:] == ["EXPIREAT"] or not expired
    assert sorted(op for piece in split for op in sum(ops(piece).values(), [])) == sorted(whole)


def test_expiries_already_sent_are_left_out(rollup):
    [piece] = pieces(rollup, False, lambda key, at: True)
    assert "EXPIREAT" not in ops(piece)
    [piece] = pieces(rollup, False, never_sent)
    assert len(ops(piece)["EXPIREAT"]) == len(rollup.expiries)


def test_amounts_are_spelled_exactly(fake_redis):
    store = make_store(fake_redis, "hw", NOW)
    events = parse_batch([{"metrics": {"x": 2**53}}] * 3 + [{"metrics": {"y": 0.1}}] * 10,
                         periods=store.periods, limits=Limits(), now=NOW)
    [piece] = pieces(store.rollup(events, NOW), False, never_sent)
    amounts = {key.split(":")[-2]: args[1] for key, args in ops(piece)["HINCRBYFLOAT"]}
    assert amounts["x"] == str(3 * 2**53) and amounts["y"] == "1.0" and amounts["hits"] == "13"
