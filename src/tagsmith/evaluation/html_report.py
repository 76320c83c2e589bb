"""The HTML report of an eval run folder: one self-contained page a prompt engineer works in.

Built from what `tagsmith eval` saved (summary.json, items.jsonl, predictions-*.jsonl), so
`tagsmith report RUN_DIR` rebuilds it without running a model, and the page eval writes is
the same page. Headline cards, a sortable per-facet table and charts come first; then the
A/B flips and the per-slot viewer (filters, search, pages), where every item opens to its
text, gold, each run's tags, and the exact messages and raw answer each run's model saw.
No network: CSS, JavaScript and SVG are inlined (assets/ beside this file).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from tagsmith.errors import InputError
from tagsmith.evaluation.metrics import SlotScore, score_slot
from tagsmith.evaluation.report import pct
from tagsmith.items import jsonl_records
from tagsmith.parsing import rejection_text

ASSETS = Path(__file__).with_name("assets")
COLORS = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#9D755D", "#BAB0AC"]


@dataclass
class RunFolder:
    """What an eval saved, read back: the summary, the scored items and each run's predictions."""

    path: Path
    summary: dict[str, Any]
    #: id, title, description, category and canonical gold (what the scores used) per item
    items: list[dict[str, Any]]
    #: per run (in summary order): item id -> prediction record
    predictions: list[dict[str, dict[str, Any]]]

    @classmethod
    def read(cls, path: str | Path) -> RunFolder:
        path = Path(path)
        if not path.is_dir():
            raise InputError(f"{path}: no such folder (give a run folder `tagsmith eval` wrote, e.g. runs/<time>-<dataset>)")
        try:
            summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
            items = _records(path / "items.jsonl")
            predictions = [{str(r["item_id"]): r for r in _records(path / f"predictions-{run['config_key']}.jsonl")}
                           for run in summary["runs"]]
        except FileNotFoundError as exc:
            missing = Path(exc.filename).name
            why = ("; folders written by a tagsmith older than the HTML viewer cannot be rebuilt"
                   if missing == "items.jsonl" else "")
            raise InputError(f"{path}: not an eval run folder ({missing} missing{why})") from None
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError, InputError) as exc:
            raise InputError(f"{path}: damaged eval run folder ({exc})") from None
        return cls(path, summary, items, predictions)


