"""How far a run's confidences can be trusted: calibration, separation, and the threshold.

A tag's confidence is the probability option scoring gave it, or for a decoded tag the
probability of its tokens (`TagResult.scores`, confidence.py); tags without one (an engine
that cannot score) are left out here. For every scored slot where a value was given:

- **reliability**: in bins of confidence, the share of values that were right, and the
  expected calibration error (ECE: bin-size-weighted gap between confidence and accuracy);
- **AUROC**: how well confidence ranks right values above wrong ones (0.5 = not at all);
- **threshold curve**: micro P/R/F1 of the whole run when values below a threshold are
  dropped (under the WDC-PAVE rule a wrong value costs precision and recall, an empty answer
  only recall, so a good threshold raises F1), and the F1-best threshold on these items;
- **cross-fitted threshold**: the F1-best threshold is optimistic on the items it was chosen
  on, so each half of the items also gets the threshold best on the other half, and the F1
  that gives is compared with no threshold, paired over items.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from tagsmith.evaluation.metrics import SlotScore, micro_prf, paired_delta

THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))
#: folds of items for the cross-fitted threshold (by a hash of the item id: stable)
FOLDS = 2


@dataclass(frozen=True)
class CrossFit:
    """F1 when each half of the items gets the threshold that was best on the other half."""

    thresholds: list[float]
    f1: float
    #: paired difference in F1 against no threshold, and its 95% bootstrap interval over items
    delta: float
    interval: tuple[float, float]


@dataclass(frozen=True)
class Confidence:
    #: scored slots with a value (the points every figure below is made of)
    n: int
    ece: float
    auroc: float | None
    #: (bin low, bin high, mean confidence, accuracy, count) per non-empty bin
    reliability: list[tuple[float, float, float, float, int]]
    #: (threshold, P, R, F1) of the whole run
    curve: list[tuple[float, float, float, float]]
    best_threshold: float
    best_f1: float
    #: the threshold chosen on other items (None: too few items for the folds)
    crossfit: CrossFit | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scored_points(slots: Sequence[SlotScore], predictions: Mapping[str, Mapping[str, Any]]
                  ) -> list[tuple[SlotScore, float]]:
    """(slot, confidence of its values) for slots whose every value has a confidence; a slot
    of several values counts as sure as its least sure one (the threshold curve withdraws it
    whole, which for the few multi-valued slots is a slight simplification)."""
    out = []
    for s in slots:
        pred = predictions.get(s.item_id) or {}
        values = (pred.get("tags") or {}).get(s.facet) or []
        scores = (pred.get("scores") or {}).get(s.facet)
        if values and scores and all(v in scores for v in values):
            out.append((s, min(float(scores[v]) for v in values)))
    return out


def _auroc(right: list[float], wrong: list[float]) -> float | None:
    if not right or not wrong:
        return None
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return wins / (len(right) * len(wrong))


def _dropped(s: SlotScore) -> tuple[int, int, int]:
    """(tp, fp, fn) of a slot whose value is withdrawn: the gold, if any, is now missed."""
    if s.outcome:  # alternatives mode: VC and VW become VN, NV becomes NN
        return (0, 0, 1) if s.outcome in ("VC", "VW") else (0, 0, 0)
    return 0, 0, s.tp + s.fn


def confidence_report(slots: Sequence[SlotScore], predictions: Mapping[str, Mapping[str, Any]],
                      bins: int = 10) -> Confidence | None:
    """None when no slot carries a confidence (no facet was option-scored)."""
    points = scored_points(slots, predictions)
    if not points:
        return None
    right = [p for s, p in points if s.correct]
    wrong = [p for s, p in points if not s.correct]
    reliability, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(s, p) for s, p in points if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if not inside:
            continue
        conf = sum(p for _, p in inside) / len(inside)
        acc = sum(s.correct for s, _ in inside) / len(inside)
        ece += len(inside) / len(points) * abs(conf - acc)
        reliability.append((lo, hi, round(conf, 4), round(acc, 4), len(inside)))
    scored = {(s.item_id, s.facet): p for s, p in points}
    curve = _curve(slots, scored)
    best = max(curve, key=lambda row: (row[3], -row[0]))
    crossfit = _crossfit(slots, scored)
    return Confidence(len(points), round(ece, 4), _auroc(right, wrong), reliability, curve, best[0], best[3],
                      crossfit)


def withheld_slots(slots: Sequence[SlotScore], scored: Mapping[tuple[str, str], float], threshold: float
                   ) -> list[SlotScore]:
    """The slots as scored once values below `threshold` are withdrawn."""
    out = []
    for s in slots:
        p = scored.get((s.item_id, s.facet))
        if p is not None and p < threshold:
            tp, fp, fn = _dropped(s)
            s = replace(s, tp=tp, fp=fp, fn=fn)
        out.append(s)
    return out


def _curve(slots: Sequence[SlotScore], scored: Mapping[tuple[str, str], float]
           ) -> list[tuple[float, float, float, float]]:
    curve = []
    for t in THRESHOLDS:
        curve.append((t, *(round(x, 4) for x in micro_prf(withheld_slots(slots, scored, t)))))
    return curve


def fold_of(item_id: str, folds: int = FOLDS) -> int:
    return int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) % folds


def _crossfit(slots: Sequence[SlotScore], scored: Mapping[tuple[str, str], float]) -> CrossFit | None:
    """Each fold of items gets the F1-best threshold of the other folds: the gain a threshold
    chosen on other labelled items brings, paired over items (bootstrap), without the optimism
    of choosing it on the items it is scored on."""
    fold = {i: fold_of(i) for i in dict.fromkeys(s.item_id for s in slots)}
    if len(set(fold.values())) < FOLDS:
        return None
    chosen, adjusted = [], []
    for k in range(FOLDS):
        rest = [s for s in slots if fold[s.item_id] != k]
        t = max(_curve(rest, scored), key=lambda row: (row[3], -row[0]))[0]
        chosen.append(t)
        adjusted += withheld_slots([s for s in slots if fold[s.item_id] == k], scored, t)
    d = paired_delta(slots, adjusted, list(fold))
    return CrossFit(chosen, round(micro_prf(adjusted)[2], 4), round(d.delta, 4),
                    (round(d.interval.low, 4), round(d.interval.high, 4)))
