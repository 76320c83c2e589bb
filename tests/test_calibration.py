"""Confidence figures of the eval report on hand-made slots."""

import pytest

from tagsmith.evaluation.calibration import confidence_report
from tagsmith.evaluation.metrics import score_slot


def case(item, gold, value, p):
    slot = score_slot(item, "F", gold, [value] if value else [])
    return slot, {"tags": {"F": [value]} if value else {}, "scores": {"F": {value: p}} if value else {}}


def test_perfect_separation_and_the_threshold_that_helps():
    rows = [case("a", ["x"], "x", 0.9), case("b", ["x"], "x", 0.8),   # right and sure
            case("c", ["x"], "y", 0.2), case("d", [], "y", 0.3)]      # wrong (VW) and unwanted (NV), unsure
    slots = [s for s, _ in rows]
    preds = {s.item_id: p for s, p in rows}
    c = confidence_report(slots, preds)
    assert c.n == 4 and c.auroc == 1.0
    # threshold 0: tp 2, fp 2 (VW + NV), fn 1 (VW) -> P 0.5, R 2/3
    assert c.curve[0][1:] == pytest.approx((0.5, 0.6667, 0.5714), abs=1e-3)
    # dropping the two unsure values: VW -> VN (fn), NV -> NN: P 1, R 2/3, F1 0.8
    assert c.best_f1 == pytest.approx(0.8) and 0.3 < c.best_threshold <= 0.8
    # ECE: bins hold (0.2 wrong), (0.3 wrong), (0.8 right), (0.9 right): |0.2|,|0.3|,|0.2|,|0.1| / 4
    assert c.ece == pytest.approx((0.2 + 0.3 + 0.2 + 0.1) / 4)


def test_no_scores_no_report_and_ties_give_half():
    s, p = case("a", ["x"], "x", 0.5)
    assert confidence_report([s], {"a": {"tags": {"F": ["x"]}}}) is None
    rows = [case("a", ["x"], "x", 0.5), case("b", ["x"], "y", 0.5)]
    c = confidence_report([s for s, _ in rows], {s.item_id: p for s, p in rows})
    assert c.auroc == 0.5


def test_the_cross_fitted_threshold_is_chosen_on_the_other_half():
    from tagsmith.evaluation.calibration import fold_of

    # many items: right ones sure, wrong ones unsure, in both halves
    rows = [case(f"i{n}", ["x"], "x" if n % 3 else "y", 0.9 if n % 3 else 0.2) for n in range(40)]
    slots = [s for s, _ in rows]
    c = confidence_report(slots, {s.item_id: p for s, p in rows})
    assert {fold_of(s.item_id) for s in slots} == {0, 1}
    x = c.crossfit
    assert x is not None and len(x.thresholds) == 2 and all(0.2 < t <= 0.9 for t in x.thresholds)
    assert x.f1 == pytest.approx(c.best_f1) and x.delta > 0 and x.interval[0] > 0
    # where confidence says nothing, the other half's threshold gains nothing
    noise = [case(f"i{n}", ["x"], "x" if n % 2 else "y", 0.5 + 0.01 * (n % 7)) for n in range(40)]
    c = confidence_report([s for s, _ in noise], {s.item_id: p for s, p in noise})
    assert c.crossfit is not None and c.crossfit.interval[0] <= 0
    assert confidence_report(slots[:1], {slots[0].item_id: rows[0][1]}).crossfit is None  # one item: no folds
