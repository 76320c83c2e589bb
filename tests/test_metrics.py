"""Metric code against hand-computed cases, including the multi-gold and n/a rules."""

import pytest

from tagsmith.evaluation.metrics import aggregate, flips, paired_delta, prf, score_slot


@pytest.mark.parametrize("gold,pred,outcome,counts", [
    ([], [], "NN", (0, 0, 0)),
    ([], ["Red"], "NV", (0, 1, 0)),
    (["Red"], [], "VN", (0, 0, 1)),
    (["Red", "Crimson"], ["Crimson"], "VC", (1, 0, 0)),  # any of several gold values counts
    (["Red"], ["Blue"], "VW", (0, 1, 1)),                 # wrong value counts against both
    ([" Red "], ["Red"], "VC", (1, 0, 0)),                # surrounding spaces stripped
    (["Red"], ["red"], "VW", (0, 1, 1)),                  # otherwise exact match
])
def test_wdc_slot_rules(gold, pred, outcome, counts):
    s = score_slot("1", "Color", gold, pred)
    assert s.outcome == outcome and (s.tp, s.fp, s.fn) == counts


def test_set_mode_counts_values():
    s = score_slot("1", "Tags", ["a", "b", "c"], ["a", "d"], mode="set")
    assert (s.tp, s.fp, s.fn) == (1, 1, 2)


def test_micro_macro_and_exact_match_by_hand():
    slots = [
        score_slot("1", "A", ["x"], ["x"]),        # VC
        score_slot("1", "B", [], []),              # NN
        score_slot("2", "A", ["x"], ["y"]),        # VW
        score_slot("2", "B", [], ["z"]),           # NV
        score_slot("3", "A", ["x", "w"], ["w"]),   # VC
        score_slot("3", "B", ["q"], []),           # VN
    ]
    s = aggregate(slots, bootstrap=0)
    # tp=2, fp=2 (VW, NV), fn=2 (VW, VN): P = 2/4, R = 2/4
    assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)
    # facet A: tp 2 fp 1 fn 1 -> F1 2/3; facet B: tp 0 -> F1 0; macro = 1/3
    assert s.per_facet["A"]["f1"] == pytest.approx(2 / 3)
    assert s.macro_f1 == pytest.approx(1 / 3)
    assert s.exact_match == pytest.approx(1 / 3)  # only item 1 is entirely right
    assert prf(0, 0, 0) == (0.0, 0.0, 0.0)


def test_bootstrap_interval_brackets_f1_and_narrows_with_data():
    few = [score_slot(str(i), "A", ["x"], ["x" if i % 2 else "y"]) for i in range(20)]
    many = [score_slot(str(i), "A", ["x"], ["x" if i % 2 else "y"]) for i in range(2000)]
    a, b = aggregate(few, seed=1), aggregate(many, seed=1)
    assert a.f1_interval.low <= a.f1 <= a.f1_interval.high
    assert (b.f1_interval.high - b.f1_interval.low) < (a.f1_interval.high - a.f1_interval.low)


def test_paired_delta_and_flips():
    ids = [str(i) for i in range(200)]
    a = [score_slot(i, "A", ["x"], ["x" if int(i) % 2 else "y"]) for i in ids]
    b = [score_slot(i, "A", ["x"], ["x"]) for i in ids]
    d = paired_delta(a, b, ids)
    assert d.delta == pytest.approx(1 - 0.5)
    assert d.interval.low > 0 and d.p_not_better == 0
    f = flips(a, b)
    assert len(f["wrong_to_right"]) == 100 and f["right_to_wrong"] == []
    same = paired_delta(a, a, ids)
    assert same.delta == 0 and same.interval.low == same.interval.high == 0
