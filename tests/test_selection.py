"""Ranking and tree order (hailwhale/selection.py): pure, no store."""

from __future__ import annotations

from hailwhale.selection import rank, tree_order

A, B, C, D = ("s", "a"), ("s", "b"), ("s", "c"), ("s", "d")


def test_largest_absolute_total_first_ties_by_name():
    assert rank(100, [(A, 5), (B, -30), (C, 30), (D, 12)], None, None) == [B, C, D, A]


def test_threshold_is_a_share_of_the_parents_absolute_total():
    children = [(A, 10), (B, 9.99), (C, -10)]
    assert rank(-100, children, 0.1, None) == [A, C]
    assert rank(-100, children, 0, None) == [A, C, B]  # 0: every child


def test_limit_cuts_after_ranking_and_0_means_all():
    children = [(A, 1), (B, 2), (C, 3), (D, 4)]
    assert rank(10, children, None, 2) == [D, C]
    assert rank(10, children, None, 0) == [D, C, B, A]


def test_a_zero_parent_keeps_every_child_past_a_threshold():
    assert rank(0, [(A, 0), (B, 1)], 0.1, None) == [B, A]


def test_tree_order_puts_each_child_before_its_own_then_its_siblings():
    root = ("s",)
    shown = {root: [B, A], B: [(*B, "x"), (*B, "y")], A: [(*A, "z")]}
    assert tree_order(root, shown) == [root, B, (*B, "x"), (*B, "y"), A, (*A, "z")]
    assert tree_order(root, {}) == [root]
