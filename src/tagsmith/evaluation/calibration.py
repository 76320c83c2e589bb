"""How far a run's confidences can be trusted: calibration, separation, and the threshold.

A tag's confidence is the probability option scoring gave it, or for a decoded tag the
probability of its tokens (`TagResult.scores`, confidence.py); tags without one (an engine
that cannot score) are left out here. For every scored slot where a value was given:

- **reliability**: in bins of confidence, the share of values that were right, and the
  expected calibration error (ECE: bin-size-weighted gap between confidence and accuracy);
- **AUROC**: how well confidence ranks right values above wrong ones (0.5 = not at all);
- **threshold curve**: micro P/R/F1 of the whole run when values below a threshold are
  dropped (under the WDC-PAVE rule a wrong value costs precision and recall, an empty answer
  only recall, so a good threshold raises F1), and the F1-best threshold on these items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tagsmith.evaluation.metrics import SlotScore, prf

THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))


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
    curve = []
    for t in THRESHOLDS:
        tp = fp = fn = 0
        for s in slots:
            p = scored.get((s.item_id, s.facet))
            counts = _dropped(s) if p is not None and p < t else (s.tp, s.fp, s.fn)
            tp, fp, fn = tp + counts[0], fp + counts[1], fn + counts[2]
        curve.append((t, *(round(x, 4) for x in prf(tp, fp, fn))))
    best = max(curve, key=lambda row: (row[3], -row[0]))
    return Confidence(len(points), round(ece, 4), _auroc(right, wrong), reliability, curve, best[0], best[3])
