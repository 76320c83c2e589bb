"""Scores for hierarchical facets (a category tree): how deep an answer is right.

Flat F1 calls "Clothing" wrong for a dress as much as "Garden Hoses"; a taxonomy user needs to
know how far down the tree the tagger gets. Per item (the facet's first gold and first answered
path; an empty answer is a path of no steps):

- leaf accuracy: the answered path is the gold path;
- accuracy at depth d (items whose gold is at least d deep): the first d steps agree;
- hierarchical precision / recall / F1: the answered path's ancestors (itself included) against
  the gold path's, micro-averaged (Kiritchenko et al.): a sibling of the gold leaf earns the
  shared ancestors, a stop at the right parent earns precision and most of the recall.

Intervals are percentile bootstraps over items, paired where two runs are compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tagsmith.vocabulary import Facet, VocabularySet


@dataclass
class HierarchyScores:
    facet: str
    n: int
    leaf_accuracy: float
    leaf_interval: tuple[float, float]
    depth_accuracy: dict[int, float]
    #: per depth: how many items have gold that deep, and the accuracy's interval
    depth_n: dict[int, int]
    depth_interval: dict[int, tuple[float, float]]
    hierarchical_precision: float
    hierarchical_recall: float
    hierarchical_f1: float
    hf1_interval: tuple[float, float]
    #: per item: leaf right (1/0), and (shared, answered, gold) ancestor counts, for pairing
    per_item: dict[str, tuple[int, int, int, int]] = field(default_factory=dict, repr=False)
    #: per item: right (1/0) at each depth 1..its gold's depth, for pairing
    per_item_depth: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("per_item")
        out.pop("per_item_depth")
        return out


def ancestors(path: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(path[:i]) for i in range(1, len(path) + 1)}


def item_counts(gold: Sequence[str], answer: Sequence[str]) -> tuple[int, int, int, int]:
    """(leaf right, shared ancestors, answered ancestors, gold ancestors)."""
    shared = len(ancestors(gold) & ancestors(answer))
    return int(tuple(gold) == tuple(answer)), shared, len(answer), len(gold)


def _bootstrap(values: Sequence[Any], stat: Any, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    import numpy as np

    rng = np.random.default_rng(seed)
    arr = np.array(values, dtype=float)
    if len(arr) == 0:
        return 0.0, 0.0
    draws = [stat(arr[rng.integers(0, len(arr), len(arr))]) for _ in range(n)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def _hf1(counts: Any) -> float:
    shared, answered, gold = counts[:, 1].sum(), counts[:, 2].sum(), counts[:, 3].sum()
    p = shared / answered if answered else 0.0
    r = shared / gold if gold else 0.0
    return float(2 * p * r / (p + r)) if p + r else 0.0


def hierarchy_scores(facet: Facet, pairs: Sequence[tuple[str, list[str], list[str]]],
                     bootstrap: int = 1000) -> HierarchyScores | None:
    """Scores of one hierarchical facet over (item id, gold values, answered values); None when
    no item has a gold path."""
    per_item: dict[str, tuple[int, int, int, int]] = {}
    per_item_depth: dict[str, tuple[int, ...]] = {}
    depth_hits: dict[int, list[int]] = {}
    for item_id, gold, answer in pairs:
        if not gold:
            continue
        g, a = facet.path(gold[0]), (facet.path(answer[0]) if answer else ())
        per_item[item_id] = item_counts(g, a)
        per_item_depth[item_id] = tuple(int(tuple(a[:d]) == tuple(g[:d])) for d in range(1, len(g) + 1))
        for d, hit in enumerate(per_item_depth[item_id], start=1):
            depth_hits.setdefault(d, []).append(hit)
    if not per_item:
        return None
    import numpy as np

    counts = np.array(list(per_item.values()), dtype=float)
    shared, answered, gold_n = counts[:, 1].sum(), counts[:, 2].sum(), counts[:, 3].sum()
    precision = float(shared / answered) if answered else 0.0
    recall = float(shared / gold_n) if gold_n else 0.0
    return HierarchyScores(
        facet=facet.name, n=len(per_item), leaf_accuracy=float(counts[:, 0].mean()),
        leaf_interval=_bootstrap(counts[:, 0], np.mean, bootstrap),
        depth_accuracy={d: float(np.mean(h)) for d, h in sorted(depth_hits.items())},
        depth_n={d: len(h) for d, h in sorted(depth_hits.items())},
        depth_interval={d: _bootstrap(h, np.mean, bootstrap) for d, h in sorted(depth_hits.items())},
        hierarchical_precision=precision, hierarchical_recall=recall, hierarchical_f1=_hf1(counts),
        hf1_interval=_bootstrap_rows(counts, bootstrap), per_item=per_item, per_item_depth=per_item_depth)


def _bootstrap_rows(counts: Any, n: int, seed: int = 0) -> tuple[float, float]:
    import numpy as np

    rng = np.random.default_rng(seed)
    draws = [_hf1(counts[rng.integers(0, len(counts), len(counts))]) for _ in range(n)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def paired_leaf_delta(a: HierarchyScores, b: HierarchyScores, n: int = 1000, seed: int = 0,
                      depth: int | None = None) -> tuple[float, tuple[float, float]]:
    """Leaf accuracy (or accuracy at `depth`, over items with gold that deep) of b minus a
    on the items both scored, with a paired bootstrap interval."""
    import numpy as np

    ids = sorted(set(a.per_item) & set(b.per_item))
    if depth is None:
        diff = np.array([b.per_item[i][0] - a.per_item[i][0] for i in ids], dtype=float)
    else:
        diff = np.array([b.per_item_depth[i][depth - 1] - a.per_item_depth[i][depth - 1] for i in ids
                         if len(a.per_item_depth.get(i, ())) >= depth and len(b.per_item_depth.get(i, ())) >= depth],
                        dtype=float)
    if not len(diff):
        return 0.0, (0.0, 0.0)
    rng = np.random.default_rng(seed)
    draws = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n)]
    return float(diff.mean()), (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))


def run_hierarchy_scores(vocabularies: VocabularySet | None, gold: dict[str, tuple[str | None, dict[str, list[str]]]],
                         predictions: dict[str, dict[str, Any]]) -> list[HierarchyScores]:
    """Scores for every hierarchical facet of the run's vocabularies. `gold`: item id ->
    (category, canonical gold)."""
    if vocabularies is None:
        return []
    out = []
    facets = {f.name: f for v in vocabularies for f in v.facets if f.hierarchy}
    for name, facet in facets.items():
        pairs = [(item_id, g.get(name, []), ((predictions.get(item_id) or {}).get("tags") or {}).get(name, []))
                 for item_id, (_, g) in gold.items() if name in g]
        scores = hierarchy_scores(facet, pairs)
        if scores is not None:
            out.append(scores)
    return out