def _records(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [record for _, record in jsonl_records(handle, path)]


def outcome(slot: SlotScore, predicted: Sequence[str]) -> str:
    """How a viewer cell is coloured: right, empty (right: nothing expected, nothing given),
    wrong (a value, not the gold one), missed (gold, nothing given), extra (a value, no gold)."""
    if slot.correct:
        return "right" if slot.tp or predicted else "empty"
    if slot.fp and slot.fn:
        return "wrong"
    return "extra" if slot.fp else "missed"


def page_data(folder: RunFolder) -> dict[str, Any]:
    """Everything the page's script needs, as one JSON-able object. Prompts are kept as lines,
    each line's text stored once: every item's prompt repeats the template's instructions and
    the vocabulary, so a 10,000-item report would otherwise hold them 10,000 times."""
    s = folder.summary
    mode = s.get("mode", "alternatives")
    strings: dict[str, int] = {}

    def ref(text: str) -> int:
        return strings.setdefault(text, len(strings))

    facets = list(dict.fromkeys(f for item in folder.items for f in item["gold"]))
    facet_index = {f: n for n, f in enumerate(facets)}
    slots: list[list[Any]] = []
    details: list[list[Any]] = []  # per item, per run: [vocabulary, raw, error, prompt, rejected, tags, evidence]
    for n, item in enumerate(folder.items):
        runs_detail = []
        for preds in folder.predictions:
            p = preds.get(item["id"]) or {}
            prompt = [[m.get("role", ""), [ref(line) for line in m.get("content", "").split("\n")]]
                      for m in p.get("prompt") or []]
            runs_detail.append([p.get("vocabulary"), p.get("raw"), p.get("error"), prompt if p.get("prompt") else None,
                                [rejection_text(r) for r in p.get("rejected") or []],
                                p.get("tags") or {}, p.get("evidence")])
        details.append(runs_detail)
        for facet, gold in item["gold"].items():
            cells = []
            for preds in folder.predictions:
                p = preds.get(item["id"]) or {}
                predicted = (p.get("tags") or {}).get(facet) or []
                slot = score_slot(item["id"], facet, gold, predicted, mode)
                score = ((p.get("scores") or {}).get(facet) or {}).get(predicted[0]) if predicted else None
                cells.append([outcome(slot, predicted), predicted, score])
            slots.append([n, facet_index[facet], cells])
    vocabularies = sorted({d[0] for runs in details for d in runs if d[0]})
    return {
        "dataset": s.get("dataset"), "n_items": s.get("n_items"), "mode": mode,
        "runs": [{"name": r["name"], "kind": r["kind"]} for r in s["runs"]],
        "comparisons": [{"a": c["a"], "b": c["b"], "right_to_wrong": c["right_to_wrong"],
                         "wrong_to_right": c["wrong_to_right"]} for c in s.get("comparisons", [])],
        "facets": facets, "vocabularies": vocabularies,
        "items": [[i["id"], i.get("title", ""), i.get("description", ""), i.get("category"), i["gold"]]
                  for i in folder.items],
        "slots": slots, "details": details, "strings": list(strings),
    }


# ----------------------------------------------------------------------------- charts


def _legend(runs: Sequence[dict[str, Any]], x: float, y: float) -> str:
    return "".join(f'<rect x="{x}" y="{y + 16 * j}" width="10" height="10" fill="{COLORS[j % len(COLORS)]}"/>'
                   f'<text x="{x + 15}" y="{y + 9 + 16 * j}">{html.escape(r["name"])}</text>'
                   for j, r in enumerate(runs))


def bars_svg(runs: Sequence[dict[str, Any]]) -> str:
    """Grouped horizontal bars of per-facet F1 with 95% bootstrap whiskers, legend and axis."""
    facets = list(dict.fromkeys(f for r in runs for f in r["scores"]["per_facet"]))
    bar_h, gap, left, width, top = 12, 10, 190, 460, 16 * len(runs) + 12
    group_h = bar_h * len(runs) + gap
    plot_h = group_h * len(facets)
    height = top + plot_h + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{left + width + 30}" height="{height}" '
             'role="img" aria-label="F1 per facet">', _legend(runs, left, 0)]
    for k in range(0, 11, 2):
        x = left + width * k / 10
        parts.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{top + plot_h}" stroke="#e3e3e3"/>'
                     f'<text x="{x}" y="{top + plot_h + 14}" text-anchor="middle">{k / 10:.1f}</text>')
    parts.append(f'<text x="{left + width / 2}" y="{height - 6}" text-anchor="middle" class="axis">'
                 'F1 (whiskers: 95% bootstrap interval)</text>')
    for i, f in enumerate(facets):
        y0 = top + i * group_h
        parts.append(f'<text x="{left - 6}" y="{y0 + group_h / 2}" text-anchor="end">{html.escape(f)}</text>')
        for j, r in enumerate(runs):
            m = r["scores"]["per_facet"].get(f)
            if not m:
                continue
            y = y0 + j * bar_h
            parts.append(f'<rect x="{left}" y="{y}" width="{width * m["f1"]:.1f}" height="{bar_h - 2}" '
                         f'fill="{COLORS[j % len(COLORS)]}"><title>{html.escape(r["name"])}, {html.escape(f)}: '
                         f'F1 {m["f1"]:.3f}</title></rect>')
            if "f1_low" in m:
                parts.append(f'<line x1="{left + width * m["f1_low"]:.1f}" x2="{left + width * m["f1_high"]:.1f}" '
                             f'y1="{y + bar_h / 2 - 1}" y2="{y + bar_h / 2 - 1}" stroke="#222"/>')
    parts.append("</svg>")
    return "".join(parts)


