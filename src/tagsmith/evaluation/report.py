"""Reports of an eval: Markdown for the terminal, JSON + HTML saved with the full config.

Every run is compared to the first one (the reference) on the same items: delta F1 with
a paired bootstrap interval, and the slots that flipped, so a prompt engineer sees what a
template change did, item by item.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tagsmith.evaluation.metrics import PairedDelta, flips, paired_delta
from tagsmith.evaluation.runner import RunResult


def _pct(x: float) -> str:
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
        ci = f"[{_pct(s.f1_interval.low)}, {_pct(s.f1_interval.high)}]" if s.f1_interval else ""
        lines.append(
            f"| {r.config.name} | {_pct(s.precision)} | {_pct(s.recall)} | **{_pct(s.f1)}** {ci} | "
            f"{_pct(s.macro_f1)} | {_pct(s.exact_match)} | {_pct(r.rates['oov_rate'])} | "
            f"{_pct(r.rates['duplicate_rate'])} | {_pct(r.rates['unparseable_rate'])} | "
            f"{r.seconds_per_item:.3f} | {r.items_per_second:.2f} |")
    facets = list(dict.fromkeys(f for r in runs for f in r.scores.per_facet))
    lines += ["", "### F1 per facet", "",
              "| facet | support | " + " | ".join(r.config.name for r in runs) + " |",
              "|---|---|" + "---|" * len(runs)]
    for f in facets:
        support = int(max(r.scores.per_facet.get(f, {}).get("support", 0) for r in runs))
        cells = [_pct(r.scores.per_facet[f]["f1"]) if f in r.scores.per_facet else "" for r in runs]
        lines.append(f"| {f} | {support} | " + " | ".join(cells) + " |")
    for c in comps:
        lo, hi = c["interval"]
        verdict = ("better" if lo > 0 else "worse" if hi < 0 else "no significant difference")
        lines += ["", f"### {c['b']} vs {c['a']}: delta F1 {_pct(c['delta_f1'])} points "
                      f"[{_pct(lo)}, {_pct(hi)}] ({verdict})",
                  f"{len(c['wrong_to_right'])} slots wrong -> right, {len(c['right_to_wrong'])} right -> wrong"]
        for label, key in (("right -> wrong", "right_to_wrong"), ("wrong -> right", "wrong_to_right")):
            shown = c[key][:max_flips]
            if shown:
                lines.append(f"- {label}: " + ", ".join(f"{i}/{f}" for i, f in shown)
                             + (" ..." if len(c[key]) > max_flips else ""))
    lines += confidence_markdown(runs)
    lines += ["", "Scoring: WDC-PAVE rule (a wrong value counts as FP and FN; any of several gold "
                  "values is right; predicting a value where gold is n/a is FP), micro-averaged "
                  "over slots; gold values are mapped to the vocabulary's canonical spelling first. "
                  "Intervals: percentile bootstrap over items (1000 resamples)."]
    return "\n".join(lines)


def confidence_markdown(runs: Sequence[RunResult]) -> list[str]:
    """Calibration of the runs whose tags carry confidences (option-scored facets)."""
    rated = [r for r in runs if r.confidence is not None]
    if not rated:
        return []
    lines = ["", "### Confidence of option-scored tags", "",
             "| run | scored values | ECE | AUROC right vs wrong | F1 at threshold 0 | best threshold | F1 there |",
             "|---|---|---|---|---|---|---|"]
    for r in rated:
        c = r.confidence
        assert c is not None
        auroc = f"{c.auroc:.3f}" if c.auroc is not None else "n/a"
        lines.append(f"| {r.config.name} | {c.n} | {c.ece:.3f} | {auroc} | {_pct(c.curve[0][3])} | "
                     f"{c.best_threshold:.2f} | {_pct(c.best_f1)} |")
    lines += ["", "The best threshold is the F1-best on these items: choose it on other data "
                  "(`[tagging] min_confidence`) before trusting the F1 there."]
    return lines


def _bars_svg(runs: Sequence[RunResult]) -> str:
    """Grouped horizontal bars of per-facet F1 with bootstrap interval whiskers."""
    facets = list(dict.fromkeys(f for r in runs for f in r.scores.per_facet))
    colors = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2"]
    bar_h, gap, left, width = 10, 8, 230, 420
    group_h = bar_h * len(runs) + gap
    height = group_h * len(facets) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 40}" height="{height}" '
             'font-family="sans-serif" font-size="11">']
    for k in range(0, 11, 2):
        x = left + width * k / 10
        parts.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{height - 30}" stroke="#ddd"/>'
                     f'<text x="{x}" y="{height - 15}" text-anchor="middle">{k / 10:.1f}</text>')
    for i, f in enumerate(facets):
        y0 = i * group_h
        parts.append(f'<text x="{left - 6}" y="{y0 + group_h / 2}" text-anchor="end">{html.escape(f)}</text>')
        for j, r in enumerate(runs):
            m = r.scores.per_facet.get(f)
            if not m:
                continue
            y = y0 + j * bar_h
            c = colors[j % len(colors)]
            parts.append(f'<rect x="{left}" y="{y}" width="{width * m["f1"]:.1f}" height="{bar_h - 2}" '
                         f'fill="{c}"><title>{html.escape(r.config.name)}: {m["f1"]:.3f}</title></rect>')
            if "f1_low" in m:
                parts.append(f'<line x1="{left + width * m["f1_low"]:.1f}" x2="{left + width * m["f1_high"]:.1f}" '
                             f'y1="{y + bar_h / 2 - 1}" y2="{y + bar_h / 2 - 1}" stroke="#222"/>')
    parts.append("</svg>")
    return "".join(parts)


def _scatter_svg(a: RunResult, b: RunResult) -> str:
    """Per-facet F1 of run A (x) against run B (y); points above the diagonal improved."""
    size, pad = 320, 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 2 * pad}" height="{size + 2 * pad}" '
             'font-family="sans-serif" font-size="11">',
             f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="#999"/>',
             f'<line x1="{pad}" y1="{pad + size}" x2="{pad + size}" y2="{pad}" stroke="#ccc"/>',
             f'<text x="{pad + size / 2}" y="{size + 2 * pad - 5}" text-anchor="middle">{html.escape(a.config.name)}</text>',
             f'<text x="10" y="{pad + size / 2}" transform="rotate(-90 10 {pad + size / 2})" '
             f'text-anchor="middle">{html.escape(b.config.name)}</text>']
    for f, m in a.scores.per_facet.items():
        if f in b.scores.per_facet:
            x = pad + size * m["f1"]
            y = pad + size * (1 - b.scores.per_facet[f]["f1"])
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#4C78A8" fill-opacity="0.7">'
                         f'<title>{html.escape(f)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _confusions(runs: Sequence[RunResult], gold: dict[str, dict[str, list[str]]], top: int = 8) -> str:
    """Most frequent (gold -> predicted) mistakes per facet of the first run: single-valued facets."""
    r = runs[0]
    counts: dict[str, dict[tuple[str, str], int]] = {}
    for item_id, g in gold.items():
        tags = r.predictions[item_id].get("tags") or {}
        for facet, values in g.items():
            predicted = (tags.get(facet) or ["(none)"])[0]
            expected = values[0] if values else "(none)"
            if predicted not in (values or ["(none)"]):
                key = (expected, predicted)
                counts.setdefault(facet, {})[key] = counts.setdefault(facet, {}).get(key, 0) + 1
    rows = []
    for facet, pairs in sorted(counts.items()):
        for (e, p), n in sorted(pairs.items(), key=lambda kv: -kv[1])[:top]:
            rows.append(f"<tr><td>{html.escape(facet)}</td><td>{html.escape(e)}</td>"
                        f"<td>{html.escape(p)}</td><td>{n}</td></tr>")
    return ("<table><tr><th>facet</th><th>gold</th><th>predicted</th><th>count</th></tr>"
            + "".join(rows) + "</table>")


def html_report(md: str, runs: Sequence[RunResult], gold: dict[str, dict[str, list[str]]]) -> str:
    scatter = "".join(_scatter_svg(runs[0], r) for r in runs[1:])
    legend = " ".join(f"<b>{j + 1}.</b> {html.escape(r.config.name)}" for j, r in enumerate(runs))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>tagsmith eval</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:12px}}pre{{white-space:pre-wrap;font-size:12px}}</style>
</head><body><h1>tagsmith eval</h1><pre>{html.escape(md)}</pre>
<h2>F1 per facet (bars in run order: {legend}; whiskers: 95% bootstrap interval)</h2>{_bars_svg(runs)}
{"<h2>Per-facet F1, reference vs each run</h2>" + scatter if scatter else ""}
<h2>Most frequent mistakes of {html.escape(runs[0].config.name)} (first value per slot)</h2>
{_confusions(runs, gold)}</body></html>"""


def save(out_dir: Path, runs: Sequence[RunResult], comps: Sequence[dict[str, Any]], md: str, page: str,
         meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(md + "\n", encoding="utf-8")
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    summary = {
        **meta,
        "runs": [{"name": r.config.name, "kind": r.config.kind, "config": r.config.settings,
                  "config_key": r.config.key, "scores": asdict(r.scores), "rates": r.rates,
                  "seconds_per_item": r.seconds_per_item, "items_per_second": r.items_per_second,
                  "cached_items": r.cached_items,
                  "confidence": r.confidence.to_dict() if r.confidence else None} for r in runs],
        "comparisons": comps,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    for r in runs:
        with (out_dir / f"predictions-{r.config.key}.jsonl").open("w", encoding="utf-8") as f:
            for item_id, p in r.predictions.items():
                f.write(json.dumps({"item_id": item_id, **p}, ensure_ascii=False) + "\n")
