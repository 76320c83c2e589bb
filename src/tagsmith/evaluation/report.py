"""Reports of an eval: Markdown for the terminal, JSON + HTML saved with the full config.

Every run is compared to the first one (the reference) on the same items: delta F1 with
a paired bootstrap interval, and the slots that flipped, so a prompt engineer sees what a
template change did, item by item.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tagsmith.evaluation.metrics import PairedDelta, flips, paired_delta
from tagsmith.evaluation.runner import RunResult


def pct(x: float) -> str:
    """A share as the reports print it: percent, one decimal."""
    return f"{100 * x:.1f}"


def comparisons(runs: Sequence[RunResult], item_ids: Sequence[str]) -> list[dict[str, Any]]:
    ref = runs[0]
    out = []
    for r in runs[1:]:
        d: PairedDelta = paired_delta(ref.slots, r.slots, item_ids)
        f = flips(ref.slots, r.slots)
        out.append({"a": ref.config.name, "b": r.config.name, "delta_f1": d.delta,
                    "interval": [d.interval.low, d.interval.high], "p_not_better": d.p_not_better,
                    "right_to_wrong": f["right_to_wrong"], "wrong_to_right": f["wrong_to_right"]})
    return out


def markdown(runs: Sequence[RunResult], comps: Sequence[dict[str, Any]], dataset: str, n_items: int,
             max_flips: int = 10) -> str:
    lines = [f"## tagsmith eval: {dataset} ({n_items} items)", "",
             "| run | P | R | F1 [95% CI] | macro F1 | exact | OOV | dup | unparseable | s/item | items/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        s = r.scores
        ci = f"[{pct(s.f1_interval.low)}, {pct(s.f1_interval.high)}]" if s.f1_interval else ""
        lines.append(
            f"| {r.config.name} | {pct(s.precision)} | {pct(s.recall)} | **{pct(s.f1)}** {ci} | "
            f"{pct(s.macro_f1)} | {pct(s.exact_match)} | {pct(r.rates['oov_rate'])} | "
            f"{pct(r.rates['duplicate_rate'])} | {pct(r.rates['unparseable_rate'])} | "
            f"{r.seconds_per_item:.3f} | {r.items_per_second:.2f} |")
    facets = list(dict.fromkeys(f for r in runs for f in r.scores.per_facet))
    lines += ["", "### F1 per facet", "",
              "| facet | support | " + " | ".join(r.config.name for r in runs) + " |",
              "|---|---|" + "---|" * len(runs)]
    for f in facets:
        support = int(max(r.scores.per_facet.get(f, {}).get("support", 0) for r in runs))
        cells = [pct(r.scores.per_facet[f]["f1"]) if f in r.scores.per_facet else "" for r in runs]
        lines.append(f"| {f} | {support} | " + " | ".join(cells) + " |")
    for c in comps:
        lo, hi = c["interval"]
        verdict = ("better" if lo > 0 else "worse" if hi < 0 else "no significant difference")
        lines += ["", f"### {c['b']} vs {c['a']}: delta F1 {pct(c['delta_f1'])} points "
                      f"[{pct(lo)}, {pct(hi)}] ({verdict})",
                  f"{len(c['wrong_to_right'])} slots wrong -> right, {len(c['right_to_wrong'])} right -> wrong"]
        for label, key in (("right -> wrong", "right_to_wrong"), ("wrong -> right", "wrong_to_right")):
            shown = c[key][:max_flips]
            if shown:
                lines.append(f"- {label}: " + ", ".join(f"{i}/{f}" for i, f in shown)
                             + (" ..." if len(c[key]) > max_flips else ""))
    lines += confidence_markdown(runs)
    lines += hierarchy_markdown(runs)
    lines += ["", "Scoring: WDC-PAVE rule (a wrong value counts as FP and FN; any of several gold "
                  "values is right; predicting a value where gold is n/a is FP), micro-averaged "
                  "over slots; gold values are mapped to the vocabulary's canonical spelling first. "
                  "Intervals: percentile bootstrap over items (1000 resamples)."]
    return "\n".join(lines)


def hierarchy_markdown(runs: Sequence[RunResult]) -> list[str]:
    """Leaf and depth accuracy and hierarchical F1 of hierarchical facets with their intervals,
    then each run against the first, paired, at the leaf and at every depth."""
    from tagsmith.evaluation.hierarchy import paired_leaf_delta

    facets = list(dict.fromkeys(h.facet for r in runs for h in r.hierarchy))
    lines: list[str] = []
    for name in facets:
        scored = [(r, next(h for h in r.hierarchy if h.facet == name)) for r in runs
                  if any(h.facet == name for h in r.hierarchy)]
        depths = sorted({d for _, h in scored for d in h.depth_accuracy})
        first = scored[0][1]
        heads = " | ".join(f"depth {d} (n={first.depth_n.get(d, 0)})" for d in depths)
        lines += ["", f"### {name}: the tree", "",
                  f"| run | items | leaf accuracy [95% CI] | {heads} | hP | hR | hF1 [95% CI] |",
                  "|---|---|---|" + "---|" * len(depths) + "---|---|---|"]
        for r, h in scored:
            cells = [f"{pct(h.depth_accuracy[d])} [{pct(h.depth_interval[d][0])}, {pct(h.depth_interval[d][1])}]"
                     if d in h.depth_accuracy else "" for d in depths]
            lines.append(f"| {r.config.name} | {h.n} | {pct(h.leaf_accuracy)} [{pct(h.leaf_interval[0])}, "
                         f"{pct(h.leaf_interval[1])}] | " + " | ".join(cells)
                         + f" | {pct(h.hierarchical_precision)} | {pct(h.hierarchical_recall)} | "
                         f"{pct(h.hierarchical_f1)} [{pct(h.hf1_interval[0])}, {pct(h.hf1_interval[1])}] |")
        if len(scored) > 1:
            lines += ["", f"Against the first run ({scored[0][0].config.name}), paired on the same items: "
                          "difference in points [95% CI].", "",
                      "| run | leaf | " + " | ".join(f"depth {d}" for d in depths) + " |",
                      "|---|---|" + "---|" * len(depths)]
            for r, h in scored[1:]:
                cells = []
                for d in (None, *depths):
                    delta, (lo, hi) = paired_leaf_delta(first, h, depth=d)
                    cells.append(f"{pct(delta)} [{pct(lo)}, {pct(hi)}]")
                lines.append(f"| {r.config.name} | " + " | ".join(cells) + " |")
        lines += ["", "Depth d: share of items (with gold at least d deep) whose answer's first d steps "
                      "are the gold's; hP/hR/hF1: ancestors of the answer against the gold's."]
    return lines


def confidence_markdown(runs: Sequence[RunResult]) -> list[str]:
    """Calibration of the runs whose tags carry confidences (decoded or option-scored)."""
    rated = [r for r in runs if r.confidence is not None]
    if not rated:
        return []
    lines = ["", "### Confidence of the tags", "",
             "| run | slots with a confidence | ECE | AUROC right vs wrong | F1 at threshold 0 | best threshold "
             "| F1 there | threshold from the other half: F1 (delta [95% CI]) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rated:
        c = r.confidence
        assert c is not None
        auroc = f"{c.auroc:.3f}" if c.auroc is not None else "n/a"
        x = c.crossfit
        crossed = (f"{pct(x.f1)} ({100 * x.delta:+.1f} [{100 * x.interval[0]:+.1f}, {100 * x.interval[1]:+.1f}]; "
                   f"thresholds {', '.join(f'{t:.2f}' for t in x.thresholds)})" if x else "n/a")
        lines.append(f"| {r.config.name} | {c.n} | {c.ece:.3f} | {auroc} | {pct(c.curve[0][3])} | "
                     f"{c.best_threshold:.2f} | {pct(c.best_f1)} | {crossed} |")
    lines += ["", "The best threshold is the F1-best on these items, optimistic there; the last column "
                  "gives each half of the items the threshold best on the other half, paired against no "
                  "threshold. A run named `@T` withholds tags below T (`[tagging] min_confidence`, or the "
                  "threshold tuned for its adapter); the same run without it follows it."]
    return lines


def save(out_dir: Path, runs: Sequence[RunResult], comps: Sequence[dict[str, Any]], md: str,
         meta: dict[str, Any], items: Sequence[dict[str, Any]]) -> None:
    """Everything a report is made of, then the HTML page built from those files (so that
    `tagsmith report` rebuilds the same page). `items`: id, text and the canonical gold scored."""
    from tagsmith.evaluation import html_report

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(md + "\n", encoding="utf-8")
    summary = {
        **meta,
        "runs": [{"name": r.config.name, "kind": r.config.kind, "config": r.config.settings,
                  "config_key": r.config.key, "scores": asdict(r.scores), "rates": r.rates,
                  "seconds_per_item": r.seconds_per_item, "items_per_second": r.items_per_second,
                  "cached_items": r.cached_items,
                  "confidence": r.confidence.to_dict() if r.confidence else None,
                  "hierarchy": [h.to_dict() for h in r.hierarchy]} for r in runs],
        "comparisons": comps,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    for r in runs:
        with (out_dir / f"predictions-{r.config.key}.jsonl").open("w", encoding="utf-8") as f:
            for item_id, p in r.predictions.items():
                f.write(json.dumps({"item_id": item_id, **p}, ensure_ascii=False) + "\n")
    with (out_dir / "items.jsonl").open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    html_report.write(out_dir)
