"""hailwhale/keys.py, pure: key names, path spellings, cluster slots (no Redis)."""

from __future__ import annotations

from binascii import crc_hqx

from hypothesis import given
from hypothesis import strategies as st

from hailwhale.keys import KeySpace, dim_key, encode_path, key_slot, slot_tag

segments = st.text(min_size=1, max_size=60).filter(lambda s: s != "_")
paths = st.lists(segments, max_size=4).map(tuple)


@given(one=paths, other=paths)
def test_no_two_paths_share_a_spelling_or_break_out_of_the_tag(one, other):
    if one != other:
        assert encode_path(one) != encode_path(other)
    spelled = encode_path(one)
    assert not {"{", "}", "|", ":"} & set(spelled)


def test_long_segments_are_spelled_by_a_digest_and_keep_their_parents_prefix():
    long = "\U0001F600" * 200
    spelled = encode_path((long,))
    assert spelled.startswith("#") and len(spelled) == 17
    assert encode_path((long, "child")) == spelled + "/child"
    assert encode_path(("a" * 32,)) == "a" * 32  # 32 bytes once encoded: spelled out


def test_dim_keys_as_clients_see_them():
    assert dim_key(()) == "_"
    assert dim_key(("sales",)) == "sales"
    assert dim_key(("sales", "p42")) == '["sales","p42"]'
    assert dim_key(("[odd",)) == '["[odd"]'
    assert dim_key(("café",)) == "café"


def test_every_key_of_one_series_shares_one_hash_tag():
    keys = KeySpace("hw")
    pk, path = ("shop",), ("geo", "US")
    tagged = [keys.series(pk, path, 15, "hits", 7), keys.unique(pk, path, 15, "v", 105),
              keys.children(pk, path)]
    assert {key_slot(key) for key in tagged} == {key_slot(keys.tag(pk, path))}
    assert keys.series(pk, path, 15, "hits", 7) == "hw:{shop|geo/US}:15:hits:7"
    assert keys.idempotent("a b/c") == "hw:idem:a%20b%2Fc"
    assert keys.plan(keys.applied("b1")) == "hw:applied:b1:plan"


def test_slot_tags_land_in_their_slot():
    for slot in (0, 1, 5461, 16383):
        assert crc_hqx(slot_tag(slot).encode(), 0) % 16384 == slot
        assert key_slot(f"marker:{{{slot_tag(slot)}}}") == slot