def _frame(size: int, pad: int, xlabel: str, ylabel: str) -> list[str]:
    """Axes of a unit-square plot with ticks every 0.2 and labels."""
    parts = [f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="#999"/>']
    for k in range(0, 11, 2):
        t = k / 10
        parts.append(f'<text x="{pad + size * t}" y="{pad + size + 14}" text-anchor="middle">{t:.1f}</text>'
                     f'<text x="{pad - 4}" y="{pad + size * (1 - t) + 4}" text-anchor="end">{t:.1f}</text>')
    parts.append(f'<text x="{pad + size / 2}" y="{pad + size + 32}" text-anchor="middle" class="axis">'
                 f'{html.escape(xlabel)}</text>'
                 f'<text x="12" y="{pad + size / 2}" transform="rotate(-90 12 {pad + size / 2})" '
                 f'text-anchor="middle" class="axis">{html.escape(ylabel)}</text>')
    return parts


def scatter_svg(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Per-facet F1 of run A (x) against run B (y): points above the diagonal improved."""
    size, pad = 280, 44
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{size + 2 * pad}" '
             f'height="{size + 2 * pad}" role="img" aria-label="per-facet F1, A vs B">',
             *_frame(size, pad, f"F1 of {a['name']}", f"F1 of {b['name']}"),
             f'<line x1="{pad}" y1="{pad + size}" x2="{pad + size}" y2="{pad}" stroke="#ccc"/>']
    for f, m in a["scores"]["per_facet"].items():
        other = b["scores"]["per_facet"].get(f)
        if other:
            parts.append(f'<circle cx="{pad + size * m["f1"]:.1f}" cy="{pad + size * (1 - other["f1"]):.1f}" '
                         f'r="4" fill="#4C78A8" fill-opacity="0.7"><title>{html.escape(f)}: '
                         f'{m["f1"]:.3f} -> {other["f1"]:.3f}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def confidence_svgs(runs: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Per run with confidences: (name, reliability diagram, P/R/F1-vs-threshold plot)."""
    out = []
    size, pad = 240, 44
    for r in runs:
        c = r.get("confidence")
        if not c:
            continue
        rel = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{size + 2 * pad}" '
               f'height="{size + 2 * pad}" role="img" aria-label="reliability diagram">',
               *_frame(size, pad, "confidence", "share right"),
               f'<line x1="{pad}" y1="{pad + size}" x2="{pad + size}" y2="{pad}" stroke="#ccc" stroke-dasharray="4"/>']
        for low, high, _mean, accuracy, count in c["reliability"]:
            rel.append(f'<rect x="{pad + size * low:.1f}" y="{pad + size * (1 - accuracy):.1f}" '
                       f'width="{size * (high - low) - 1:.1f}" height="{size * accuracy:.1f}" fill="#4C78A8" '
                       f'fill-opacity="0.75"><title>{low:.2f}-{high:.2f}: {accuracy:.2f} right of {count}</title></rect>')
        rel.append("</svg>")
        curve = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{size + 2 * pad + 70}" '
                 f'height="{size + 2 * pad}" role="img" aria-label="P, R, F1 by threshold">',
                 *_frame(size, pad, "threshold (tags below it withheld)", "micro P / R / F1")]
        for k, label in ((1, "P"), (2, "R"), (3, "F1")):
            points = " ".join(f"{pad + size * row[0]:.1f},{pad + size * (1 - row[k]):.1f}" for row in c["curve"])
            color = COLORS[k - 1]
            curve.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>'
                         f'<rect x="{pad + size + 10}" y="{pad + 16 * k}" width="10" height="3" fill="{color}"/>'
                         f'<text x="{pad + size + 24}" y="{pad + 16 * k + 4}">{label}</text>')
        x = pad + size * c["best_threshold"]
        curve.append(f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{pad + size}" stroke="#222" '
                     f'stroke-dasharray="3"><title>F1-best threshold {c["best_threshold"]:.2f}</title></line></svg>')
        out.append((r["name"], "".join(rel), "".join(curve)))
    return out


# ----------------------------------------------------------------------------- page


def render(folder: RunFolder) -> str:
    """The page's HTML for a run folder."""
    env = Environment(loader=FileSystemLoader(ASSETS), autoescape=select_autoescape(["html", "jinja"]))
    s = folder.summary
    runs = s["runs"]
    data = json.dumps(page_data(folder), ensure_ascii=False, separators=(",", ":"))
    return env.get_template("report.html.jinja").render(
        summary=s, runs=runs, colors=COLORS, pct=pct, comparisons=s.get("comparisons", []),
        facets=list(dict.fromkeys(f for r in runs for f in r["scores"]["per_facet"])),
        bars=bars_svg(runs), scatters=[(r["name"], scatter_svg(runs[0], r)) for r in runs[1:]],
        confidence=confidence_svgs(runs),
        css=(ASSETS / "report.css").read_text(encoding="utf-8"),
        script=(ASSETS / "report.js").read_text(encoding="utf-8"),
        # "</" inside a script element would end it: JSON allows the escaped form
        data=data.replace("</", "<\\/"),
        configs={r["name"]: json.dumps(r.get("config"), indent=1, ensure_ascii=False, default=str) for r in runs})


def write(path: str | Path) -> Path:
    """(Re)build `report.html` in an eval run folder from what it saved; returns its path."""
    folder = RunFolder.read(path)
    target = folder.path / "report.html"
    target.write_text(render(folder), encoding="utf-8")
    return target
