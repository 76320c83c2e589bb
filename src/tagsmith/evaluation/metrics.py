"""Scoring tags against gold, following the WDC-PAVE convention.

Each (item, facet) is a *slot*. In `alternatives` mode (WDC-PAVE: several gold values
are all acceptable) a slot is scored as in the benchmark authors' code:

    gold n/a, nothing predicted     NN  ->  no count
    gold n/a, a value predicted     NV  ->  fp
    gold value, nothing predicted   VN  ->  fn
    predicted one of the gold       VC  ->  tp
    predicted a value, not gold     VW  ->  fp and fn (wrong counts against both)

so P = VC/(NV+VC+VW) and R = VC/(VN+VC+VW), micro-averaged over slots. In `set` mode
(multi-label tags, all gold values expected) each value counts: tp = |pred & gold|,
fp = |pred - gold|, fn = |gold - pred|. Both reduce to per-slot (tp, fp, fn), so every
aggregate below (micro/macro F1, bootstrap intervals, paired deltas) is mode-agnostic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

Tags = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class SlotScore:
    item_id: str
    facet: str
    tp: int
    fp: int
    fn: int
    #: WDC outcome code (NN/NV/VN/VC/VW) in alternatives mode, "" in set mode.
    outcome: str = ""

    @property
    def correct(self) -> bool:
        return self.fp == 0 and self.fn == 0


def score_slot(item_id: str, facet: str, gold: Sequence[str], predicted: Sequence[str],
               mode: str = "alternatives") -> SlotScore:
    gold_set = {g.strip() for g in gold if g.strip()}
    pred = [p.strip() for p in predicted if p.strip()]
    if mode == "set":
        p = set(pred)
        return SlotScore(item_id, facet, len(p & gold_set), len(p - gold_set), len(gold_set - p))
    if mode != "alternatives":
        raise ValueError(f"unknown scoring mode {mode!r}")
    value = pred[0] if pred else None  # a single-valued slot: the first answer is the answer
    if not gold_set:
        return SlotScore(item_id, facet, 0, 0, 0, "NN") if value is None else \
            SlotScore(item_id, facet, 0, 1, 0, "NV")
    if value is None:
        return SlotScore(item_id, facet, 0, 0, 1, "VN")
    if value in gold_set:
        return SlotScore(item_id, facet, 1, 0, 0, "VC")
    return SlotScore(item_id, facet, 0, 1, 1, "VW")


def prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def micro_prf(slots: Sequence[SlotScore]) -> tuple[float, float, float]:
    """Micro precision, recall and F1 of slots: their counts summed, then `prf`."""
    return prf(sum(s.tp for s in slots), sum(s.fp for s in slots), sum(s.fn for s in slots))


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass
class Scores:
    """Aggregates of a list of slot scores; `per_facet` holds precision, recall, f1, support
    (gold values) and, when bootstrapped, f1_low/f1_high."""

    precision: float
    recall: float
    f1: float
    macro_f1: float
    exact_match: float
    f1_interval: Interval | None
    per_facet: dict[str, dict[str, float]] = field(default_factory=dict)
    n_items: int = 0


def _item_matrix(slots: Sequence[SlotScore], item_ids: Sequence[str]) -> np.ndarray:
    """Per item: summed (tp, fp, fn). Rows follow `item_ids`, so two runs align for pairing."""
    index = {i: n for n, i in enumerate(item_ids)}
    m = np.zeros((len(item_ids), 3))
    for s in slots:
        m[index[s.item_id]] += (s.tp, s.fp, s.fn)
    return m


def _f1_rows(m: np.ndarray) -> np.ndarray:
    """Micro F1 of each bootstrap replicate; `m` is (replicates, 3)."""
    tp, fp, fn = m[..., 0], m[..., 1], m[..., 2]
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def bootstrap_f1(m: np.ndarray, n: int = 1000, seed: int = 0, level: float = 0.95) -> Interval:
    """Percentile bootstrap of micro F1, resampling items (slots of one item stay together)."""
    if len(m) == 0:
        return Interval(0.0, 0.0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(m), size=(n, len(m)))
    f1 = _f1_rows(m[idx].sum(axis=1))
    a = (1 - level) / 2
    return Interval(float(np.quantile(f1, a)), float(np.quantile(f1, 1 - a)))


def aggregate(slots: Sequence[SlotScore], item_ids: Sequence[str] | None = None,
              bootstrap: int = 1000, seed: int = 0) -> Scores:
    item_ids = list(item_ids) if item_ids is not None else list(dict.fromkeys(s.item_id for s in slots))
    p, r, f1 = micro_prf(slots)
    per_facet: dict[str, dict[str, float]] = {}
    for facet in dict.fromkeys(s.facet for s in slots):
        fs = [s for s in slots if s.facet == facet]
        fp_, fr_, ff_ = micro_prf(fs)
        per_facet[facet] = {"precision": fp_, "recall": fr_, "f1": ff_,
                            "support": float(sum(s.tp + s.fn for s in fs))}
        if bootstrap:
            ci = bootstrap_f1(_item_matrix(fs, item_ids), bootstrap, seed)
            per_facet[facet].update(f1_low=ci.low, f1_high=ci.high)
    # Macro F1 over facets that have gold values; an all-n/a facet has no recall to speak of.
    scored = [v["f1"] for v in per_facet.values() if v["support"] > 0]
    wrong_items = {s.item_id for s in slots if not s.correct}
    matrix = _item_matrix(slots, item_ids)
    return Scores(
        precision=p, recall=r, f1=f1,
        macro_f1=float(np.mean(scored)) if scored else 0.0,
        exact_match=(1 - len(wrong_items) / len(item_ids)) if item_ids else 0.0,
        f1_interval=bootstrap_f1(matrix, bootstrap, seed) if bootstrap else None,
        per_facet=per_facet, n_items=len(item_ids),
    )


@dataclass(frozen=True)
class PairedDelta:
    """F1(B) - F1(A) on the same items, with a paired bootstrap interval."""

    delta: float
    interval: Interval
    #: Share of bootstrap replicates in which B is not better than A (a one-sided p-value).
    p_not_better: float


def paired_delta(a: Sequence[SlotScore], b: Sequence[SlotScore], item_ids: Sequence[str],
                 n: int = 1000, seed: int = 0, level: float = 0.95) -> PairedDelta:
    ma, mb = _item_matrix(a, item_ids), _item_matrix(b, item_ids)
    delta = float(_f1_rows(mb.sum(axis=0)) - _f1_rows(ma.sum(axis=0)))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(item_ids), size=(n, len(item_ids)))
    d = _f1_rows(mb[idx].sum(axis=1)) - _f1_rows(ma[idx].sum(axis=1))
    q = (1 - level) / 2
    return PairedDelta(delta, Interval(float(np.quantile(d, q)), float(np.quantile(d, 1 - q))),
                       float(np.mean(d <= 0)))


def flips(a: Sequence[SlotScore], b: Sequence[SlotScore]) -> dict[str, list[tuple[str, str]]]:
    """Slots that changed correctness between run A and run B: what a template change did."""
    before = {(s.item_id, s.facet): s.correct for s in a}
    out: dict[str, list[tuple[str, str]]] = {"right_to_wrong": [], "wrong_to_right": []}
    for s in b:
        was = before.get((s.item_id, s.facet))
        if was is True and not s.correct:
            out["right_to_wrong"].append((s.item_id, s.facet))
        elif was is False and s.correct:
            out["wrong_to_right"].append((s.item_id, s.facet))
    return out
