"""Zero-shot tagging on ImplicitAVE: option lists no shipped adapter was trained on.

    python eval/zeroshot_implicitave.py [--n 100] [--domains Clothing,Food,...] [--engine transformers]
                                        [--runs majority,embedding,tfidf,adapter,scored,fused,fused-default]

For each domain, the first N validation rows in a stable order (sha256 of the row id: every
attribute in proportion) are tagged with each attribute's option list as a one-facet
vocabulary (`tagsmith eval --data <domain>/val.tsv` loads the same vocabularies), and scored
by accuracy (the chosen option is the gold one; no answer is wrong). Runs:

- `majority`: each attribute's most frequent option in the domain's train rows
- `embedding`: the option most similar to the item text (all-MiniLM-L6-v2, as the prior)
- `tfidf`: TF-IDF + linear SVM trained on the domain's train rows (a supervised reference:
  the only run that sees ImplicitAVE labels)
- `bare`, `adapter`: greedy constrained decoding, bare model / `--adapter auto` (for these
  vocabularies the general tagging adapter where it ships, else the WDC-PAVE one)
- `scored`: the adapter with option scoring, calibrated, without the embedding prior
- `fused`: the adapter with option scoring, calibrated, with the embedding prior (the default
  configuration: `[tagging] option_scoring = "closed"` scores these one-facet vocabularies)
- `bare-fused`, `bare-scored`: the bare model with option scoring, with / without the prior
- `fused-default`, `scored-default`, `adapter-default`: as above with `--template default`,
  which lists every option (the adapter's own `compact` template shows three)

Prints, per domain and as the mean over domains, accuracy with a 95% bootstrap interval and
the paired difference against `embedding`. Generations are cached like `tagsmith eval`'s.
A benchmark, not a test: the LLM runs take minutes per domain on a CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from tagsmith.config import load_settings
from tagsmith.embeddings import TextEncoder
from tagsmith.evaluation.matrix import LlmRun, llm_runs
from tagsmith.gold import Dataset, load_implicitave
from tagsmith.model_store import cache_dir
from tagsmith.option_scoring import embedding_prior, option_vectors
from tagsmith.runtime import plan_run

DATA = Path(__file__).resolve().parents[2] / "shared/data/implicitave"
DOMAINS = ("Clothing", "Footwear", "Jewlery_and_General_Apparel", "Food", "Home")
#: run -> (adapter, template (None: the adapter's own), [tagging] overrides)
LLM_RUNS = {
    "bare": ("none", None, {"option_scoring": "off"}),
    "adapter": ("auto", None, {"option_scoring": "off"}),
    "scored": ("auto", None, {"option_scoring": "closed", "option_scoring_max": 50, "option_prior_weight": 0.0}),
    "fused": ("auto", None, {"option_scoring": "closed", "option_scoring_max": 50}),
    "bare-fused": ("none", None, {"option_scoring": "closed", "option_scoring_max": 50}),
    "bare-scored": ("none", None, {"option_scoring": "closed", "option_scoring_max": 50, "option_prior_weight": 0.0}),
    "fused-default": ("auto", "default", {"option_scoring": "closed", "option_scoring_max": 50}),
    "scored-default": ("auto", "default", {"option_scoring": "closed", "option_scoring_max": 50, "option_prior_weight": 0.0}),
    "adapter-default": ("auto", "default", {"option_scoring": "off"}),
}
RUNS = ("majority", "embedding", "tfidf", *LLM_RUNS)


def sample(dataset: Dataset, n: int) -> Dataset:
    ordered = sorted(dataset.items, key=lambda g: hashlib.sha256(g.item.id.encode()).hexdigest())
    return dataset.subset(f"{dataset.name}[first {n}]", ordered[:n])


def item_text(g) -> str:
    return f"{g.item.title}\n{g.item.description}".strip()


def majority(train: Dataset, test: Dataset) -> list[str | None]:
    counts: dict[str, Counter] = {}
    for g in train.items:
        (attr, values), = g.gold.items()
        counts.setdefault(attr, Counter()).update(values)
    return [counts[a].most_common(1)[0][0] if (a := next(iter(g.gold))) in counts else None for g in test.items]


def embedding(test: Dataset, encoder: TextEncoder) -> list[str | None]:
    out = []
    vectors = encoder.encode([item_text(g) for g in test.items])
    by_vocab: dict[str, object] = {}  # vocabularies of several datasets share facet names
    for g, v in zip(test.items, vectors, strict=True):
        vocab = test.vocabularies.for_category(g.item.category)
        facet = vocab.facets[0]
        if vocab.name not in by_vocab:
            by_vocab[vocab.name] = option_vectors(encoder, facet)
        prior = embedding_prior(by_vocab[vocab.name] @ v, 1.0)
        out.append(facet.allowed[int(prior.argmax())])
    return out


def tfidf(train: Dataset, test: Dataset) -> list[str | None]:
    from tagsmith.evaluation.baseline import TfidfBaseline

    model = TfidfBaseline(test.vocabularies).fit(train.items)
    return [(p["tags"].get(next(iter(g.gold))) or [None])[0] for g, p in zip(test.items, model.predict(test.items))]


def llm(run: str, test: Dataset, engine: str, auto_adapter: str = "auto") -> list[str | None]:
    adapter, template, tagging = LLM_RUNS[run]
    adapter = auto_adapter if adapter == "auto" else adapter
    settings = load_settings(None, {"tagging": tagging})
    plan = plan_run(settings, test.vocabularies, adapter=adapter, engine=engine, template=template)
    for note in plan.notes:
        print(f"  [{run}] {note}", file=sys.stderr)
    (result,) = llm_runs(plan.engine, plan.model, [LlmRun(plan.adapter, plan.template)], test, test.vocabularies,
                         settings, cache_dir=cache_dir() / "eval", progress=True)
    return [((result.predictions.get(g.item.id) or {}).get("tags", {}).get(next(iter(g.gold))) or [None])[0] for g in test.items]


def bootstrap(correct: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(correct), size=(n, len(correct)))
    means = correct[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def chosen(ap: argparse.ArgumentParser, text: str, known: tuple[str, ...], what: str = "run") -> list[str]:
    """The comma-separated names asked for; an unknown one is a usage error naming the known."""
    names = [r for r in text.split(",") if r]
    unknown = [r for r in names if r not in known]
    if unknown:
        ap.error(f"unknown {what}(s) {unknown}; choose from {', '.join(known)}")
    return names


def print_table(table: dict[str, dict[str, np.ndarray]], runs: list[str], rows: str) -> None:
    """Accuracy per group and run with bootstrap intervals, paired against `embedding`, and the
    mean over groups, as a Markdown table."""
    ref = "embedding" if "embedding" in runs else runs[0]
    print(f"\nAccuracy in % [95% bootstrap CI], {rows}; delta = paired difference against {ref}\n")
    print("| domain | " + " | ".join(runs) + " |")
    print("|---|" + "---|" * len(runs))
    for domain, cols in table.items():
        cells = []
        for run in runs:
            acc, (lo, hi) = 100 * cols[run].mean(), bootstrap(cols[run])
            cell = f"{acc:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
            if run != ref:
                d = cols[run] - cols[ref]
                dlo, dhi = bootstrap(d)
                cell += f" (delta {100 * d.mean():+.1f} [{100 * dlo:+.1f}, {100 * dhi:+.1f}])"
            cells.append(cell)
        print(f"| {domain} | " + " | ".join(cells) + " |")
    means = {run: np.mean([100 * cols[run].mean() for cols in table.values()]) for run in runs}
    print("| **mean** | " + " | ".join(f"{means[r]:.1f}" for r in runs) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--n", type=int, default=100, help="validation rows per domain")
    ap.add_argument("--domains", default=",".join(DOMAINS))
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--adapter", default="auto",
                    help="adapter of the runs that use `--adapter auto` (a folder or a shipped name), to "
                         "score one before it ships [default: auto]")
    ap.add_argument("--json", type=Path, default=None, help="also write every row's predictions here")
    args = ap.parse_args()
    runs = chosen(ap, args.runs, RUNS)
    encoder = TextEncoder()
    table: dict[str, dict[str, np.ndarray]] = {}
    dump = {}
    for domain in [d for d in args.domains.split(",") if d]:
        test = sample(load_implicitave(args.data / domain / "val.tsv"), args.n)
        train = load_implicitave(args.data / domain / "train.tsv") if {"majority", "tfidf"} & set(runs) else None
        gold = [g.gold[next(iter(g.gold))][0] for g in test.items]
        table[domain] = {}
        for run in runs:
            print(f"{domain}: {run}", file=sys.stderr)
            if run == "majority":
                pred = majority(train, test)
            elif run == "embedding":
                pred = embedding(test, encoder)
            elif run == "tfidf":
                pred = tfidf(train, test)
            else:
                pred = llm(run, test, args.engine, args.adapter)
            table[domain][run] = np.array([p == g for p, g in zip(pred, gold, strict=True)], dtype=float)
            dump[f"{domain}/{run}"] = dict(zip([g.item.id for g in test.items], pred, strict=True))
    print_table(table, runs, f"first {args.n} validation rows per domain")
    if args.json:
        args.json.write_text(json.dumps(dump, indent=1))


if __name__ == "__main__":
    main()
